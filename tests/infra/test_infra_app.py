"""app.py: configuration in, template out; a bad value stops synthesis naming the key."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.application import create_app, read_context_file
from infra.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def run_app(
    tmp_path: Path, context: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python app.py` as the cdk CLI runs it: context in CDK_CONTEXT_JSON, CDK_OUTDIR set."""
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path)}
    if context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"poll_min_seconds": "-1"}, "poll_min_seconds"),
        ({"s3_prefix": "/"}, "s3_prefix"),
        ({"db_cluster_identifier": "both-set"}, "db_instance_identifier"),
        ({"schedule_expression": "every day"}, "schedule_expression"),
        ({"databases": '[{"db_instance_identifier": "x"}]'}, "databases[0].s3_prefix"),
    ],
)
def test_bad_context_stops_the_app_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app({**read_context_file(), **overrides})
    assert caught.value.key == key


def test_synth_fails_on_a_bad_cli_value_naming_the_key(tmp_path: Path) -> None:
    # When the CLI passes `-c poll_min_seconds=-5` (the CLI hands context over as JSON)
    result = run_app(tmp_path, {"poll_min_seconds": "-5"})

    # Then synthesis fails, and the message names the key, without a traceback
    assert result.returncode == 1
    assert "context key poll_min_seconds: must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rds-s3-export.template.json").exists()


def test_app_writes_the_template_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given app.py, writing where `make synth` would (cdk.out/), here a temporary directory
    app_module = importlib.import_module("app")
    monkeypatch.setattr(app_module, "OUTDIR", str(tmp_path))

    # When it runs (in this process: jsii is already warm)
    assert app_module.main() == 0

    # Then the template is written and cdk-nag passed at synth
    template = json.loads((tmp_path / "rds-s3-export.template.json").read_text())
    assert "AWS::StepFunctions::StateMachine" in {r["Type"] for r in template["Resources"].values()}
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"][0]["conclusion"] == "success"


def test_the_construct_leaves_the_logical_ids_of_deployed_stacks_as_they_were(
    default_stack: Any,
) -> None:
    # Given the app's stack, which holds the pipeline under the construct id "Default"
    # Then its resources keep the logical IDs they had when they sat in the stack itself (these
    # are the IDs of the stack before the construct existed): CloudFormation would replace a
    # resource whose logical ID changed, and a replaced bucket is a new, empty one.
    # https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers_logical_ids
    before = {
        "StorageExportBucket4C8E1688": "AWS::S3::Bucket",
        "StorageAccessLogBucket76E80A12": "AWS::S3::Bucket",
        "StorageExportKeyD733F5CA": "AWS::KMS::Key",
        "LogsKeyA6AB43B2": "AWS::KMS::Key",
        "AlertsTopicKey4FD54A73": "AWS::KMS::Key",
        "AlertsTopicCF7C81C9": "AWS::SNS::Topic",
        "WorkflowStateMachine8F1B1C15": "AWS::StepFunctions::StateMachine",
    }
    resources = default_stack.resources
    assert {key: resources[key]["Type"] for key in before if key in resources} == before
    assert not [key for key in resources if key.startswith("Default")]
