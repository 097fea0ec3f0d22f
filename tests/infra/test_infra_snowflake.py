"""The optional read-only role for Snowflake's storage integration (infra/snowflake.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.application import create_app, read_context_file
from infra.config import ConfigError, load_config
from tests.infra.conftest import DATABASES, SNOWFLAKE

USER = SNOWFLAKE["snowflake_iam_user_arn"]
EXTERNAL_ID = SNOWFLAKE["snowflake_external_id"]


@pytest.fixture(scope="module")
def snowflake_stack(synth: Callable[..., Any]) -> Any:
    return synth(**SNOWFLAKE)


def _roles(stack: Any) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in stack.resources.items() if r["Type"] == "AWS::IAM::Role"}


def test_the_role_trusts_only_that_user_with_that_external_id(snowflake_stack: Any) -> None:
    assert snowflake_stack.synth_error is None, snowflake_stack.synth_error
    role = snowflake_stack.stack.snowflake.role
    properties = snowflake_stack.resource(role)["Properties"]

    assert properties["RoleName"] == "rds-s3-export-snowflake"
    assert properties["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
            "Effect": "Allow",
            "Principal": {"AWS": USER},
        }
    ]
    assert "ManagedPolicyArns" not in properties


def test_the_role_only_reads_the_prefix(snowflake_stack: Any) -> None:
    stack = snowflake_stack
    storage = stack.stack.storage
    statements = stack.statements(stack.stack.snowflake.policy)
    bucket = stack.arn_of(storage.bucket)

    assert statements == [
        {
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Effect": "Allow",
            "Resource": stack.objects_arn(storage.bucket, "/exports/mydb/*"),
        },
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["exports/mydb/*", "exports/mydb/"]}},
            "Effect": "Allow",
            "Resource": bucket,
        },
        {"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": bucket},
        {
            "Action": "kms:Decrypt",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": {
                        "Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
                    }
                }
            },
            "Effect": "Allow",
            "Resource": stack.arn_of(storage.key),
        },
    ]


def test_the_stack_created_key_lets_iam_policies_grant_decrypt(snowflake_stack: Any) -> None:
    # CDK's default key policy delegates to IAM (the account root may use the key), so the
    # role's identity policy is enough; nothing in the key policy denies it
    key = snowflake_stack.resource(snowflake_stack.stack.storage.key)
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert not [s for s in statements if s["Effect"] == "Deny"]
    root = [s for s in statements if s["Action"] == "kms:*"]
    (statement,) = root
    assert statement["Resource"] == "*"
    assert ":root" in str(statement["Principal"])


def test_the_output_names_the_role(snowflake_stack: Any) -> None:
    outputs = snowflake_stack.data["Outputs"]
    role = snowflake_stack.stack.snowflake.role
    assert outputs["SnowflakeRoleArn"]["Value"] == snowflake_stack.arn_of(role)


def test_no_keys_no_role(default_stack: Any) -> None:
    assert default_stack.stack.snowflake is None
    assert "SnowflakeRoleArn" not in default_stack.data["Outputs"]
    assert not [r for r in _roles(default_stack).values() if "RoleName" in r["Properties"]]


def test_every_prefix_of_a_databases_list_is_readable(synth: Callable[..., Any]) -> None:
    stack = synth(**DATABASES, **SNOWFLAKE)
    assert stack.synth_error is None, stack.synth_error
    statements = stack.statements(stack.stack.snowflake.policy)
    listing = next(s for s in statements if s["Action"] == "s3:ListBucket")
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [
        "exports/orders/*",
        "exports/orders/",
        "exports/billing/*",
        "exports/billing/",
    ]


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"snowflake_iam_user_arn": USER}, "snowflake_external_id"),
        ({"snowflake_external_id": EXTERNAL_ID}, "snowflake_iam_user_arn"),
    ],
)
def test_one_key_without_the_other_fails_synth(given: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError, match=f"context key {missing}: is required") as err:
        create_app({**read_context_file(), **given})
    assert err.value.key == missing


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("snowflake_iam_user_arn", "arn:aws:iam::123456789001:role/not-a-user"),
        ("snowflake_iam_user_arn", "abc1-b-self1234"),
        ("snowflake_external_id", "x"),  # shorter than 2
        ("snowflake_external_id", "has space"),
        ("snowflake_external_id", "a" * 1225),
    ],
)
def test_bad_values_are_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"context key {key}"):
        load_config({**SNOWFLAKE, key: value})


def test_the_longest_external_id_and_a_partition_arn_are_accepted() -> None:
    config = load_config(
        {
            "snowflake_iam_user_arn": "arn:aws-us-gov:iam::123456789001:user/x",
            "snowflake_external_id": "a" * 1224,
        }
    )
    assert config.snowflake_external_id == "a" * 1224
    assert config.snowflake_role_name == "rds-s3-export-snowflake"


# --- the manifest's notification to the stage's directory table ----------------------------

QUEUE = "arn:aws:sqs:us-east-1:123456789001:sf-snowpipe-AIDAEXAMPLE-abcdEFGH"


@pytest.fixture(scope="module")
def notified_stack(synth: Callable[..., Any]) -> Any:
    return synth(snowflake_stage_sqs_arn=QUEUE)


def _notifications(stack: Any) -> list[dict[str, Any]]:
    found = [r for r in stack.resources.values() if r["Type"] == "Custom::S3BucketNotifications"]
    return [
        c
        for r in found
        for c in r["Properties"]["NotificationConfiguration"].get("QueueConfigurations", [])
    ]


def test_the_bucket_notifies_the_stage_of_the_manifest_only(notified_stack: Any) -> None:
    assert notified_stack.synth_error is None, notified_stack.synth_error
    assert _notifications(notified_stack) == [
        {
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {
                "Key": {
                    "FilterRules": [
                        {"Name": "suffix", "Value": "_manifest.json"},
                        {"Name": "prefix", "Value": "exports/mydb/_manifest.json"},
                    ]
                }
            },
            "QueueArn": QUEUE,
        }
    ]


def test_one_notification_per_prefix(synth: Callable[..., Any]) -> None:
    stack = synth(**DATABASES, snowflake_stage_sqs_arn=QUEUE)
    assert stack.synth_error is None, stack.synth_error
    prefixes = [
        next(r["Value"] for r in c["Filter"]["Key"]["FilterRules"] if r["Name"] == "prefix")
        for c in _notifications(stack)
    ]
    assert prefixes == ["exports/orders/_manifest.json", "exports/billing/_manifest.json"]


def test_without_the_key_the_template_has_no_notification(default_stack: Any) -> None:
    assert default_stack.stack.manifest_notification is None
    assert not [
        r for r in default_stack.resources.values() if r["Type"] == "Custom::S3BucketNotifications"
    ]


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:sns:us-east-1:123456789001:topic",
        "arn:aws:sqs:us-east-1:12345:queue",
        "sf-snowpipe-queue",
        "arn:aws:sqs:us-east-1:123456789001:" + "q" * 81,
    ],
)
def test_a_bad_queue_arn_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match="context key snowflake_stage_sqs_arn") as err:
        load_config({"snowflake_stage_sqs_arn": value})
    assert "DESC STAGE" in str(err.value)
