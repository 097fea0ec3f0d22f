"""Overlapping runs: two executions in one sandbox at the same time never damage each other.

The schedule and a manual start (or two manual starts) can overlap. ValidateInput looks at the
other RUNNING executions of the state machine: of two for the same database or prefix, the
older (by start time, then name) goes on and the younger fails fast with AlreadyRunning,
before it creates anything. Purge, for its part, never deletes the folder of an export RDS
reports as still running, whoever started it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rds_s3_export import aws
from rds_s3_export.errors import AlreadyRunning, InvalidInput, Throttled
from rds_s3_export.inputs import build_config
from rds_s3_export.steps import validate_input
from sandbox.rds_sim import Timing
from sandbox.runtime import RunResult, Sandbox
from tests.helpers import several

PREFIX = "exports/mydb"
OTHERDB = {
    "db_instance_identifier": "otherdb",
    "snapshot_prefix": "othersnap",
    "s3_prefix": "exports/otherdb",
}


def _start_time(sandbox: Sandbox, arn: str) -> Any:
    return sandbox.client("stepfunctions").describe_execution(executionArn=arn)["startDate"]


def _export_ids(sandbox: Sandbox) -> set[str]:
    tasks = sandbox.client("rds").describe_export_tasks()["ExportTasks"]
    return {t["ExportTaskIdentifier"] for t in tasks}


def _output(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.name}: {result.error}: {result.cause}"
    assert result.output is not None
    return result.output


def test_the_younger_of_two_runs_for_one_database_fails_fast(sandbox: Sandbox) -> None:
    # Given a previous export in the prefix
    previous = _output(sandbox.run({}))
    manual_before = set(sandbox.snapshots("mydb", snapshot_type="manual"))
    tasks_before = _export_ids(sandbox)

    # When two executions for the same database and prefix start at (nearly) the same time
    arns = [sandbox.start({}, name="overlap-a"), sandbox.start({}, name="overlap-b")]
    results = [sandbox.wait(arn) for arn in arns]

    # Then the older (start time, then name) exports and the younger fails with AlreadyRunning
    keys = {arn: (_start_time(sandbox, arn), arn.rsplit(":", 1)[-1]) for arn in arns}
    older, younger = sorted(results, key=lambda r: keys[r.arn])
    out = _output(older)
    assert younger.status == "FAILED", younger.output
    assert younger.error == "AlreadyRunning", younger.cause
    cause = younger.cause or ""
    assert older.name in cause and "mydb" in cause and PREFIX in cause, cause
    # the younger stopped in ValidateInput: it created no snapshot and started no export
    assert {s.name for s in younger.states if s.type == "Task"} == {"ValidateInput"}
    manual_after = set(sandbox.snapshots("mydb", snapshot_type="manual"))
    assert manual_after - manual_before == {out["snapshot"]["id"]}
    assert _export_ids(sandbox) - tasks_before == {out["export"]["task_id"]}
    # and the prefix holds exactly one complete export: the older run's (which replaced the
    # previous one after verifying its own)
    task_id = out["export"]["task_id"]
    assert sandbox.export_folders(PREFIX) == [task_id]
    assert f"{PREFIX}/{task_id}/export_info_{task_id}.json" in sandbox.listing(PREFIX)
    assert out["purge"]["folders"] == [f"{PREFIX}/{previous['export']['task_id']}/"]


@pytest.mark.parametrize("settings", [several(OTHERDB)], ids=["mydb+otherdb"])
def test_a_run_cannot_name_another_databases_prefix(sandbox: Sandbox) -> None:
    # Given two configured databases, each with its own prefix, and a previous export of mydb
    sandbox.add_instance("otherdb")
    previous = sandbox.listing(PREFIX)
    _output(sandbox.run({"db_instance_identifier": "mydb"}))
    mine = sandbox.listing(PREFIX)
    assert mine != previous

    # When a run started by hand names otherdb with mydb's prefix, or a folder below its own
    for wrong in (PREFIX, "exports/otherdb/adhoc"):
        result = sandbox.run({"db_instance_identifier": "otherdb", "s3_prefix": wrong})

        # Then it is refused before anything is made, and mydb's export is untouched
        assert (result.status, result.error) == ("FAILED", "InvalidInput"), result.cause
        assert "s3_prefix" in (result.cause or "") and "otherdb" in (result.cause or "")
        assert {s.name for s in result.states if s.type == "Task"} == {"ValidateInput"}
        assert sandbox.listing(PREFIX) == mine


@pytest.mark.parametrize("settings", [several(OTHERDB)], ids=["mydb+otherdb"])
def test_runs_for_other_databases_and_prefixes_are_not_blocked(sandbox: Sandbox) -> None:
    # Given a second database with its own prefix, and a previous export of the first
    sandbox.add_instance("otherdb")
    _output(sandbox.run({"db_instance_identifier": "mydb"}))
    # the previous export's keys (not the manifest beside them, which is replaced, not purged)
    mine = {k: v for k, v in sandbox.listing(PREFIX).items() if k != f"{PREFIX}/_manifest.json"}

    # When runs for the two databases start at the same time
    first = sandbox.start({"db_instance_identifier": "mydb"}, name="parallel-a")
    second = sandbox.start({"db_instance_identifier": "otherdb"}, name="parallel-b")
    out_a, out_b = _output(sandbox.wait(first)), _output(sandbox.wait(second))

    # Then both export, each into its own prefix, and neither touched the other's
    assert sandbox.export_folders(PREFIX) == [out_a["export"]["task_id"]]
    assert sandbox.export_folders("exports/otherdb") == [out_b["export"]["task_id"]]
    assert out_a["database"]["id"] == "mydb" and out_b["database"]["id"] == "otherdb"
    assert out_b["purge"]["objects_deleted"] == 0
    assert out_a["purge"]["objects_deleted"] == len(mine)


def test_purge_never_deletes_the_folder_of_an_export_rds_reports_running(
    sandbox: Sandbox, timing: Timing
) -> None:
    # Given a previous export, and an export that someone else started into the same prefix,
    # which RDS reports IN_PROGRESS for hours; its folder already holds files (worst case:
    # even an export_info, so it looks like a complete old export)
    _output(sandbox.run({}))
    rds, s3, bucket = sandbox.client("rds"), sandbox.client("s3"), sandbox.settings.bucket
    arn = rds.create_db_snapshot(DBInstanceIdentifier="mydb", DBSnapshotIdentifier="manual-1")[
        "DBSnapshot"
    ]["DBSnapshotArn"]
    sandbox.clock.advance(timing.snapshot_seconds)
    timing.export_running_seconds = 6 * 3600.0
    rds.start_export_task(
        ExportTaskIdentifier="manual-export-1",
        SourceArn=arn,
        S3BucketName=bucket,
        IamRoleArn=sandbox.role_arn,
        KmsKeyId=sandbox.key_arn,
        S3Prefix=PREFIX,
    )
    timing.export_running_seconds = 600.0
    running = {
        f"{PREFIX}/manual-export-1/export_info_manual-export-1.json": b"{}",
        f"{PREFIX}/manual-export-1/shop/public.orders/1/part-00000-x.gz.parquet": b"PAR1",
    }
    for key, body in running.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    etags = {k: v for k, v in sandbox.listing(PREFIX).items() if k in running}

    # When the pipeline runs and purges
    out = _output(sandbox.run({}))

    # Then the running export's folder is byte-for-byte intact beside the new export
    status = rds.describe_export_tasks(ExportTaskIdentifier="manual-export-1")["ExportTasks"]
    assert status[0]["Status"] == "IN_PROGRESS"
    after = sandbox.listing(PREFIX)
    assert {k: after.get(k) for k in running} == etags
    assert sandbox.export_folders(PREFIX) == sorted([out["export"]["task_id"], "manual-export-1"])
    assert all(not f.endswith("manual-export-1/") for f in out["purge"]["folders"])


class _FakeStepFunctions:
    """ListExecutions / DescribeExecution of a state machine with one other RUNNING run."""

    def __init__(self, name: str, start: datetime, execution_input: dict[str, Any]) -> None:
        self.item = {"executionArn": f"{SM}:{name}".replace("stateMachine", "execution")}
        self.item |= {"name": name, "startDate": start, "status": "RUNNING"}
        self.input = json.dumps(execution_input)

    def get_paginator(self, operation: str) -> _FakeStepFunctions:
        assert operation == "list_executions"
        return self

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        assert params == {"stateMachineArn": SM, "statusFilter": "RUNNING"}
        return [{"executions": [self.item]}]

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == self.item["executionArn"]
        return {"input": self.input}


SM = "arn:aws:states:us-east-1:123456789012:stateMachine:rds-s3-export"


@pytest.mark.parametrize("check", ["ValidateInput", "ConfirmNoOverlap"])
@pytest.mark.parametrize(
    ("other_name", "refused"),
    [("run-a", True), ("run-c", False)],
    ids=["other-name-sorts-first", "other-name-sorts-last"],
)
def test_two_runs_started_in_one_millisecond_are_ordered_by_name(
    monkeypatch: pytest.MonkeyPatch, other_name: str, refused: bool, check: str
) -> None:
    # Given this run "run-b" started at .627900 s (the context object has microseconds) and
    # another RUNNING run for the same database listed at .627 s (ListExecutions: milliseconds)
    defaults = {"db_instance_identifier": "mydb", "snapshot_prefix": "p", "s3_prefix": PREFIX}
    monkeypatch.setenv("PIPELINE_DEFAULTS", json.dumps(defaults))
    monkeypatch.setenv("PIPELINE_SETTINGS", "{}")
    listed = datetime(2026, 1, 1, 2, 15, 33, 627000, tzinfo=UTC)
    fake = _FakeStepFunctions(other_name, listed, {})
    monkeypatch.setattr(aws, "client", lambda service: fake)
    config = build_config({}, defaults, {})
    mine = {
        "id": f"{SM}:run-b".replace("stateMachine", "execution"),
        "name": "run-b",
        "start_time": "2026-01-01T02:15:33.627900+00:00",
        "state_machine": SM,
    }

    # When this run checks for overlapping runs: in ValidateInput, or once more in
    # ConfirmNoOverlap (where a run whose first check came before the other run existed sees it)
    def run_check() -> None:
        if check == "ValidateInput":
            validate_input.check_not_running(config, mine)
        else:
            event = {"recheck": {"config": config.as_dict()}, "execution": mine}
            assert validate_input.lambda_handler(event, None) == {"checked": True}

    # Then the two are ordered by name within the millisecond: exactly one of them refuses
    if refused:
        with pytest.raises(AlreadyRunning, match=f"execution {other_name} "):
            run_check()
    else:
        run_check()


class _RefusingStepFunctions(_FakeStepFunctions):
    def __init__(self, code: str) -> None:
        super().__init__("run-a", datetime(2026, 1, 1, tzinfo=UTC), {})
        self.code = code

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "ListExecutions")


@pytest.mark.parametrize(
    ("code", "raised"),
    [("ThrottlingException", Throttled), ("AccessDeniedException", InvalidInput)],
    ids=["throttled-is-retried", "denied-refuses-to-start"],
)
def test_when_the_overlap_check_cannot_be_made_the_run_does_not_start_unchecked(
    monkeypatch: pytest.MonkeyPatch, code: str, raised: type[Exception]
) -> None:
    # Given Step Functions refusing ListExecutions
    defaults = {"db_instance_identifier": "mydb", "snapshot_prefix": "p", "s3_prefix": PREFIX}
    monkeypatch.setattr(aws, "client", lambda service: _RefusingStepFunctions(code))
    mine = {"id": "x", "name": "run-b", "start_time": "2026-01-01T02:00:00Z", "state_machine": SM}

    # When this run checks for overlapping runs, Then throttling is Throttled (the state
    # machine's Retry) and any other refusal is an error naming the state machine, never a pass
    with pytest.raises(raised, match=f"state machine {SM}"):
        validate_input.check_not_running(build_config({}, defaults, {}), mine)
