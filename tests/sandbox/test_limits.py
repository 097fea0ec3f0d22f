"""The sandbox enforces AWS limits that moto alone would let pass (sandbox/limits.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox import limits
from sandbox.runtime import Sandbox
from tests.helpers import seed_objects


def test_delete_objects_with_more_than_1000_keys_is_malformed_xml_like_s3(
    sandbox: Sandbox,
) -> None:
    # Given 1,001 objects
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    keys = seed_objects(bucket, (f"x/{i:05d}" for i in range(1001)), b"")

    # When one DeleteObjects request names all of them, Then S3's MalformedXML, nothing deleted
    with pytest.raises(ClientError) as refused:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert refused.value.response["Error"]["Code"] == "MalformedXML"
    assert len(sandbox.listing("x/")) == 1001

    # and 1,000 keys are accepted
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:1000]]})
    assert list(sandbox.listing("x/")) == [keys[-1]]


def test_a_state_output_over_262144_bytes_fails_the_execution(sandbox: Sandbox) -> None:
    # Given a state machine whose Pass state outputs more than 256 KB
    limits.check_state_size_quota()
    big = "x" * (limits.STATE_MAX_BYTES + 1)
    definition = {
        "StartAt": "Big",
        "States": {
            "Big": {"Type": "Pass", "Result": {"blob": big}, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    sfn = sandbox.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="too-big", definition=json.dumps(definition), roleArn=sandbox.role_arn
    )["stateMachineArn"]

    # When it runs, Then it fails like Step Functions: States.DataLimitExceeded
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    for _ in range(600):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.DataLimitExceeded"


def test_a_lambda_result_over_262144_bytes_fails_the_execution(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ValidateInput returning more than 256 KB
    from rds_s3_export.steps import validate_input

    real = validate_input.validate

    def bloated(event: dict[str, Any]) -> dict[str, Any]:
        result = real(event)  # padded inside a declared field: steps.shaped allows no other
        return {**result, "plan": {**result["plan"], "padding": "x" * limits.STATE_MAX_BYTES}}

    monkeypatch.setattr(validate_input, "validate", bloated)

    # When the pipeline runs, Then it fails with States.DataLimitExceeded
    result = sandbox.run({})
    assert result.status == "FAILED"
    assert result.error == "States.DataLimitExceeded"


def test_the_sandbox_refuses_identifiers_longer_than_the_engine_allows(sandbox: Sandbox) -> None:
    # Given an Aurora cluster and the default instance
    rds = sandbox.client("rds")
    sandbox.add_cluster("mycluster")
    # When snapshots get ids one past their engine's limit, Then RDS's refusal comes back
    for call, params in (
        (rds.create_db_cluster_snapshot, {"DBClusterIdentifier": "mycluster",
                                          "DBClusterSnapshotIdentifier": "c" * 64}),
        (rds.create_db_snapshot, {"DBInstanceIdentifier": "mydb",
                                  "DBSnapshotIdentifier": "s" * 256}),
    ):  # fmt: skip
        with pytest.raises(ClientError) as refused:
            call(**params)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    # And ids at the limit are accepted
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier="mycluster", DBClusterSnapshotIdentifier="c" * 63
    )
    rds.create_db_snapshot(DBInstanceIdentifier="mydb", DBSnapshotIdentifier="s" * 255)
