"""Other configurations: a cluster, several databases, an existing bucket and key; outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_cdk.assertions import Match

from tests.infra.conftest import EXISTING, EXISTING_KEY_ARN, GLUE, REPO, SNOWFLAKE


def test_cluster_scopes_iam_to_cluster_arns(cluster_stack: Any, as_list: Any) -> None:
    cluster = cluster_stack.rds_arn("cluster:analytics-cluster")
    own = cluster_stack.rds_arn("cluster-snapshot:analytics-*")
    automated = cluster_stack.rds_arn("cluster-snapshot:rds:analytics-cluster-*")

    # Then the cluster calls are used, on the cluster and its cluster snapshots
    assert cluster_stack.statements_with("rds:CreateDBClusterSnapshot") == [
        {"Action": "rds:CreateDBClusterSnapshot", "Effect": "Allow", "Resource": [cluster, own]}
    ]
    assert cluster_stack.statements_with("rds:DeleteDBClusterSnapshot") == [
        {
            "Action": "rds:DeleteDBClusterSnapshot",
            "Condition": {
                "StringEquals": {"aws:ResourceTag/rds-s3-export:pipeline": "rds-s3-export"}
            },
            "Effect": "Allow",
            "Resource": own,
        }
    ]
    # reading and exporting reach a cluster snapshot of any name (source: snapshot)
    any_snapshot = cluster_stack.rds_arn("cluster-snapshot:*")
    for statement in cluster_stack.statements_with("rds:DescribeDBClusterSnapshots"):
        assert statement["Resource"] == [cluster, any_snapshot]
    for statement in cluster_stack.statements_with("rds:DescribeDBClusters"):
        assert statement["Resource"] == cluster
    assert cluster_stack.statements_with("rds:StartExportTask")[0]["Resource"] == any_snapshot
    assert automated in cluster_stack.statements_with("rds:ListTagsForResource")[0]["Resource"]

    # and no instance call or instance ARN remains
    for action in ("rds:CreateDBSnapshot", "rds:DeleteDBSnapshot", "rds:DescribeDBInstances"):
        assert cluster_stack.statements_with(action) == []
    text = json.dumps(cluster_stack.data["Resources"])
    assert ":db:" not in text
    assert ":snapshot:" not in text


def test_databases_list_covers_each_database(databases_stack: Any) -> None:
    stack = databases_stack.stack
    validate = databases_stack.function("validate_input")["Properties"]["Environment"]
    settings = json.loads(validate["Variables"]["PIPELINE_SETTINGS"])

    # Then each run must name its database, and only the configured ones are allowed
    assert json.loads(validate["Variables"]["PIPELINE_DEFAULTS"]) == {}
    assert [d["id"] for d in settings["databases"]] == ["orders", "billing"]
    assert [d["s3_prefix"] for d in settings["databases"]] == ["exports/orders", "exports/billing"]
    # the export role and the purge reach both prefixes, and nothing else
    bucket = stack.storage.bucket
    prefixes = [
        databases_stack.objects_arn(bucket, "/exports/orders/*"),
        databases_stack.objects_arn(bucket, "/exports/billing/*"),
    ]
    for statement in databases_stack.statements_with("s3:DeleteObject"):
        assert statement["Resource"] == prefixes
    # each database's calls follow its kind
    assert databases_stack.statements_with("rds:CreateDBSnapshot")[0]["Resource"] == [
        databases_stack.rds_arn("db:orders"),
        databases_stack.rds_arn("snapshot:orders-nightly-*"),
    ]
    assert databases_stack.statements_with("rds:CreateDBClusterSnapshot")[0]["Resource"] == [
        databases_stack.rds_arn("cluster:billing"),
        databases_stack.rds_arn("cluster-snapshot:billing-nightly-*"),
    ]


def test_existing_bucket_and_key_are_used_not_created(existing_stack: Any) -> None:
    stack = existing_stack.stack
    key_arn = stack.config.kms_key_arn
    assert key_arn is not None
    bucket_arn = {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::acme-existing-exports"]]
    }

    # Then the stack creates no bucket and no export key (only the alert topic's and logs' keys)
    assert existing_stack.template.find_resources("AWS::S3::Bucket") == {}
    keys = existing_stack.template.find_resources("AWS::KMS::Key")
    assert sorted(keys) == sorted(
        [existing_stack.logical_id(stack.alerts.key), existing_stack.logical_id(stack.logs_key)]
    )

    # and its policies name the given bucket and key
    assert {
        "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
        "Effect": "Allow",
        "Resource": bucket_arn,
    } in existing_stack.statements(stack.storage.export_role_policy)
    assert existing_stack.statements_with("kms:CreateGrant") == [
        {
            "Action": "kms:CreateGrant",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            "Effect": "Allow",
            "Resource": key_arn,
        }
    ]
    existing_stack.template.has_output("BucketName", {"Value": "acme-existing-exports"})
    existing_stack.template.has_output("KmsKeyArn", {"Value": key_arn})


def test_outputs_tell_how_to_use_the_pipeline(default_stack: Any) -> None:
    stack = default_stack.stack
    state_machine = default_stack.ref(stack.workflow.state_machine)
    bucket = default_stack.ref(stack.storage.bucket)
    template = default_stack.template

    template.has_output("StateMachineArn", {"Value": state_machine})
    template.has_output("BucketName", {"Value": bucket})
    template.has_output("S3Prefix", Match.object_like({"Value": "exports/mydb"}))
    template.has_output(
        "SnowflakeStageUrl",
        Match.object_like({"Value": {"Fn::Join": ["", ["s3://", bucket, "/exports/mydb/"]]}}),
    )
    template.has_output("KmsKeyArn", {"Value": default_stack.arn_of(stack.storage.key)})
    template.has_output(
        "StartExecutionCommand",
        Match.object_like(
            {
                "Value": {
                    "Fn::Join": [
                        "",
                        [
                            "aws stepfunctions start-execution --state-machine-arn ",
                            state_machine,
                            " --input '{\"dry_run\": true}'",
                        ],
                    ]
                }
            }
        ),
    )


def test_start_command_names_a_database_when_there_are_several(databases_stack: Any) -> None:
    outputs = databases_stack.data["Outputs"]
    command = outputs["StartExecutionCommand"]["Value"]["Fn::Join"][1][2]
    example = json.loads(command.split("--input ", 1)[1].strip("'"))
    assert example["db_instance_identifier"] == "orders"
    assert example["dry_run"] is True


def _documented_key_users() -> dict[str, tuple[set[str], set[str]]]:
    """docs/deploy.md's table of the roles an imported key's policy must name: role -> (key
    actions, condition keys)."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = text[text.index("<!-- key-users") :].split("\n\n", 1)[0]
    found = {}
    for line in table.splitlines()[3:]:  # the marker, the header and its rule
        role, actions, _why = (cell.strip() for cell in line.strip("|").split("|"))
        named = re.search(r"`([^`]+)`", role)
        found[named.group(1) if named else role] = (
            set(re.findall(r"`(kms:\w+)`", actions)),
            set(re.findall(r"`(kms:\w+) = ", actions)),
        )
    return found


def test_deploy_md_lists_every_role_an_imported_key_must_allow(
    synth: Callable[..., Any],
) -> None:
    # Given a stack with an imported key and the Snowflake role
    stack = synth(**EXISTING, **SNOWFLAKE, **GLUE)  # the catalog's function reads the manifest
    assert stack.synth_error is None, stack.synth_error
    label = {stack.logical_id(stack.stack.storage.export_role): "export role"}
    for module in stack.stack.functions.functions:
        label[stack.logical_id(stack.stack.functions.role(module))] = module
    assert stack.stack.snowflake is not None
    label[stack.logical_id(stack.stack.snowflake.role)] = "<pipeline_name>-snowflake"
    # When the roles whose IAM policies allow something on the key are collected
    users: dict[str, tuple[set[str], set[str]]] = {}
    for resource in stack.resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            resources = statement["Resource"]
            if statement["Effect"] != "Allow" or EXISTING_KEY_ARN not in (
                resources if isinstance(resources, list) else [resources]
            ):
                continue
            actions = statement["Action"]
            conditions = {k for c in statement.get("Condition", {}).values() for k in c}
            for role in resource["Properties"]["Roles"]:
                known = users.setdefault(label[role["Ref"]], (set(), set()))
                known[0].update(actions if isinstance(actions, list) else [actions])
                known[1].update(conditions)
    # Then docs/deploy.md names each of them, with exactly those actions and conditions
    assert users, "no role uses the imported key: is the test broken?"
    assert _documented_key_users() == users
