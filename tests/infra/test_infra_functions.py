"""The Lambda functions: one per module of docs/contracts.md, each with only its permissions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = (REPO / "docs" / "contracts.md").read_text()
# "| `${ValidateInputFunctionArn}` | `validate_input` | ..." rows of the functions table
CONTRACT_MODULES = re.findall(r"^\| `\$\{\w+FunctionArn\}` \| [^|]+ \| `(\w+)` \|", CONTRACTS, re.M)

ENVIRONMENT = {  # docs/contracts.md, "Environment variables"
    "validate_input": {"PIPELINE_DEFAULTS", "PIPELINE_SETTINGS", "EXPORT_BUCKET"},
    "create_snapshot": {"EXPORT_BUCKET"},  # the manifest: is the snapshot exported already?
    "describe_status": set(),
    "start_export": {"EXPORT_BUCKET", "EXPORT_ROLE_ARN", "EXPORT_KMS_KEY_ARN"},
    "purge_prefix": {"EXPORT_BUCKET"},
    "publish_manifest": {"EXPORT_BUCKET", "EXPORT_KMS_KEY_ARN"},
    "discard_failed_export": {"EXPORT_BUCKET"},
    "update_catalog": {"EXPORT_BUCKET"},  # GLUE_DATABASE, PIPELINE_NAME only with glue_database
    "prune_snapshots": set(),
}


def newest_python() -> str:
    """The newest Python runtime this aws-cdk-lib knows."""
    versions = [
        tuple(int(part) for part in name.removeprefix("PYTHON_").split("_"))
        for name in dir(lambda_.Runtime)
        if re.fullmatch(r"PYTHON_\d+_\d+", name)
    ]
    major, minor = max(versions)
    return f"python{major}.{minor}"


def test_one_function_per_contract_module(default_stack: Any) -> None:
    # Given the module table of docs/contracts.md
    assert len(CONTRACT_MODULES) == 9

    # Then the stack has exactly one function per module, with its handler
    assert sorted(default_stack.stack.functions.functions) == sorted(CONTRACT_MODULES)
    handlers = sorted(
        r["Properties"]["Handler"]
        for r in default_stack.resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    )
    assert handlers == sorted(
        f"rds_s3_export.steps.{module}.lambda_handler" for module in CONTRACT_MODULES
    )


@pytest.mark.parametrize("module", sorted(ENVIRONMENT))
def test_function_runtime_logging_and_tracing(default_stack: Any, module: str) -> None:
    function = default_stack.stack.functions.functions[module]
    log_group = function.log_group

    # Then it runs the newest Python, logs JSON into its own log group, and traces
    default_stack.template.has_resource_properties(
        "AWS::Lambda::Function",
        Match.object_like(
            {
                "Handler": f"rds_s3_export.steps.{module}.lambda_handler",
                "Runtime": newest_python(),
                "Architectures": ["arm64"],
                "TracingConfig": {"Mode": "Active"},
                "LoggingConfig": {
                    "LogFormat": "JSON",
                    "LogGroup": default_stack.ref(log_group),
                    "ApplicationLogLevel": "INFO",
                    "SystemLogLevel": "WARN",
                },
                "Role": default_stack.arn_of(function.role),
            }
        ),
    )
    assert default_stack.resource(log_group)["Properties"] == {
        "RetentionInDays": 30,
        "KmsKeyId": default_stack.arn_of(default_stack.stack.logs_key),
    }


def test_each_function_has_its_own_role(default_stack: Any) -> None:
    roles = [f.role for f in default_stack.stack.functions.functions.values()]
    assert len({default_stack.logical_id(role) for role in roles}) == len(CONTRACT_MODULES)


def test_timeouts_fit_each_job(default_stack: Any) -> None:
    timeouts = {
        module: default_stack.function(module)["Properties"]["Timeout"] for module in ENVIRONMENT
    }
    assert timeouts.pop("purge_prefix") == 300  # deletes page after page within its budget
    assert timeouts.pop("publish_manifest") == 300  # lists the whole export folder
    assert timeouts.pop("update_catalog") == 120  # one Glue call per exported table
    assert all(30 <= seconds <= 60 for seconds in timeouts.values()), timeouts


@pytest.mark.parametrize("module", sorted(ENVIRONMENT))
def test_environment_is_exactly_the_contract(default_stack: Any, module: str) -> None:
    properties = default_stack.function(module)["Properties"]
    variables = properties.get("Environment", {}).get("Variables", {})
    assert set(variables) == ENVIRONMENT[module]


def test_environment_values(default_stack: Any) -> None:
    storage = default_stack.stack.storage
    validate = default_stack.function("validate_input")["Properties"]["Environment"]["Variables"]
    start = default_stack.function("start_export")["Properties"]["Environment"]["Variables"]

    assert json.loads(validate["PIPELINE_DEFAULTS"]) == {
        "db_instance_identifier": "mydb",
        "export_only": [],
        "keep_snapshots": 3,
        "s3_prefix": "exports/mydb",
        "snapshot_prefix": "mysnapshot",
        "source": "new-snapshot",
    }
    settings = json.loads(validate["PIPELINE_SETTINGS"])
    assert [(d["id"], d["s3_prefix"]) for d in settings["databases"]] == [("mydb", "exports/mydb")]
    assert settings["pipeline_name"] == "rds-s3-export"
    assert validate["EXPORT_BUCKET"] == default_stack.ref(storage.bucket)
    assert start == {
        "EXPORT_BUCKET": default_stack.ref(storage.bucket),
        "EXPORT_ROLE_ARN": default_stack.arn_of(storage.export_role),
        "EXPORT_KMS_KEY_ARN": default_stack.arn_of(storage.key),
    }


def test_functions_write_logs_only_to_their_own_group(default_stack: Any) -> None:
    functions = default_stack.stack.functions
    for module, function in functions.functions.items():
        statements = default_stack.statements(functions.policies[module].policy)
        assert statements[0] == {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": default_stack.arn_of(function.log_group),
        }


def test_pass_role_only_for_the_export_role(any_stack: Any) -> None:
    # Every statement that allows iam:PassRole, in every policy of the stack: the export role
    # only, with no iam:PassedToService condition (AWS documents no value for StartExportTask)
    statements = any_stack.statements_with("iam:PassRole")
    assert statements == [
        {
            "Action": "iam:PassRole",
            "Effect": "Allow",
            "Resource": any_stack.arn_of(any_stack.stack.storage.export_role),
        }
    ]


def test_delete_object_only_under_the_prefix(default_stack: Any, as_list: Any) -> None:
    bucket = default_stack.stack.storage.bucket
    prefix_objects = default_stack.objects_arn(bucket, "/exports/mydb/*")

    # Every statement allowing an S3 delete, in every policy, is limited to <prefix>/*
    deletes = [
        s
        for _, s in default_stack.identity_statements()
        if any(action.startswith("s3:Delete") for action in as_list(s["Action"]))
        and s["Effect"] == "Allow"
    ]
    # purge_prefix, discard_failed_export, and the export role (RDS overwrites its files)
    assert len(deletes) == 3
    for statement in deletes:
        assert statement["Resource"] == prefix_objects
    purge = default_stack.statements(default_stack.stack.functions.policies["purge_prefix"].policy)
    assert any(
        "s3:DeleteObject" in as_list(s["Action"]) and s["Resource"] == prefix_objects for s in purge
    )


def test_the_functions_that_delete_are_denied_the_manifest(
    default_stack: Any, as_list: Any
) -> None:
    manifest = default_stack.objects_arn(
        default_stack.stack.storage.bucket, "/exports/mydb/_manifest.json"
    )
    policies = default_stack.stack.functions.policies
    for module in ("purge_prefix", "discard_failed_export"):
        denied = [
            s for s in default_stack.statements(policies[module].policy) if s["Effect"] == "Deny"
        ]
        assert denied == [{"Action": "s3:DeleteObject", "Effect": "Deny", "Resource": manifest}]


def test_discard_has_fewer_permissions_than_purge(default_stack: Any, as_list: Any) -> None:
    policies = default_stack.stack.functions.policies
    actions = {
        module: {
            action
            for s in default_stack.statements(policies[module].policy)
            for action in as_list(s["Action"])
        }
        for module in ("purge_prefix", "discard_failed_export")
    }
    assert actions["discard_failed_export"] < actions["purge_prefix"]
    assert not {"s3:GetObject", "kms:Decrypt"} & actions["discard_failed_export"]
    assert "rds:DescribeExportTasks" in actions["discard_failed_export"]


def test_listing_is_limited_to_the_prefix(default_stack: Any) -> None:
    bucket = default_stack.stack.storage.bucket
    listing = [
        s for s in default_stack.statements_with("s3:ListBucket") if s["Action"] == "s3:ListBucket"
    ]
    assert len(listing) == 4  # validate_input (dry run), purge_prefix, discard, publish
    for statement in listing:
        assert statement == {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["exports/mydb/*"]}},
            "Effect": "Allow",
            "Resource": default_stack.arn_of(bucket),
        }


def test_rds_actions_are_scoped_to_the_database_and_its_snapshots(
    default_stack: Any, as_list: Any
) -> None:
    db = default_stack.rds_arn("db:mydb")
    own = default_stack.rds_arn("snapshot:mysnapshot-*")
    automated = default_stack.rds_arn("snapshot:rds:mydb-*")
    # a named snapshot may have any name: reading and exporting reach every snapshot
    any_snapshot = default_stack.rds_arn("snapshot:*")
    allowed = {
        "rds:CreateDBSnapshot": [db, own],
        "rds:AddTagsToResource": [own],
        "rds:ListTagsForResource": [own, automated],
        "rds:DescribeDBSnapshots": [db, any_snapshot],
        "rds:DescribeDBInstances": [db],
        "rds:StartExportTask": [any_snapshot],
        "rds:DeleteDBSnapshot": [own],
        "rds:DescribeExportTasks": ["*"],  # AWS requires it (acknowledged with that reason)
    }

    # Every RDS statement of every policy uses only the resources its action may touch
    seen: set[str] = set()
    for _, statement in default_stack.identity_statements():
        for action in as_list(statement["Action"]):
            if action.startswith("rds:"):
                seen.add(action)
                resources = as_list(statement["Resource"])
                assert all(r in allowed[action] for r in resources), (action, resources)
    assert seen == set(allowed)  # no rds:* and nothing beyond the contract
    # no cluster ARNs in an instance configuration
    assert '":cluster' not in json.dumps(default_stack.data["Resources"])


def test_create_snapshot_statement(default_stack: Any) -> None:
    statements = default_stack.statements_with("rds:CreateDBSnapshot")
    assert statements == [
        {
            "Action": "rds:CreateDBSnapshot",
            "Effect": "Allow",
            "Resource": [
                default_stack.rds_arn("db:mydb"),
                default_stack.rds_arn("snapshot:mysnapshot-*"),
            ],
        }
    ]


def test_prune_deletes_only_its_own_tagged_snapshots(default_stack: Any) -> None:
    assert default_stack.statements_with("rds:DeleteDBSnapshot") == [
        {
            "Action": "rds:DeleteDBSnapshot",
            "Condition": {
                "StringEquals": {"aws:ResourceTag/rds-s3-export:pipeline": "rds-s3-export"}
            },
            "Effect": "Allow",
            "Resource": default_stack.rds_arn("snapshot:mysnapshot-*"),
        }
    ]


def test_start_export_uses_the_key_through_rds_only(default_stack: Any) -> None:
    key = default_stack.arn_of(default_stack.stack.storage.key)
    statements = default_stack.statements(
        default_stack.stack.functions.policies["start_export"].policy
    )
    assert {"Action": "kms:DescribeKey", "Effect": "Allow", "Resource": key} in statements
    assert {
        "Action": "kms:CreateGrant",
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        "Effect": "Allow",
        "Resource": key,
    } in statements


def test_validate_input_reads_only_its_own_state_machine(default_stack: Any) -> None:
    statements = default_stack.statements(
        default_stack.stack.functions.policies["validate_input"].policy
    )
    assert {
        "Action": "states:ListExecutions",
        "Effect": "Allow",
        "Resource": default_stack.states_arn("stateMachine:rds-s3-export"),
    } in statements
    assert {
        "Action": "states:DescribeExecution",
        "Effect": "Allow",
        "Resource": default_stack.states_arn("execution:rds-s3-export:*"),
    } in statements


def test_resource_star_only_where_aws_requires_it(any_stack: Any, as_list: Any) -> None:
    required = {
        "rds:DescribeExportTasks",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
    for _, statement in any_stack.identity_statements():
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= required, statement


def test_publish_manifest_writes_only_the_manifest_and_sends_to_the_default_bus(
    default_stack: Any,
) -> None:
    storage = default_stack.stack.storage
    policy = default_stack.stack.functions.policies["publish_manifest"].policy
    statements = default_stack.statements(policy)
    prefix_objects = default_stack.objects_arn(storage.bucket, "/exports/mydb/*")

    assert {
        "Action": "s3:PutObject",
        "Effect": "Allow",
        "Resource": default_stack.objects_arn(storage.bucket, "/exports/mydb/_manifest.json"),
    } in statements
    assert {"Action": "s3:GetObject", "Effect": "Allow", "Resource": prefix_objects} in statements
    assert {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Effect": "Allow",
        "Resource": default_stack.arn_of(storage.key),
    } in statements
    bus = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":events:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":event-bus/default",
            ],
        ]
    }
    assert {"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus} in statements
    # it writes nothing else and deletes nothing
    puts = [s for s in statements if "s3:PutObject" in str(s["Action"])]
    assert len(puts) == 1
    assert not [s for s in statements if "Delete" in str(s["Action"])]
    env = default_stack.function("publish_manifest")["Properties"]["Environment"]["Variables"]
    assert env == {
        "EXPORT_BUCKET": default_stack.ref(storage.bucket),
        "EXPORT_KMS_KEY_ARN": default_stack.arn_of(storage.key),
    }


def test_publish_manifest_may_write_one_manifest_per_prefix(databases_stack: Any) -> None:
    storage = databases_stack.stack.storage
    policy = databases_stack.stack.functions.policies["publish_manifest"].policy
    (put,) = [s for s in databases_stack.statements(policy) if s["Action"] == "s3:PutObject"]
    assert sorted(map(str, put["Resource"])) == sorted(
        map(
            str,
            [
                databases_stack.objects_arn(storage.bucket, "/exports/orders/_manifest.json"),
                databases_stack.objects_arn(storage.bucket, "/exports/billing/_manifest.json"),
            ],
        )
    )
