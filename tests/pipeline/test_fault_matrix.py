"""Nothing lost: every fault at every step, executed on the real state machine in the sandbox.

The matrix is one table, `MATRIX`: a row per (step, fault). Adding a step or a fault adds rows,
and the fault matrix in docs/faults.md must list exactly these rows
(test_docs_table_matches_the_matrix).

Every row runs the same script:

1. Given a complete export already in the prefix (a successful run: the "previous export"),
   recorded as a listing of keys with ETags;
2. When the fault is injected and the pipeline runs again;
3. Then the outcome is the row's (it recovers, or it fails with the design's error name and a
   Cause that names the resource), and the data is the row's: the prefix is unchanged, or the
   previous export is byte-for-byte intact beside this run's own folder, or, only when the
   new export completed and was verified, the prefix holds exactly the new one;
4. and the manifest never names a deleted folder: no DeleteObjects request of either run
   touches the folder the manifest names at that moment (tests/pipeline/manifest_watch.py),
   and afterwards the manifest names a complete export that is there.

Each row records a verdict (recovered, failed cleanly, lost data, unexpected) as a test
property; `python -m tests.pipeline.test_fault_matrix [-n 2]` (from the repository root)
runs the matrix and prints the counts.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import ASL_PATH, RunResult, Sandbox
from tests.helpers import tables_info_entries
from tests.pipeline.manifest_watch import watching

PREFIX = "exports/mydb"
DATABASE = "mydb"
DOC = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
ASL = json.loads(ASL_PATH.read_text())

# What each step's Lambda is (the fault injector aims API faults and crashes at a module).
MODULE = {
    "ValidateInput": "validate_input",
    "CreateSnapshot": "create_snapshot",
    "DescribeSnapshotStatus": "describe_status",
    "StartExport": "start_export",
    "DescribeExportStatus": "describe_status",
    "PurgePrefix": "purge_prefix",
    "PublishManifest": "publish_manifest",
    "PurgePreviousExport": "purge_prefix",
    "PruneSnapshots": "prune_snapshots",
}
MANIFEST = f"{PREFIX}/_manifest.json"

# The data a row must leave behind (the assertions are in `_data_verdict`).
UNCHANGED = "unchanged"  # the listing under the prefix is identical, key for key, ETag for ETag
KEPT = "kept"  # previous export byte-for-byte intact; other keys only in this run's own folder
REPLACED = "replaced"  # the prefix holds exactly this run's export, complete and verified
DATA_TEXT = {
    UNCHANGED: "unchanged, byte for byte",
    KEPT: "previous export intact; only this run's own folder added",
    REPLACED: "replaced by the new, verified export",
}

# The outcome kinds, as the docs table spells them.
RECOVERS = "recovers"
FAILS = "fails cleanly"
WARNS = "succeeds with a warning"


@dataclass
class World:
    """What a row's injection may look at: the sandbox and the previous run."""

    sandbox: Sandbox
    previous: RunResult


Inject = Callable[[World], dict[str, Any]]  # injects the fault; returns the execution input


@dataclass(frozen=True)
class Row:
    step: str
    fault: str  # the fault's name, as in the docs' fault matrix
    how: str  # how the sandbox simulates it, as in the docs' fault matrix
    inject: Inject
    outcome: str  # RECOVERS, FAILS or WARNS
    error: str | None  # the execution's Error for FAILS
    data: str  # UNCHANGED, KEPT or REPLACED
    # the resource the Cause (or warning) must name: database, snapshot, previous snapshot,
    # export, s3 (the prefix's URI), step (the step's name), or else this literal text
    names: str = "database"
    retried: str | None = None  # the transient error the step's Retry absorbs
    persistent: bool = False  # the transient error never stops: the Retry budget is spent

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.step} {self.fault}".lower()).strip("-")


# --- injections ---------------------------------------------------------------------------


def api(service: str, operation: str, code: str, *, module: str, times: int | None = 1) -> Inject:
    def inject(world: World) -> dict[str, Any]:
        world.sandbox.faults.api(service, operation, code, times=times, module=module)
        return {}

    return inject


def half_done(
    kind: str, service: str, operation: str, *, module: str, times: int | None = 1
) -> Inject:
    """The request is carried out, then its answer is lost (`lose_answer`) or the function dies
    with it (`kill_after`)."""

    def inject(world: World) -> dict[str, Any]:
        getattr(world.sandbox.faults, kind)(service, operation, times, module=module)
        return {}

    return inject


def crash(module: str, *, after_snapshot_polls: bool = False, skip: int = 0) -> Inject:
    """Crash `module` once, after `skip` invocations; with `after_snapshot_polls`, let
    DescribeSnapshotStatus's looks pass first (describe_status serves both loops), so the crash
    hits DescribeExportStatus."""

    def inject(world: World) -> dict[str, Any]:
        assert world.previous.output is not None
        polls = world.previous.output["polls"]["snapshot"] if after_snapshot_polls else 0
        world.sandbox.faults.crash(module, skip=skip + polls)
        return {}

    return inject


def given_input(execution_input: dict[str, Any]) -> Inject:
    def inject(world: World) -> dict[str, Any]:
        return execution_input

    return inject


def configured_but_missing(database: str) -> Inject:
    """The stack is configured for `database` (beside mydb), but RDS has no such database."""

    def inject(world: World) -> dict[str, Any]:
        world.sandbox.reconfigure(
            databases=[
                {"db_instance_identifier": "mydb", "s3_prefix": PREFIX},
                {"db_instance_identifier": database, "s3_prefix": f"exports/{database}",
                 "snapshot_prefix": database},
            ]
        )  # fmt: skip
        return {"db_instance_identifier": database}

    return inject


def snapshot_fails(world: World) -> dict[str, Any]:
    world.sandbox.rds.fail_next_snapshot("failed")
    return {}


def export_ends(outcome: ExportOutcome, **settings: Any) -> Inject:
    def inject(world: World) -> dict[str, Any]:
        world.sandbox.rds.next_export(outcome)
        if settings:
            world.sandbox.reconfigure(**settings)
        return {}

    return inject


def slower(**changes: float) -> Inject:
    """This run's snapshot or export takes longer (Timing fields), and its deadline (stack
    settings) is shorter than that."""

    def inject(world: World) -> dict[str, Any]:
        timing = world.sandbox.rds.timing
        for key, value in changes.items():
            if hasattr(timing, key):
                setattr(timing, key, value)
            else:
                world.sandbox.reconfigure(**{key: value})
        return {}

    return inject


def fill_export_quota(world: World) -> dict[str, Any]:
    """Five exports of other snapshots running (to another prefix) when this run starts its
    own; they end 15 simulated minutes later, which frees the slots."""
    sb = world.sandbox
    rds = sb.client("rds")
    arns = [
        rds.create_db_snapshot(DBInstanceIdentifier=DATABASE, DBSnapshotIdentifier=f"other-{i}")[
            "DBSnapshot"
        ]["DBSnapshotArn"]
        for i in range(sb.rds.export_quota)
    ]
    sb.clock.advance(sb.rds.timing.snapshot_seconds)
    usual = sb.rds.timing.export_running_seconds
    sb.rds.timing.export_running_seconds = 900
    try:
        for i, arn in enumerate(arns):
            rds.start_export_task(
                ExportTaskIdentifier=f"other-export-{i}",
                SourceArn=arn,
                S3BucketName=sb.settings.bucket,
                IamRoleArn=sb.role_arn,
                KmsKeyId=sb.key_arn,
                S3Prefix="exports/other",
            )
    finally:
        sb.rds.timing.export_running_seconds = usual
    assert sb.rds.running_exports(sb.clock.now()) == sb.rds.export_quota
    return {}


def prune_everything_but_the_new_snapshot(world: World) -> dict[str, Any]:
    world.sandbox.faults.api(
        "rds", "DeleteDBSnapshot", "AccessDenied", times=None, module="prune_snapshots"
    )
    return {"keep_snapshots": 0}


# --- the matrix -----------------------------------------------------------------------------

THROTTLED_ONCE = "throttled once"
THROTTLED_ALWAYS = "throttled persistently"
BUSY_ONCE = "instance busy once"
BUSY_ALWAYS = "instance busy persistently"
QUOTA = "export quota full"
DENIED = "access denied"
NOT_FOUND = "not found"
SNAPSHOT_FAILED = "snapshot failed"
EXPORT_FAILED = "export FAILED"
EXPORT_CANCELED = "export CANCELED"
CRASH = "Lambda crashed"
DEADLINE = "deadline passed"
TABLE_FAILED = "table FAILED in the export"
SKIPPED_WARN = "table SKIPPED, policy warn"
SKIPPED_FAIL = "table SKIPPED, policy fail"
S3_5XX = "S3 5xx once"
ANSWER_LOST = "answer lost once"
ANSWERS_LOST = "answer lost every time"
REFUSED_ALWAYS = "refused persistently"
KILLED_MID = "killed mid-request"

ORDERS = "shop.public.orders"


def _rows() -> list[Row]:
    v, r, cs, se, ce, p, pm, pp, pr = (
        "ValidateInput",
        "CreateSnapshot",
        "DescribeSnapshotStatus",
        "StartExport",
        "DescribeExportStatus",
        "PurgePrefix",
        "PublishManifest",
        "PurgePreviousExport",
        "PruneSnapshots",
    )
    m = MODULE
    return [
        # ValidateInput: rds:DescribeDBInstances of the configured database
        Row(v, THROTTLED_ONCE, "DescribeDBInstances: Throttling, 1 request",
            api("rds", "DescribeDBInstances", "Throttling", module=m[v]),
            RECOVERS, None, REPLACED, retried="Throttled"),
        Row(v, THROTTLED_ALWAYS, "DescribeDBInstances: Throttling, every request",
            api("rds", "DescribeDBInstances", "Throttling", module=m[v], times=None),
            FAILS, "InvalidInput", UNCHANGED, retried="Throttled", persistent=True),
        Row(v, DENIED, "DescribeDBInstances: AccessDenied",
            api("rds", "DescribeDBInstances", "AccessDenied", module=m[v], times=None),
            FAILS, "SourceNotFound", UNCHANGED),
        Row(v, NOT_FOUND, "input names database nosuchdb, which does not exist",
            configured_but_missing("nosuchdb"),
            FAILS, "SourceNotFound", UNCHANGED, names="nosuchdb"),
        Row(v, CRASH, "validate_input dies before its handler runs",
            crash(m[v]), FAILS, "InvalidInput", UNCHANGED, names="step"),
        # CreateSnapshot: rds:CreateDBSnapshot of this run's snapshot
        Row(r, THROTTLED_ONCE, "CreateDBSnapshot: Throttling, 1 request",
            api("rds", "CreateDBSnapshot", "Throttling", module=m[r]),
            RECOVERS, None, REPLACED, retried="Throttled"),
        Row(r, THROTTLED_ALWAYS, "CreateDBSnapshot: Throttling, every request",
            api("rds", "CreateDBSnapshot", "Throttling", module=m[r], times=None),
            FAILS, "SnapshotFailed", UNCHANGED, retried="Throttled", persistent=True),
        Row(r, BUSY_ONCE, "CreateDBSnapshot: InvalidDBInstanceState, 1 request",
            api("rds", "CreateDBSnapshot", "InvalidDBInstanceState", module=m[r]),
            RECOVERS, None, REPLACED, retried="InstanceBusy"),
        Row(r, BUSY_ALWAYS, "CreateDBSnapshot: InvalidDBInstanceState, every request",
            api("rds", "CreateDBSnapshot", "InvalidDBInstanceState", module=m[r], times=None),
            FAILS, "SnapshotFailed", UNCHANGED, retried="InstanceBusy", persistent=True),
        Row(r, DENIED, "CreateDBSnapshot: AccessDenied",
            api("rds", "CreateDBSnapshot", "AccessDenied", module=m[r], times=None),
            FAILS, "SnapshotFailed", UNCHANGED),
        Row(r, NOT_FOUND, "source snapshot names nosuch-snapshot, which does not exist",
            given_input({"source": "snapshot", "snapshot_identifier": "nosuch-snapshot"}),
            FAILS, "SourceNotFound", UNCHANGED, names="nosuch-snapshot"),
        Row(r, CRASH, "create_snapshot dies before its handler runs",
            crash(m[r]), FAILS, "SnapshotFailed", UNCHANGED),
        # DescribeSnapshotStatus: rds:DescribeDBSnapshots of this run's snapshot
        Row(cs, THROTTLED_ONCE, "DescribeDBSnapshots: Throttling, 1 request",
            api("rds", "DescribeDBSnapshots", "Throttling", module=m[cs]),
            RECOVERS, None, REPLACED, retried="Throttled"),
        Row(cs, THROTTLED_ALWAYS, "DescribeDBSnapshots: Throttling, every request",
            api("rds", "DescribeDBSnapshots", "Throttling", module=m[cs], times=None),
            FAILS, "SnapshotFailed", UNCHANGED, retried="Throttled", persistent=True),
        Row(cs, DENIED, "DescribeDBSnapshots: AccessDenied",
            api("rds", "DescribeDBSnapshots", "AccessDenied", module=m[cs], times=None),
            FAILS, "SnapshotFailed", UNCHANGED, names="snapshot"),
        Row(cs, NOT_FOUND, "DescribeDBSnapshots: DBSnapshotNotFound (deleted while waited for)",
            api("rds", "DescribeDBSnapshots", "DBSnapshotNotFound", module=m[cs], times=None),
            FAILS, "SnapshotFailed", UNCHANGED, names="snapshot"),
        Row(cs, SNAPSHOT_FAILED, "the snapshot ends in status failed",
            snapshot_fails, FAILS, "SnapshotFailed", UNCHANGED, names="snapshot"),
        Row(cs, CRASH, "describe_status dies on the first look at the snapshot",
            crash(m[cs]), FAILS, "SnapshotFailed", UNCHANGED),
        Row(cs, DEADLINE, "snapshot_timeout_seconds 60, the snapshot takes 120 s",
            slower(snapshot_seconds=120, snapshot_timeout_seconds=60),
            FAILS, "WaitTimedOut", UNCHANGED, names="snapshot"),
        # StartExport: rds:StartExportTask of this run's snapshot into the prefix
        Row(se, THROTTLED_ONCE, "StartExportTask: Throttling, 1 request",
            api("rds", "StartExportTask", "Throttling", module=m[se]),
            RECOVERS, None, REPLACED, retried="Throttled"),
        Row(se, THROTTLED_ALWAYS, "StartExportTask: Throttling, every request",
            api("rds", "StartExportTask", "Throttling", module=m[se], times=None),
            FAILS, "ExportFailed", UNCHANGED, retried="Throttled", persistent=True),
        Row(se, QUOTA, "5 exports of other snapshots run for 15 more minutes",
            fill_export_quota, RECOVERS, None, REPLACED, retried="ExportQuotaExceeded"),
        Row(se, DENIED, "StartExportTask: AccessDenied",
            api("rds", "StartExportTask", "AccessDenied", module=m[se], times=None),
            FAILS, "ExportFailed", UNCHANGED, names="s3"),
        Row(se, NOT_FOUND, "StartExportTask: DBSnapshotNotFound (deleted before the export)",
            api("rds", "StartExportTask", "DBSnapshotNotFound", module=m[se], times=None),
            FAILS, "SourceNotFound", UNCHANGED, names="snapshot"),
        Row(se, CRASH, "start_export dies before its handler runs",
            crash(m[se]), FAILS, "ExportFailed", UNCHANGED),
        # DescribeExportStatus: rds:DescribeExportTasks of this run's export task
        Row(ce, THROTTLED_ONCE, "DescribeExportTasks: Throttling, 1 request",
            api("rds", "DescribeExportTasks", "Throttling", module=m[ce]),
            RECOVERS, None, REPLACED, retried="Throttled"),
        Row(ce, THROTTLED_ALWAYS, "DescribeExportTasks: Throttling, every request",
            api("rds", "DescribeExportTasks", "Throttling", module=m[ce], times=None),
            FAILS, "ExportFailed", KEPT, retried="Throttled", persistent=True),
        Row(ce, DENIED, "DescribeExportTasks: AccessDenied",
            api("rds", "DescribeExportTasks", "AccessDenied", module=m[ce], times=None),
            FAILS, "ExportFailed", KEPT, names="export"),
        Row(ce, NOT_FOUND, "DescribeExportTasks: ExportTaskNotFound",
            api("rds", "DescribeExportTasks", "ExportTaskNotFound", module=m[ce], times=None),
            FAILS, "ExportFailed", KEPT, names="export"),
        Row(ce, EXPORT_FAILED, "the export ends FAILED after writing partial files",
            export_ends(ExportOutcome(status="FAILED", failure_cause="S3 write failed")),
            FAILS, "ExportFailed", UNCHANGED, names="export"),
        Row(ce, EXPORT_CANCELED, "the export ends CANCELED after writing partial files",
            export_ends(ExportOutcome(status="CANCELED", failure_cause="canceled by a user")),
            FAILS, "ExportFailed", UNCHANGED, names="export"),
        Row(ce, CRASH, "describe_status dies on the first look at the export",
            crash(m[ce], after_snapshot_polls=True), FAILS, "ExportFailed", KEPT),
        Row(ce, DEADLINE, "export_timeout_seconds 60, the export takes 130 s",
            slower(export_running_seconds=120, export_timeout_seconds=60),
            FAILS, "WaitTimedOut", KEPT, names="export"),
        # PurgePrefix: verify the new export (s3:GetObject), read the manifest, plan (RDS's
        # export tasks); here the only old export is the one the manifest names, held back
        # S3 throttling and 5xx answers are retried by the SDK (rds_s3_export/aws.py), inside
        # the call: the state machine sees no error
        Row(p, THROTTLED_ONCE, "GetObject of the new export_info: SlowDown, 1 request",
            api("s3", "GetObject", "SlowDown", module=m[p]),
            RECOVERS, None, REPLACED),
        Row(p, S3_5XX, "GetObject of the new export_info: InternalError, 1 request",
            api("s3", "GetObject", "InternalError", module=m[p]),
            RECOVERS, None, REPLACED),
        Row(p, THROTTLED_ALWAYS, "GetObject: SlowDown, every request",
            api("s3", "GetObject", "SlowDown", module=m[p], times=None),
            FAILS, "PurgeRefused", KEPT, retried="Throttled", persistent=True),
        Row(p, DENIED, "DescribeExportTasks: AccessDenied",
            api("rds", "DescribeExportTasks", "AccessDenied", module=m[p], times=None),
            FAILS, "PurgeRefused", KEPT, names="rds:DescribeExportTasks"),
        Row(p, NOT_FOUND, "GetObject of the new export_info: NoSuchKey",
            api("s3", "GetObject", "NoSuchKey", module=m[p], times=None),
            FAILS, "PurgeRefused", KEPT, names="export"),
        Row(p, CRASH, "purge_prefix dies before its handler runs",
            crash(m[p]), RECOVERS, None, REPLACED, retried="Runtime.ExitError"),
        Row(p, TABLE_FAILED, f"export_tables_info lists {ORDERS} FAILED",
            export_ends(ExportOutcome(table_outcomes={ORDERS: "FAILED"})),
            FAILS, "PurgeRefused", KEPT, names="export"),
        Row(p, SKIPPED_WARN, f"export_tables_info lists {ORDERS} SKIPPED",
            export_ends(ExportOutcome(table_outcomes={ORDERS: "SKIPPED"})),
            WARNS, None, REPLACED),
        Row(p, SKIPPED_FAIL, f"{ORDERS} SKIPPED, skipped_tables_policy fail",
            export_ends(ExportOutcome(table_outcomes={ORDERS: "SKIPPED"}),
                        skipped_tables_policy="fail"),
            FAILS, "PurgeRefused", KEPT, names="export"),
        # PublishManifest: s3:PutObject of <prefix>/_manifest.json, then events:PutEvents
        Row(pm, THROTTLED_ONCE, "PutEvents: ThrottlingException, 1 request",
            api("eventbridge", "PutEvents", "ThrottlingException", module=m[pm]),
            RECOVERS, None, REPLACED),
        Row(pm, S3_5XX, "PutObject of the manifest: ServiceUnavailable, 1 request",
            api("s3", "PutObject", "ServiceUnavailable", module=m[pm]),
            RECOVERS, None, REPLACED),
        Row(pm, ANSWER_LOST, "PutObject of the manifest: carried out, its answer lost once",
            half_done("lose_answer", "s3", "PutObject", module=m[pm]),
            RECOVERS, None, REPLACED),
        Row(pm, ANSWERS_LOST, "PutObject of the manifest: carried out, every answer lost",
            half_done("lose_answer", "s3", "PutObject", module=m[pm], times=None),
            WARNS, None, REPLACED, names=MANIFEST),
        Row(pm, REFUSED_ALWAYS, "PutEvents after the write: InternalFailure, every request",
            api("eventbridge", "PutEvents", "InternalFailure", module=m[pm], times=None),
            WARNS, None, REPLACED, names=MANIFEST),
        Row(pm, DENIED, "PutObject of the manifest: AccessDenied",
            api("s3", "PutObject", "AccessDenied", module=m[pm], times=None),
            FAILS, "PublishFailed", KEPT, names=MANIFEST),
        Row(pm, CRASH, "publish_manifest dies before its handler runs",
            crash(m[pm]), RECOVERS, None, REPLACED, retried="Runtime.ExitError"),
        # PurgePreviousExport: the manifest names the new export; s3:DeleteObjects of the
        # previous export's folder (the only DeleteObjects of these runs)
        Row(pp, THROTTLED_ONCE, "DeleteObjects: SlowDown, 1 request",
            api("s3", "DeleteObjects", "SlowDown", module=m[pp]),
            RECOVERS, None, REPLACED),
        Row(pp, S3_5XX, "DeleteObjects: InternalError, 1 request",
            api("s3", "DeleteObjects", "InternalError", module=m[pp]),
            RECOVERS, None, REPLACED),
        Row(pp, ANSWER_LOST, "DeleteObjects: carried out, its answer lost once",
            half_done("lose_answer", "s3", "DeleteObjects", module=m[pp]),
            RECOVERS, None, REPLACED),
        Row(pp, KILLED_MID, "purge_prefix dies once its first DeleteObjects went through",
            half_done("kill_after", "s3", "DeleteObjects", module=m[pp]),
            RECOVERS, None, REPLACED, retried="Runtime.ExitError"),
        Row(pp, THROTTLED_ALWAYS, "DeleteObjects: SlowDown, every request",
            api("s3", "DeleteObjects", "SlowDown", module=m[pp], times=None),
            FAILS, "PurgeRefused", KEPT, retried="Throttled", persistent=True),
        Row(pp, DENIED, "DeleteObjects: AccessDenied",
            api("s3", "DeleteObjects", "AccessDenied", module=m[pp], times=None),
            FAILS, "PurgeRefused", KEPT, names="s3"),
        Row(pp, CRASH, "purge_prefix dies on its call after PublishManifest",
            crash(m[pp], skip=1), RECOVERS, None, REPLACED, retried="Runtime.ExitError"),
        # PruneSnapshots: the export is complete and verified; a failure here is a warning
        Row(pr, THROTTLED_ALWAYS, "DescribeDBSnapshots: Throttling, every request",
            api("rds", "DescribeDBSnapshots", "Throttling", module=m[pr], times=None),
            WARNS, None, REPLACED),
        Row(pr, DENIED, "DeleteDBSnapshot: AccessDenied (keep_snapshots 0)",
            prune_everything_but_the_new_snapshot, WARNS, None, REPLACED,
            names="previous snapshot"),
        Row(pr, CRASH, "prune_snapshots dies before its handler runs",
            crash(m[pr]), WARNS, None, REPLACED),
    ]  # fmt: skip


MATRIX = _rows()


# --- the fixtures and checks ----------------------------------------------------------------


@pytest.fixture
def timing() -> Timing:
    """Short simulated durations: each wait loop looks once (the loops themselves are
    exercised by the happy-path tests; here every state transition costs real time)."""
    return Timing(snapshot_seconds=30, export_starting_seconds=10, export_running_seconds=20)


def retry_budget(step: str, error: str) -> int:
    """How many times the state machine runs `step` while it keeps raising `error`."""
    for retrier in ASL["States"][step].get("Retry", []):
        if error in retrier["ErrorEquals"]:
            return 1 + int(retrier.get("MaxAttempts", 3))
    return 1


def _manual_snapshots(sandbox: Sandbox) -> set[str]:
    return set(sandbox.snapshots(DATABASE, snapshot_type="manual"))


def _export_tasks(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    tasks = sandbox.client("rds").describe_export_tasks()["ExportTasks"]
    return {t["ExportTaskIdentifier"]: t for t in tasks}


@dataclass
class Observed:
    before: dict[str, str]
    after: dict[str, str]
    new_complete: bool  # this run's export folder is complete by its own metadata
    new_task: str | None  # this run's export task into the prefix, if it started one
    new_snapshot: str | None  # this run's snapshot, if it created one
    old_snapshot: str  # the previous run's snapshot


def export_is_complete(sandbox: Sandbox, task_id: str) -> bool:
    """What the test itself reads in the export's metadata: export_info says COMPLETE and no
    table FAILED; a SKIPPED table counts only where the stack's policy accepts it."""
    s3, bucket, folder = sandbox.client("s3"), sandbox.settings.bucket, f"{PREFIX}/{task_id}/"
    keys = sandbox.listing(folder)
    info_key = f"{folder}export_info_{task_id}.json"
    if info_key not in keys:
        return False
    info = json.loads(s3.get_object(Bucket=bucket, Key=info_key)["Body"].read())
    tables = tables_info_entries(s3, bucket, folder, keys)
    accepted = {"COMPLETE"} | (
        {"SKIPPED"} if sandbox.settings.skipped_tables_policy == "warn" else set()
    )
    return (
        info.get("status") == "COMPLETE"
        and bool(tables)
        and all(t["status"] in accepted for t in tables)
    )


def _data_verdict(row: Row, seen: Observed, result: RunResult) -> tuple[bool, list[str]]:
    """(lost data?, what does not match the row's data expectation)."""
    problems: list[str] = []
    # the manifest is not export data: _manifest_problems judges it
    before = {k: v for k, v in seen.before.items() if k != MANIFEST}
    after = {k: v for k, v in seen.after.items() if k != MANIFEST}
    changed = sorted(k for k, etag in before.items() if after.get(k) != etag)
    added = sorted(set(after) - set(before))
    own = f"{PREFIX}/{seen.new_task}/" if seen.new_task else None
    verified = (
        result.status == "SUCCEEDED"
        and own is not None
        and set(after) == set(added)
        and all(k.startswith(own) for k in after)
        and seen.new_complete
    )
    lost = bool(changed) and not verified
    if row.data == UNCHANGED and after != before:
        problems.append(f"prefix changed: {changed=} {added=}")
    if row.data == KEPT:
        if changed:
            problems.append(f"previous export changed or gone: {changed}")
        strays = [k for k in added if own is None or not k.startswith(own)]
        if strays:
            problems.append(f"keys outside this run's own folder {own}: {strays}")
    if row.data == REPLACED and not verified:
        problems.append(f"prefix does not hold exactly the new export {own}: {sorted(after)}")
    return lost, problems


def _manifest_problems(row: Row, seen: Observed, result: RunResult, sandbox: Sandbox) -> list[str]:
    """After every row: the manifest names a complete export that is there; a successful run's
    names exactly its own export; a run that failed before the manifest was replaced left it
    as it was (one that failed after, in PurgePreviousExport, left it naming its own export).
    The watch has already checked every moment in between (`run_row`)."""
    manifest = sandbox.manifest(PREFIX)
    problems: list[str] = []
    replaced = result.status == "SUCCEEDED" or result.visits("PurgePreviousExport") > 0
    if replaced:
        if manifest is None or manifest["export_task_id"] != seen.new_task:
            problems.append(f"manifest does not name this run's export {seen.new_task}")
    elif seen.after.get(MANIFEST) != seen.before.get(MANIFEST):
        problems.append("a run that failed before PublishManifest changed the manifest")
    if manifest is not None:
        folder, task = manifest["export_folder"], manifest["export_task_id"]
        if not any(k.startswith(folder) for k in seen.after):
            problems.append(f"manifest names {folder}, which does not exist")
        elif not export_is_complete(sandbox, task):
            problems.append(f"manifest names {folder}, which is not a complete export")
    return problems


def _resource(row: Row, seen: Observed, sandbox: Sandbox) -> str:
    match row.names:
        case "database":
            return DATABASE
        case "snapshot":
            assert seen.new_snapshot, "the row expects a snapshot, none was created"
            return seen.new_snapshot
        case "previous snapshot":
            return seen.old_snapshot
        case "export":
            assert seen.new_task, "the row expects an export task, none was started"
            return seen.new_task
        case "s3":
            return f"s3://{sandbox.settings.bucket}/{PREFIX}/"
        case "step":
            return row.step
        case other:
            return other  # a literal identifier the row gives


def _outcome_problems(row: Row, result: RunResult, seen: Observed, sandbox: Sandbox) -> list[str]:
    problems: list[str] = []
    if row.outcome in (RECOVERS, WARNS):
        if result.status != "SUCCEEDED":
            return [f"expected SUCCEEDED, got {result.status} {result.error}: {result.cause}"]
        out = result.output or {}
        warnings = (
            out.get("prune_warnings", [])
            + out.get("purge", {}).get("warnings", [])
            + (out.get("manifest") or {}).get("warnings", [])
        )
        if row.outcome == WARNS and not warnings:
            problems.append("expected a warning in the output, there is none")
        if row.outcome == WARNS and row.names != "database":
            resource = _resource(row, seen, sandbox)
            if not any(resource in w for w in warnings):
                problems.append(f"no warning names {resource}: {warnings}")
        if row.outcome == RECOVERS and warnings:
            problems.append(f"unexpected warnings: {warnings}")
        return problems
    if result.status != "FAILED" or result.error != row.error:
        return [f"expected FAILED {row.error}, got {result.status} {result.error}: {result.cause}"]
    resource = _resource(row, seen, sandbox)
    if resource not in (result.cause or ""):
        problems.append(f"the Cause does not name {resource}: {result.cause}")
    return problems


def _retry_problems(row: Row, result: RunResult) -> list[str]:
    if row.retried is None:
        return []
    errors = [s for s in result.states if s.name == row.step and s.outcome != "ok"]
    retried = [s for s in errors if s.outcome == f"error {row.retried}"]
    expected = retry_budget(row.step, row.retried) if row.persistent else None
    if row.persistent and len(retried) != expected:
        return [f"{row.step} raised {row.retried} {len(retried)} times, budget is {expected}"]
    if not row.persistent and not retried:
        return [f"{row.step} never raised {row.retried}: the fault did not reach the step"]
    return []


def run_row(sandbox: Sandbox, row: Row) -> tuple[str, list[str]]:
    """Run one row; (verdict, problems). Verdicts: recovered, failed cleanly, lost data,
    unexpected (the run ended otherwise than the row says, without losing data)."""
    with watching(sandbox, PREFIX) as watch:
        # Given a complete previous export in the prefix, which the manifest names
        previous = sandbox.run({})
        assert previous.status == "SUCCEEDED", previous.cause
        before = sandbox.listing(PREFIX)
        snapshots_before, tasks_before = _manual_snapshots(sandbox), set(_export_tasks(sandbox))

        # When the fault is injected and the pipeline runs again
        execution_input = row.inject(World(sandbox, previous))
        result = sandbox.run(execution_input)

    # Then: the outcome, the Cause, the retries and the data
    new_tasks = [
        ident
        for ident, task in _export_tasks(sandbox).items()
        if ident not in tasks_before and task.get("S3Prefix", "").rstrip("/") == PREFIX
    ]
    new_snapshots = sorted(_manual_snapshots(sandbox) - snapshots_before)
    new_task = new_tasks[0] if new_tasks else None
    seen = Observed(
        before=before,
        after=sandbox.listing(PREFIX),
        new_complete=new_task is not None and export_is_complete(sandbox, new_task),
        new_task=new_task,
        new_snapshot=next((s for s in new_snapshots if s.startswith("mysnapshot-")), None),
        old_snapshot=previous.output["snapshot"]["id"] if previous.output else "?",
    )
    lost, data_problems = _data_verdict(row, seen, result)
    # a fault that never fired tested nothing
    unfired = [f"{f.operation} {f.kind} {f.code}" for f in sandbox.faults.api_faults if not f.fired]
    problems = (
        [f"the fault never fired: {unfired}"] * bool(unfired)
        + _outcome_problems(row, result, seen, sandbox)
        + _retry_problems(row, result)
        + data_problems
        + _manifest_problems(row, seen, result, sandbox)
        + watch.violations
    )
    if lost:
        return "lost data", problems
    if problems:
        return "unexpected", problems
    return ("recovered" if result.status == "SUCCEEDED" else "failed cleanly"), problems


@pytest.mark.slow
# the simulated quota refusal has no error shape in the RDS model (nor has the real one)
@pytest.mark.filterwarnings("ignore:Exception\\(QuotaExceeded\\):UserWarning")
@pytest.mark.parametrize("row", MATRIX, ids=[r.id for r in MATRIX])
def test_fault(sandbox: Sandbox, row: Row, record_property: Callable[[str, Any], None]) -> None:
    verdict, problems = run_row(sandbox, row)
    record_property("fault_matrix", verdict)
    assert verdict != "lost data", problems
    assert not problems, problems
    assert verdict == ("failed cleanly" if row.outcome == FAILS else "recovered")


# --- the docs table -------------------------------------------------------------------------


def doc_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of the table under the heading 'Fault matrix' of docs/faults.md."""
    section = text.split("### Fault matrix\n", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = tuple(c.strip().strip("`") for c in line.strip().strip("|").split("|"))
        if cells[0] == "Step":
            continue
        rows.append(cells)
    return rows


def matrix_doc_row(row: Row) -> tuple[str, ...]:
    return (row.step, row.fault, row.how, row.outcome, row.error or "-", DATA_TEXT[row.data])


def test_docs_table_matches_the_matrix() -> None:
    # Given the docs' fault matrix, When it is parsed, Then it lists exactly the
    # matrix's rows, in order: the docs cannot drift from what the tests try
    assert doc_rows(DOC.read_text()) == [matrix_doc_row(r) for r in MATRIX]


def test_every_step_meets_the_faults_that_apply_to_it() -> None:
    # Given the matrix, Then every step of the flow is in it, every design error is expected
    # somewhere, and every fault the issue names is tried at least once
    steps = {r.step for r in MATRIX}
    assert steps == set(MODULE)
    errors = {r.error for r in MATRIX if r.error}
    assert errors >= {"InvalidInput", "SourceNotFound", "SnapshotFailed", "ExportFailed"}
    assert errors >= {
        "WaitTimedOut",
        "PurgeRefused",
        "PublishFailed",
    }  # AlreadyRunning: test_overlap.py
    faults = {r.fault for r in MATRIX}
    assert faults >= {THROTTLED_ONCE, THROTTLED_ALWAYS, BUSY_ONCE, QUOTA, DENIED, NOT_FOUND}
    assert faults >= {SNAPSHOT_FAILED, EXPORT_FAILED, EXPORT_CANCELED, CRASH, DEADLINE}
    # issue 17: a transient S3 5xx, a lost answer and a kill mid-request are tried in the purge
    # and the publish, and each recovers
    for step in ("PurgePrefix", "PublishManifest", "PurgePreviousExport"):
        assert any(r.step == step and r.fault == S3_5XX and r.outcome == RECOVERS for r in MATRIX)
    assert {ANSWER_LOST, ANSWERS_LOST, KILLED_MID, REFUSED_ALWAYS} <= faults
    assert len({r.id for r in MATRIX}) == len(MATRIX)


# --- the summary ------------------------------------------------------------------------------


class _Summary:
    """A pytest plugin that counts the rows' verdicts."""

    def __init__(self) -> None:
        self.verdicts: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == "fault_matrix" and report.when == "call":
                self.verdicts[report.nodeid] = str(value)

    def text(self) -> str:
        counts = {v: sum(1 for x in self.verdicts.values() if x == v) for v in VERDICTS}
        return (
            f"fault matrix: {len(self.verdicts)} faults tried, {counts['recovered']} recovered, "
            f"{counts['failed cleanly']} failed cleanly, {counts['lost data']} lost data, "
            f"{counts['unexpected']} unexpected"
        )


VERDICTS = ("recovered", "failed cleanly", "lost data", "unexpected")


if __name__ == "__main__":
    summary = _Summary()
    code = pytest.main([f"{__file__}::test_fault", "-q", *sys.argv[1:]], plugins=[summary])
    print(summary.text())
    sys.exit(code)
