"""The state machine: the ASL file with its substitutions, logging, tracing, role."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match

from infra.config import ConfigError, load_config
from infra.workflow import ASL_PATH, DefinitionError, check_definition

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def test_placeholders_of_the_asl_file_equal_the_substitutions(default_stack: Any) -> None:
    # Given the ASL file as it is in the repository
    placeholders = set(PLACEHOLDER.findall(ASL_PATH.read_text()))

    # Then the stack substitutes exactly those placeholders: each function's ARN, and the
    # alert topic's (NotifySuccess publishes there)
    substitutions = default_stack.resource(default_stack.stack.workflow.state_machine)[
        "Properties"
    ]["DefinitionSubstitutions"]
    assert set(substitutions) == placeholders
    assert substitutions.pop("AlertTopicArn") == default_stack.ref(default_stack.stack.alerts.topic)
    functions = default_stack.stack.functions.functions
    assert sorted(substitutions.values(), key=str) == sorted(
        (default_stack.arn_of(f) for f in functions.values()), key=str
    )


def test_asl_file_has_an_overall_timeout_beyond_the_waits() -> None:
    definition = json.loads(ASL_PATH.read_text())
    config = load_config({})
    assert definition["TimeoutSeconds"] >= (
        config.snapshot_timeout_seconds + config.export_timeout_seconds
    )


def test_state_machine_deploys_the_file_itself(default_stack: Any, definition_path: Path) -> None:
    # Then the definition is the file, shipped as an asset, not a copy built in CDK
    location = Capture()
    default_stack.template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        Match.object_like({"DefinitionS3Location": location, "DefinitionString": Match.absent()}),
    )
    key = location.as_object()["Key"]
    asset = default_stack.outdir / f"asset.{key}"
    assert asset.read_bytes() == definition_path.read_bytes()


def test_state_machine_logs_everything_and_traces(default_stack: Any) -> None:
    workflow = default_stack.stack.workflow
    default_stack.template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        Match.object_like(
            {
                "StateMachineName": "rds-s3-export",
                "StateMachineType": "STANDARD",
                "LoggingConfiguration": {
                    "Destinations": [
                        {
                            "CloudWatchLogsLogGroup": {
                                "LogGroupArn": default_stack.arn_of(workflow.log_group)
                            }
                        }
                    ],
                    "IncludeExecutionData": True,
                    "Level": "ALL",
                },
                "TracingConfiguration": {"Enabled": True},
                "RoleArn": default_stack.arn_of(workflow.role),
            }
        ),
    )
    assert default_stack.resource(workflow.log_group)["Properties"] == {
        "LogGroupName": "/aws/vendedlogs/states/rds-s3-export",
        "KmsKeyId": default_stack.arn_of(default_stack.stack.logs_key),
        "RetentionInDays": 30,
    }


def test_state_machine_role_invokes_exactly_the_pipeline_functions(any_stack: Any) -> None:
    workflow = any_stack.stack.workflow
    functions = any_stack.stack.functions.functions.values()

    # Every lambda:InvokeFunction the role has, on what
    invoked = []
    for policy_id, statement in any_stack.identity_statements():
        roles = any_stack.resources[policy_id]["Properties"]["Roles"]
        if any_stack.ref(workflow.role) in roles and "lambda:InvokeFunction" in str(
            statement["Action"]
        ):
            assert statement["Action"] == "lambda:InvokeFunction"
            invoked += statement["Resource"]

    expected = [any_stack.arn_of(f) for f in functions] + [
        {"Fn::Join": ["", [any_stack.arn_of(f), ":*"]]} for f in functions
    ]
    assert sorted(map(json.dumps, invoked)) == sorted(map(json.dumps, expected))
    # and no other role may invoke them
    assert len(any_stack.statements_with("lambda:InvokeFunction")) == len(functions)


def test_state_machine_role_trusts_step_functions_for_this_state_machine(
    default_stack: Any,
) -> None:
    role = default_stack.stack.workflow.role
    statement = default_stack.resource(role)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {
                    "aws:SourceArn": default_stack.states_arn("stateMachine:rds-s3-export")
                },
            },
        }
    ]


def test_definition_with_a_foreign_placeholder_fails_synth(tmp_path: Path) -> None:
    # Given an ASL file with a placeholder the stack does not provide
    path = tmp_path / "sm.json"
    path.write_text(
        json.dumps({"TimeoutSeconds": 86400, "StartAt": "A", "Comment": "${NotifyTopicArn}"})
    )

    # When it is checked against the stack's substitutions, Then synthesis stops naming it
    with pytest.raises(DefinitionError, match="NotifyTopicArn"):
        check_definition(path, {"ValidateInputFunctionArn": "arn"}, load_config({}))


def test_definition_without_timeout_fails_synth(tmp_path: Path) -> None:
    path = tmp_path / "sm.json"
    path.write_text(json.dumps({"StartAt": "A", "Comment": "${ValidateInputFunctionArn}"}))
    with pytest.raises(DefinitionError, match="TimeoutSeconds"):
        check_definition(path, {"ValidateInputFunctionArn": "arn"}, load_config({}))


def test_waits_longer_than_the_state_machine_timeout_name_the_key(tmp_path: Path) -> None:
    # Given deadlines that add up to more than the ASL file's overall timeout
    path = tmp_path / "sm.json"
    path.write_text(json.dumps({"TimeoutSeconds": 3600, "Comment": "${ValidateInputFunctionArn}"}))

    # Then the configuration error names the key to change
    with pytest.raises(ConfigError, match="context key export_timeout_seconds"):
        check_definition(path, {"ValidateInputFunctionArn": "arn"}, load_config({}))


def test_state_machine_may_start_only_itself(default_stack: Any) -> None:
    # ContinuePurgeInNewExecution starts a new execution of this same state machine
    # (the schedule's role also starts it, by its Ref)
    starts = default_stack.statements_with("states:StartExecution")
    assert len(starts) == 2
    assert all(s["Action"] == "states:StartExecution" and s["Resource"] != "*" for s in starts)
    assert any(":stateMachine:" in json.dumps(s["Resource"]) for s in starts)
