"""python -m snowflake_sql with a local manifest file, and the sandbox's hand-over."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from snowflake_sql import __main__ as cli
from snowflake_sql.__main__ import main, pipeline_of
from snowflake_sql.generate import split_script
from tests.snowflake.conftest import write_night


def _manifest_file(tmp_path: Path) -> Path:
    night = write_night(tmp_path / "stage", "night-1", [])
    path = tmp_path / "_manifest.json"
    path.write_text(json.dumps(night.manifest))
    return path


def test_cli_prints_the_script_for_a_manifest_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _manifest_file(tmp_path)
    assert main(["--manifest", str(path), "--warehouse", "WH"]) == 0
    out, err = capsys.readouterr()
    names = [name for name, _ in split_script(out)]
    assert names[0] == "session time zone" and names[-1] == "first load"
    assert "arn:aws:iam::123456789012:role/rds-s3-export-snowflake" in out  # from the execution
    assert 'WAREHOUSE = "WH"' in out
    assert f"reading {path}" in err and f"reading {path}" not in out


def test_a_schedule_replaces_the_trigger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _manifest_file(tmp_path)
    assert main(["--manifest", str(path), "--schedule", "USING CRON 0 7 * * * UTC"]) == 0
    task = dict(split_script(capsys.readouterr()[0]))["task"]
    assert "SCHEDULE = 'USING CRON 0 7 * * * UTC'" in task and "STREAM_HAS_DATA" not in task


def test_without_a_manifest_the_cli_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([])
    assert "--manifest" in capsys.readouterr()[1]


def test_the_package_never_imports_the_sandbox() -> None:
    package = Path(cli.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("sandbox"), source
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sandbox") for a in node.names), source


def test_pipeline_of_an_unparseable_execution_is_a_placeholder() -> None:
    assert pipeline_of({"execution": "nope"}) == ("<account>", "rds-s3-export")


def test_the_external_id_comes_from_cdk_json_when_it_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _manifest_file(tmp_path)
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


def test_the_sandbox_hands_its_manifest_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox import snowflake_night

    manifest = json.loads(_manifest_file(tmp_path).read_text())
    monkeypatch.setattr(snowflake_night, "sandbox_manifest", lambda: manifest)
    assert snowflake_night.main(["--warehouse", "WH"]) == 0
    assert 'WAREHOUSE = "WH"' in capsys.readouterr()[0]
