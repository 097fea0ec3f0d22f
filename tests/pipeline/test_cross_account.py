"""Issue 19: nights with the export bucket in the data platform's account.

The functions, the state machine, the RDS instance and the pipeline's roles are in PIPELINE; the
bucket, the export KMS key and Snowflake's read-only role in DATA (sandbox/accounts.py says how
moto keeps the two apart). The expected ARNs are built here from the account IDs and AWS's
documented ARN formats, not read back from the sandbox:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html (IAM, STS) and
https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id-key-ARN (KMS).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import s3_backends
from moto.sts.models import sts_backends

from infra.config import load_config
from sandbox import accounts
from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import ACCOUNT, REGION, RunResult, Sandbox, Settings

# one function per step module
STEPS = Path(__file__).resolve().parents[2] / "lambdas" / "rds_s3_export" / "steps"

PIPELINE = "111111111111"  # the database's account (not moto's default, ACCOUNT)
DATA = "222222222222"
PREFIX = "exports/mydb"


@pytest.fixture
def cross(settings: Settings, timing: Timing) -> Iterator[Sandbox]:
    """A sandbox whose bucket, export key and Snowflake role are in DATA, with `mydb`."""
    with Sandbox(settings, timing, data_account_id=DATA, pipeline_account_id=PIPELINE) as sb:
        sb.add_instance("mydb")
        yield sb


def _night(sb: Sandbox, night: int) -> RunResult:
    if night > 1:
        sb.clock.advance(24 * 3600)
    result = sb.run({}, name=f"night-{night}")
    assert result.status == "SUCCEEDED", result.cause
    return result


def _key_arn_pattern(account: str) -> re.Pattern[str]:
    return re.compile(rf"arn:aws:kms:{REGION}:{account}:key/[0-9a-f-]{{36}}")


def test_two_nights_export_purge_and_publish_in_the_data_accounts_bucket(cross: Sandbox) -> None:
    name = cross.settings.pipeline_name
    export_role = f"arn:aws:iam::{PIPELINE}:role/{name}-rds-export"
    bucket = cross.settings.bucket
    # the sandbox's own calls, like the handlers', land in the pipeline's account
    assert cross.client("sts").get_caller_identity()["Account"] == PIPELINE

    first = _night(cross, 1)
    second = _night(cross, 2)

    # the second night exported, purged the first night's export and published its own
    assert first.output and second.output
    old, new = first.output["export"]["task_id"], second.output["export"]["task_id"]
    assert old != new
    assert second.output["purge"]["folders"] == [f"{PREFIX}/{old}/"]
    assert second.output["purge"]["objects_deleted"] > 0
    assert cross.export_folders(PREFIX) == [new]
    manifest = cross.manifest(PREFIX)
    assert manifest is not None and manifest["export_task_id"] == new
    assert manifest["bucket"] == bucket
    assert len(cross.ready_events()) == 2

    # the bucket is the data account's: moto keeps it in DATA's S3 backend, and only DATA's
    # ListBuckets lists it (bucket names are global, a bucket has one owning account)
    assert s3_backends.bucket_accounts[bucket] == ("aws", DATA)
    assert bucket in s3_backends[DATA]["aws"].buckets
    assert bucket not in s3_backends[PIPELINE]["aws"].buckets
    assert bucket not in s3_backends[ACCOUNT]["aws"].buckets
    assert bucket in {b["Name"] for b in cross.data_client("s3").list_buckets()["Buckets"]}
    assert bucket not in {b["Name"] for b in cross.client("s3").list_buckets()["Buckets"]}

    # the key is the data account's: an ARN in DATA, found in DATA's KMS (moto does not
    # resolve another account's key ARN, so the pipeline account's KMS does not find it)
    assert _key_arn_pattern(DATA).fullmatch(cross.key_arn)
    found = cross.data_client("kms").describe_key(KeyId=cross.key_arn)["KeyMetadata"]
    assert found["AWSAccountId"] == DATA and found["Arn"] == cross.key_arn
    pipeline_kms = cross.client("kms")
    with pytest.raises(pipeline_kms.exceptions.NotFoundException):
        pipeline_kms.describe_key(KeyId=cross.key_arn)

    # what the functions were given: the environment the handlers read ...
    assert os.environ["EXPORT_BUCKET"] == bucket
    assert os.environ["EXPORT_ROLE_ARN"] == export_role
    assert os.environ["EXPORT_KMS_KEY_ARN"] == cross.key_arn
    start_env = cross.settings.environments(cross.role_arn, cross.key_arn)["start_export"]
    assert start_env == {
        "EXPORT_BUCKET": bucket,
        "EXPORT_ROLE_ARN": export_role,
        "EXPORT_KMS_KEY_ARN": cross.key_arn,
    }
    # ... and what StartExportTask received from them, as RDS reports it
    tasks = {
        t["ExportTaskIdentifier"]: t
        for t in cross.client("rds").describe_export_tasks()["ExportTasks"]
    }
    for ident in (old, new):
        assert tasks[ident]["S3Bucket"] == bucket
        assert tasks[ident]["IamRoleArn"] == export_role
        assert tasks[ident]["KmsKeyId"] == cross.key_arn
        assert accounts.account_of(tasks[ident]["SourceArn"]) == PIPELINE

    # RDS wrote the files as the export role (assumed in the pipeline account), and every
    # object in the prefix is SSE-KMS under the data account's key
    assumed = [r.role_arn for r in sts_backends[PIPELINE]["aws"].assumed_roles]
    assert export_role in assumed
    s3 = cross.client("s3")
    keys = list(cross.listing(PREFIX))
    assert f"{PREFIX}/_manifest.json" in keys and len(keys) > 5
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", cross.key_arn)

    # the pipeline's resources are in the pipeline's account, its roles named as the data
    # stack's policies name them
    lam = cross.client("lambda")
    modules = {p.stem for p in STEPS.glob("*.py")} - {"__init__"}
    assert set(cross.function_arns) == modules
    roles = accounts.PipelineRoles(name, PIPELINE)
    for module, arn in cross.function_arns.items():
        assert accounts.account_of(arn) == PIPELINE
        role = lam.get_function(FunctionName=arn)["Configuration"]["Role"]
        assert role == roles.function_role_arn(module)
    assert cross.function_role_arns["start_export"] == (
        f"arn:aws:iam::{PIPELINE}:role/{name}-start-export"
    )
    assert accounts.account_of(cross.state_machine_arn) == PIPELINE


def test_snowflakes_role_in_the_data_account_reads_every_file_the_manifest_lists(
    cross: Sandbox,
) -> None:
    _night(cross, 1)
    second = _night(cross, 2)
    assert second.output

    # Snowflake's integration assumes the read-only role of the data account
    role_name = f"{cross.settings.pipeline_name}-snowflake"
    assert cross.snowflake_role_arn == f"arn:aws:iam::{DATA}:role/{role_name}"
    who = cross.snowflake_client("sts").get_caller_identity()
    assert who["Account"] == DATA
    assert who["Arn"] == f"arn:aws:sts::{DATA}:assumed-role/{role_name}/snowflake"

    read = accounts.read_published_export(cross.snowflake_client, cross.settings.bucket, PREFIX)

    manifest = cross.manifest(PREFIX)
    assert manifest is not None
    assert read.export_task_id == second.output["export"]["task_id"]
    assert read.files == sum(t["file_count"] for t in manifest["tables"]) == 4
    assert read.bytes == sum(f["size"] for t in manifest["tables"] for f in t["files"])
    assert read.rows == {t["target"]: t["row_count"] for t in manifest["tables"]}
    # the sample database `shop` (sandbox/export_files.py): 40 customers, 120 orders, 300 items
    assert read.rows == {
        "shop.public.customers": 40,
        "shop.public.orders": 120,
        "shop.public.order_items": 300,
    }
    assert read.key_arns == {cross.key_arn}


@pytest.mark.parametrize("wrong", ["pipeline-account-key", "unknown-key-in-data-account"])
def test_the_reader_refuses_a_file_not_under_a_data_account_key(cross: Sandbox, wrong: str) -> None:
    # Given a published export, one of whose files is rewritten (same bytes) under a key
    # that is the pipeline account's, or that the data account does not have
    _night(cross, 1)
    manifest = cross.manifest(PREFIX)
    assert manifest is not None
    table = manifest["tables"][0]
    key = f"{table['folder']}{table['files'][0]['path']}"
    s3, bucket = cross.client("s3"), cross.settings.bucket
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if wrong == "pipeline-account-key":
        other = cross.client("kms").create_key()["KeyMetadata"]["Arn"]
        assert _key_arn_pattern(PIPELINE).fullmatch(other)
        expected = "outside account"
    else:
        other = f"arn:aws:kms:{REGION}:{DATA}:key/{uuid.uuid4()}"
        expected = "not found in account"
    s3.put_object(
        Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=other
    )

    # Then Snowflake's role does not take it for the export's file
    with pytest.raises(accounts.ReadRefused, match=expected) as refused:
        accounts.read_published_export(cross.snowflake_client, bucket, PREFIX)
    assert key in str(refused.value)


def test_a_failed_export_is_discarded_from_the_data_accounts_bucket(cross: Sandbox) -> None:
    _night(cross, 1)
    before = cross.listing(PREFIX)
    cross.clock.advance(24 * 3600)
    cross.rds.next_export(ExportOutcome(status="FAILED", failure_cause="injected"))

    result = cross.run({}, name="night-2")

    assert (result.status, result.error) == ("FAILED", "ExportFailed")
    assert "1 partial object(s)" in (result.cause or "")
    # the partial file RDS left in the data account's bucket is gone; night 1's export stays
    assert cross.listing(PREFIX) == before
    assert s3_backends.bucket_accounts[cross.settings.bucket] == ("aws", DATA)


@pytest.mark.parametrize(
    ("value", "message"),
    [("22222222222", "12-digit"), ("acct-2222222", "12-digit"), (PIPELINE, "pipeline's account")],
)
def test_the_data_account_id_is_checked(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sandbox(data_account_id=value, pipeline_account_id=PIPELINE)


def test_moto_s_default_account_comes_back_after_the_sandbox() -> None:
    with Sandbox(data_account_id=DATA, pipeline_account_id=PIPELINE) as sb:
        assert sb.client("sts").get_caller_identity()["Account"] == PIPELINE
    with mock_aws():
        assert boto3.client("sts", region_name=REGION).get_caller_identity()["Account"] == ACCOUNT


def test_pipeline_roles_are_named_before_deploying() -> None:
    roles = accounts.PipelineRoles("nightly", "111111111111")
    assert roles.export_role_arn() == "arn:aws:iam::111111111111:role/nightly-rds-export"
    assert roles.function_role_arn("discard_failed_export") == (
        "arn:aws:iam::111111111111:role/nightly-discard-export"
    )
    # the very names the data stack's policies give (PipelineConfig, from the context)
    config = load_config(
        {"pipeline_name": "nightly", "data_account_id": "222222222222"},
        {"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": REGION},
    )
    sandbox_arns = {
        purpose: roles.export_role_arn()
        if purpose == "export_role"
        else roles.function_role_arn(purpose)
        for purpose in config.role_arns()
    }
    assert sandbox_arns == config.role_arns()
