"""python -m snowflake_sql with a local manifest file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snowflake_sql import __main__ as cli
from snowflake_sql.__main__ import main, pipeline_of
from snowflake_sql.generate import SECTIONS, split_script
from tests.snowflake.conftest import Night


def test_cli_prints_the_script_for_a_manifest_file(
    tmp_path: Path, nights: tuple[Path, Night, Night], capsys: pytest.CaptureFixture[str]
) -> None:
    _, first, _ = nights
    path = tmp_path / "_manifest.json"
    path.write_text(json.dumps(first.manifest))

    assert main(["--manifest", str(path), "--warehouse", "WH"]) == 0

    out, err = capsys.readouterr()
    assert list(split_script(out)) == list(SECTIONS)
    assert "arn:aws:iam::123456789012:role/rds-s3-export-snowflake" in out  # from the execution
    assert 'WAREHOUSE = "WH"' in out
    assert f"reading {path}" in err and "reading" not in out


def test_pipeline_of_an_unparseable_execution_is_a_placeholder() -> None:
    assert pipeline_of({"execution": "nope"}) == ("<account>", "rds-s3-export")


def test_the_external_id_comes_from_cdk_json_when_it_is_set(
    tmp_path: Path,
    nights: tuple[Path, Night, Night],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, first, _ = nights
    path = tmp_path / "_manifest.json"
    path.write_text(json.dumps(first.manifest))
    cdk_json = tmp_path / "cdk.json"
    context = {
        "snowflake_iam_user_arn": "arn:aws:iam::999999999999:user/abc-snowflake",
        "snowflake_external_id": "MYACCOUNT_SFCRole=2_abc",
    }
    cdk_json.write_text(json.dumps({"app": "python app.py", "context": context}))
    monkeypatch.setattr(cli, "CDK_JSON", cdk_json)

    assert main(["--manifest", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "STORAGE_AWS_EXTERNAL_ID = 'MYACCOUNT_SFCRole=2_abc'" in out
    assert "no --external-id" not in err

    # without it in cdk.json: the pipeline's name, and a word on stderr
    cdk_json.write_text(json.dumps({"app": "python app.py", "context": {}}))
    assert main(["--manifest", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "STORAGE_AWS_EXTERNAL_ID = 'rds-s3-export-snowflake'" in out
    assert "no --external-id and no snowflake_external_id in cdk.json" in err
