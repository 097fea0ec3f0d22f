"""Bad execution inputs, run through the state machine: the run fails in ValidateInput with
InvalidInput naming the key, before anything exists (tests/unit/test_inputs.py has the rules)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.runtime import Sandbox, Settings

# --- executed: a bad input ends the run in ValidateInput, before anything exists -----------------


EXECUTED = [
    ("S3_prefix", {"S3_prefix": "exports/x"}),
    ("s3_prefix", {"s3_prefix": "exports:mydb"}),
    ("snapshot_prefix", {"snapshot_prefix": "my_snapshot"}),
    ("db_cluster_identifier", {"db_cluster_identifier": "c" * 64}),
    ("export_only", {"export_only": "shop"}),
    ("dry_run", {"dry_run": "yes"}),
]


@pytest.mark.parametrize(("key", "raw"), EXECUTED, ids=[k for k, _ in EXECUTED])
def test_executed_a_bad_input_fails_before_anything_is_created(
    sandbox: Sandbox, key: str, raw: dict[str, Any]
) -> None:
    # Given an empty bucket and a database with no manual snapshot
    # When the pipeline is started with the bad input
    result = sandbox.run(raw)

    # Then it fails with InvalidInput naming the key, in ValidateInput, having made nothing
    assert result.status == "FAILED", result.output
    assert result.error == "InvalidInput", result.cause
    assert key in (result.cause or ""), result.cause
    assert {s.name for s in result.states if s.type == "Task"} == {"ValidateInput"}
    assert sandbox.snapshots("mydb", snapshot_type="manual") == []
    assert sandbox.client("rds").describe_export_tasks()["ExportTasks"] == []
    assert sandbox.listing() == {}


@pytest.mark.parametrize(
    "settings",
    [Settings(databases=[{"db_instance_identifier": "otherdb", "s3_prefix": "exports/other"}])],
    ids=["none"],
)
def test_executed_no_database_fails_naming_both_keys(sandbox: Sandbox) -> None:
    # Given a stack with no default database, When {} is started
    result = sandbox.run({})
    # Then the run fails naming both keys, and nothing was created
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert "db_instance_identifier or db_cluster_identifier" in (result.cause or "")
    assert sandbox.snapshots("mydb", snapshot_type="manual") == []
    assert sandbox.listing() == {}


@pytest.mark.parametrize("body", ["[]", '"text"', "5", "null", "true"])
def test_executed_input_that_is_not_an_object_is_invalid_input(sandbox: Sandbox, body: str) -> None:
    # Given an execution input that is valid JSON but not an object
    result = sandbox.run(body)
    # Then the run ends InvalidInput (not States.Runtime), having created nothing
    assert (result.status, result.error) == ("FAILED", "InvalidInput"), result.cause
    assert "must be a JSON object" in (result.cause or "")
    assert sandbox.snapshots("mydb", snapshot_type="manual") == []
