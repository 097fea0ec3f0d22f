"""Dry run: validate, check the database and the bucket, plan, report; change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from rds_s3_export import naming
from sandbox.runtime import RunResult, Sandbox
from tests.helpers import several

PREFIX = "exports/mydb"


def _world(sandbox: Sandbox) -> dict[str, Any]:
    """Everything a run could change: the bucket, the snapshots, the export tasks."""
    tasks = sandbox.client("rds").describe_export_tasks()["ExportTasks"]
    return {
        "bucket": sandbox.listing(),
        "snapshots": sandbox.snapshots("mydb"),
        "export_tasks": sorted((t["ExportTaskIdentifier"], t["Status"]) for t in tasks),
    }


def _succeeded(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
    assert result.output is not None
    return result.output


def test_a_dry_run_reports_the_plan_and_changes_nothing(sandbox: Sandbox) -> None:
    # Given one real run's export in the prefix, and a loose file beside it
    previous = _succeeded(sandbox.run({}))
    previous_keys = sorted(sandbox.listing(f"{PREFIX}/{previous['export']['task_id']}/"))
    sandbox.client("s3").put_object(
        Bucket=sandbox.settings.bucket, Key=f"{PREFIX}/notes.txt", Body=b"keep"
    )
    before = _world(sandbox)

    # When a dry run is started
    result = sandbox.run({"dry_run": True})

    # Then it succeeds with status DRY_RUN and the plan of a real run
    out = _succeeded(result)
    assert out["status"] == "DRY_RUN" and out["dry_run"] is True
    snapshot_id = out["snapshot"]["id"]
    assert snapshot_id.startswith("mysnapshot-") and naming.is_rds_identifier(
        snapshot_id, "snapshot"
    )
    assert out["snapshot"]["source"] == "new-snapshot"
    assert naming.is_export_task_id(out["export_task_id"])
    assert out["export_task_id"].startswith(snapshot_id)
    # the exact keys a real run would purge: those of the previous export, nothing else
    would = out["would_purge"]
    assert sorted(would["keys"]) == previous_keys
    assert would["count"] == len(previous_keys) and would["keys_truncated"] is False
    assert would["folders"] == [f"{PREFIX}/{previous['export']['task_id']}/"]
    assert would["left_alone"] == ["notes.txt"]
    # and nothing changed: bucket byte for byte, snapshots, export tasks
    assert _world(sandbox) == before
    # it never entered the states that create or start anything
    entered = {s.name for s in result.states}
    assert not entered & {
        "DescribeSnapshotStatus",
        "StartExport",
        "DescribeExportStatus",
        "PruneSnapshots",
    }


@pytest.mark.parametrize(
    "settings",
    [several({"db_instance_identifier": "nosuchdb", "s3_prefix": "x/no", "snapshot_prefix": "no"})],
    ids=["configured-but-missing"],
)
def test_a_dry_run_for_a_missing_database_fails_naming_it(sandbox: Sandbox) -> None:
    # Given a stack configured for a database that does not exist in RDS
    before = _world(sandbox)
    result = sandbox.run({"dry_run": True, "db_instance_identifier": "nosuchdb"})
    assert (result.status, result.error) == ("FAILED", "SourceNotFound")
    assert "nosuchdb" in (result.cause or "")
    assert _world(sandbox) == before


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-run"])
def test_a_missing_bucket_fails_naming_it_before_anything_is_made(
    sandbox: Sandbox, dry_run: bool
) -> None:
    # Given a stack whose configured bucket does not exist (deleted, or a wrong name)
    before, real_bucket = _world(sandbox), sandbox.settings.bucket
    sandbox.reconfigure(bucket="no-such-export-bucket")

    # When a run (dry or real) is started
    result = sandbox.run({"dry_run": dry_run})
    sandbox.reconfigure(bucket=real_bucket)

    # Then it fails in ValidateInput, before any snapshot, naming the bucket and what S3 said
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    cause = result.cause or ""
    assert "s3://no-such-export-bucket/exports/mydb/" in cause and "NoSuchBucket" in cause
    assert {s.name for s in result.states if s.type == "Task"} == {"ValidateInput"}
    assert _world(sandbox) == before


def test_a_dry_run_beside_a_real_run_neither_blocks_nor_is_blocked(sandbox: Sandbox) -> None:
    # Given a real run in progress, When a dry run starts beside it
    real = sandbox.start({}, name="a-real-run")
    dry = sandbox.start({"dry_run": True}, name="b-dry-run")
    # Then both succeed, and the prefix holds the real run's export only
    real_out, dry_out = _succeeded(sandbox.wait(real)), _succeeded(sandbox.wait(dry))
    assert dry_out["status"] == "DRY_RUN"
    assert sandbox.export_folders(PREFIX) == [real_out["export"]["task_id"]]
