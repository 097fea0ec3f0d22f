"""DescribeSnapshotStatus, DescribeExportStatus: one look at this run's snapshot or export task.

Returns the normalised state (`pending`, `done`, `failed`), RDS's raw status, progress, a
failure cause, whether the deadline has passed, and how many seconds the state machine's Wait
should sleep before the next look (see `rds_s3_export.polling`). It never sleeps itself.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, polling, status
from rds_s3_export.errors import ExportFailed, SnapshotFailed, SourceNotFound
from rds_s3_export.log import correlated
from rds_s3_export.rds import iter_snapshots
from rds_s3_export.steps import shaped

KINDS = ("db-snapshot", "db-cluster-snapshot", "export-task")


def _look_snapshot(kind: str, ident: str) -> tuple[str, str, int | None, str]:
    key = "DBClusterSnapshotIdentifier" if kind == "db-cluster-snapshot" else "DBSnapshotIdentifier"
    try:
        found = next(iter_snapshots(kind, SnapshotFailed, **{key: ident}), None)
    except SourceNotFound as err:  # the snapshot vanished while we waited
        return "failed", "missing", None, f"{kind} {ident} no longer exists: {err}"
    if found is None:
        return "failed", "missing", None, f"{kind} {ident} no longer exists"
    raw = found["status"]
    state = status.snapshot_state(raw)
    cause = f"{kind} {ident} of {found['database_id']} is '{raw}'" if state == "failed" else ""
    return state, raw, found["progress"], cause


def _look_export(ident: str) -> tuple[str, str, int | None, str, dict[str, Any]]:
    try:
        tasks = aws.client("rds").describe_export_tasks(ExportTaskIdentifier=ident)["ExportTasks"]
    except ClientError as err:
        aws.raise_as(err, ExportFailed, "rds:DescribeExportTasks", f"export task {ident}")
    if not tasks:
        return "failed", "missing", None, f"export task {ident} no longer exists", {}
    task = tasks[0]
    raw = str(task.get("Status", "unknown")).upper()
    state = status.export_state(raw)
    cause = ""
    if state == "failed":
        reason = task.get("FailureCause") or "RDS gave no FailureCause"
        cause = (
            f"export task {ident} of {task.get('SourceArn', '?')} to "
            f"s3://{task.get('S3Bucket', '?')}/{task.get('S3Prefix', '')} ended {raw}: {reason}"
        )
    extra = {
        "extracted_gb": task.get("TotalExtractedDataInGB"),
        "warning": task.get("WarningMessage", ""),
    }
    return state, raw, task.get("PercentProgress"), cause, extra


def look(event: dict[str, Any]) -> dict[str, Any]:
    kind, ident = event["kind"], event["id"]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    extra: dict[str, Any] = {}
    if kind == "export-task":
        state, raw, progress, cause, extra = _look_export(ident)
    else:
        state, raw, progress, cause = _look_snapshot(kind, ident)
    now = clock.now()
    polls = int(event.get("polls", 0)) + 1
    elapsed = clock.seconds_between(event["started_at"], now)
    timed_out = state == "pending" and now >= clock.parse(event["deadline"])
    if timed_out:
        what = "export task" if kind == "export-task" else kind
        cause = (
            f"{what} {ident} was still '{raw}' ({progress if progress is not None else '?'}%) "
            f"after {elapsed} s, at its deadline {event['deadline']}; raise the timeout setting "
            "or look at the task in the RDS console"
        )
    poll = event["poll"]
    # the previous run's duration, if ValidateInput found one (see polling.expected_durations)
    priors = poll.get("expected_seconds") or {}
    expected = priors.get("export" if kind == "export-task" else "snapshot")
    wait = polling.next_wait(
        polls=polls,
        progress=progress,
        elapsed_seconds=elapsed,
        min_seconds=int(poll["min_seconds"]),
        max_seconds=int(poll["max_seconds"]),
        now=now,
        deadline=event["deadline"],
        expected_seconds=int(expected) if isinstance(expected, int | float) else None,
    )
    # the last look that still saw it pending: the end came after it
    pending = elapsed if state == "pending" else int(event.get("pending_seconds") or 0)
    return status.result(
        pending_seconds=pending,
        state=state,
        raw_status=raw,
        progress=progress,
        polls=polls,
        wait_seconds=wait,
        elapsed_seconds=elapsed,
        cause=cause,
        timed_out=timed_out,
        extra=extra,
    )


# `$.source.status` or `$.export.status`: one look's verdict and the wait before the next
RESULT_FIELDS = (
    "state",
    "raw_status",
    "progress",
    "polls",
    "wait_seconds",
    "elapsed_seconds",
    "pending_seconds",
    "timed_out",
    "cause",
)
EXPORT_RESULT_FIELDS = (*RESULT_FIELDS, "extracted_gb", "warning")


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    fields = EXPORT_RESULT_FIELDS if event.get("kind") == "export-task" else RESULT_FIELDS
    return shaped(look(event), fields)
