"""How long to wait before the next look at a snapshot or an export.

Without history (a database's first run) two rules, bounded by the configured minimum and
maximum:

* while there is no progress to go by, back off exponentially from the minimum
  (min, 2*min, 4*min, ... up to max);
* once RDS reports a percentage, estimate the time left from the rate so far and look again
  after half of it, so the last looks come close together near the end.

With history, the previous run's duration (`expected_seconds`, see `expected_durations`) is the
prior: the end is expected there, refined by RDS's percentage as it grows. The looks close in
on the expected end geometrically (a quarter of the distance left each time, half when RDS's
percentage agrees with the prior), are at most `NEAR_END_SECONDS` apart around it, and back
off again by a quarter of the overrun when the end comes later than expected.

How late the end is noticed, as measured in the sandbox (`make bench`, whose polling table is
pasted in docs/operating.md, "Polling"; a 20-minute snapshot and a 90-minute export, poll
bounds 30..300 s, the completion shifted by -90 to +120 s; late = the later of the two):
with RDS reporting progress, at most 47 s late on a first night and 50 s on later nights;
without progress until the end, up to 240 s late on a first night (median 150 s: the waits
have doubled to the 300 s maximum by then), and at most 54 s on later nights.

The wait never passes the deadline: the last look happens at the deadline itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock
from rds_s3_export.log import logger

# Around the expected end, looks are at most this far apart: how late a completion is noticed.
NEAR_END_SECONDS = 60
# Approach to the expected end: the next look after this share of the distance left. Smaller
# when the prior alone speaks (a night can be faster than the last one); larger once RDS's
# percentage agrees with the prior within AGREEMENT.
APPROACH_SHARE = 0.25
APPROACH_SHARE_AGREED = 0.5
AGREEMENT = 0.1
# After the expected end: the next look after this share of the time overrun so far.
OVERRUN_SHARE = 0.25
# How far back the prior is looked for (the newest matching run wins).
RECENT_EXECUTIONS = 20
DESCRIBED_EXECUTIONS = 5


def next_wait(
    *,
    polls: int,
    progress: int | None,
    elapsed_seconds: int,
    min_seconds: int,
    max_seconds: int,
    now: datetime,
    deadline: str,
    expected_seconds: int | None = None,
) -> int:
    if expected_seconds:
        wait = _wait_with_prior(progress, elapsed_seconds, min_seconds, expected_seconds)
    elif progress is not None and 0 < progress < 100 and elapsed_seconds > 0:
        remaining = elapsed_seconds * (100 - progress) / progress
        wait = remaining / 2
    else:
        wait = min_seconds * 2 ** min(polls, 20)
    bounded = int(min(max(wait, min_seconds), max_seconds))
    until_deadline = int((clock.parse(deadline) - now).total_seconds())
    return max(1, min(bounded, until_deadline)) if until_deadline > 0 else 1


def expected_end(progress: int | None, elapsed_seconds: int, expected_seconds: int) -> float:
    """The prior, moved toward the end RDS's percentage implies (elapsed * 100 / progress) by
    the square of the progress: early percentages hardly count (they are the least linear),
    late ones almost wholly."""
    if progress is None or not 0 < progress < 100 or elapsed_seconds <= 0:
        return float(expected_seconds)
    by_rate = elapsed_seconds * 100 / progress
    weight = (progress / 100) ** 2
    return expected_seconds + weight * (by_rate - expected_seconds)


def _wait_with_prior(
    progress: int | None, elapsed_seconds: int, min_seconds: int, expected_seconds: int
) -> float:
    near = max(min_seconds, NEAR_END_SECONDS)
    end = expected_end(progress, elapsed_seconds, expected_seconds)
    share = APPROACH_SHARE
    if progress is not None and 0 < progress < 100 and elapsed_seconds > 0:
        by_rate = elapsed_seconds * 100 / progress
        if abs(by_rate - expected_seconds) <= AGREEMENT * expected_seconds:
            share = APPROACH_SHARE_AGREED
    left = end - elapsed_seconds
    if left > near:
        return min(left, max(near, share * left))
    if left > 0:
        return left  # land on the expected end itself
    return max(near, OVERRUN_SHARE * -left)


def expected_durations(
    *,
    state_machine: str | None,
    execution_id: str,
    database_id: str,
    bucket: str,
    s3_prefix: str,
) -> dict[str, int | None]:
    """The prior of each polling loop: how long the snapshot and the export of this database
    took last time, in seconds, or None when nothing is known (a first run).

    * export: RDS's own `TaskEndTime - TaskStartTime` of the newest COMPLETE export task into
      this bucket and prefix (DescribeExportTasks), exact to the second;
    * snapshot (and the export, if RDS's task list cannot be read): `phases_seconds` of the
      newest SUCCEEDED execution for this database and prefix (ListExecutions, then
      DescribeExecution on at most DESCRIBED_EXECUTIONS of the RECENT_EXECUTIONS newest). That
      is when the previous run noticed the end, so it may be up to one look late.

    Best effort: a history that cannot be read means no prior, never a failed run."""
    previous = _previous_phases(state_machine, execution_id, database_id, bucket, s3_prefix)
    snapshot = previous.get("snapshot")
    export = _previous_export_seconds(bucket, s3_prefix)
    if export is None:
        export = previous.get("export")
    return {"snapshot": snapshot, "export": export}


def _positive(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value > 0 else None


def _ended(noticed: Any, pending: Any) -> int | None:
    """When the previous run's snapshot (or export) most likely ended: the middle between the
    last look that still saw it pending and the look that saw it done. The look that noticed
    the end is up to a whole poll interval late, and a prior taken from it repeats that
    lateness night after night. (RDS gives no end time for a snapshot: SnapshotCreateTime is
    when it was taken, at its start.) Without the earlier look: when the end was noticed."""
    end = _positive(noticed)
    before = _positive(pending)
    if end is None or before is None or before >= end:
        return end
    return (before + end) // 2


def _previous_phases(
    state_machine: str | None, execution_id: str, database_id: str, bucket: str, s3_prefix: str
) -> dict[str, int | None]:
    if not state_machine:
        return {}
    sfn = aws.client("stepfunctions")
    location = f"s3://{bucket}/{s3_prefix}/"
    try:
        listed = sfn.list_executions(
            stateMachineArn=state_machine,
            statusFilter="SUCCEEDED",
            maxResults=RECENT_EXECUTIONS,
        ).get("executions", [])
        newest = sorted(listed, key=lambda item: item["startDate"], reverse=True)
        for item in newest[:DESCRIBED_EXECUTIONS]:
            if item["executionArn"] == execution_id:
                continue
            output = sfn.describe_execution(executionArn=item["executionArn"]).get("output")
            found = json.loads(output or "{}")
            if not isinstance(found, dict) or found.get("status") != "SUCCEEDED":
                continue
            same_database = (found.get("database") or {}).get("id") == database_id
            s3_uri = str((found.get("export") or {}).get("s3_uri") or "")
            if not (same_database and s3_uri.startswith(location)):
                continue
            phases = found.get("phases_seconds") or {}
            pending = found.get("pending_seconds") or {}
            fresh = (found.get("snapshot") or {}).get("source") == "new-snapshot"
            return {
                "snapshot": _ended(phases.get("snapshot"), pending.get("snapshot"))
                if fresh
                else None,
                "export": _ended(phases.get("export"), pending.get("export")),
            }
    except (ClientError, ValueError, KeyError) as err:
        logger.warning("no prior from earlier executions", extra={"error": str(err)})
    return {}


def _previous_export_seconds(bucket: str, s3_prefix: str) -> int | None:
    rds = aws.client("rds")
    newest: tuple[datetime, int] | None = None
    try:
        pages = rds.get_paginator("describe_export_tasks").paginate(
            Filters=[{"Name": "s3-bucket", "Values": [bucket]}]
        )
        for page in pages:
            for task in page.get("ExportTasks", []):
                if str(task.get("Status", "")).upper() != "COMPLETE":
                    continue
                if str(task.get("S3Prefix", "")).rstrip("/") != s3_prefix.rstrip("/"):
                    continue
                start, end = task.get("TaskStartTime"), task.get("TaskEndTime")
                if not (isinstance(start, datetime) and isinstance(end, datetime)):
                    continue
                seconds = _positive(int((end - start).total_seconds()))
                if seconds and (newest is None or end > newest[0]):
                    newest = (end, seconds)
    except ClientError as err:
        logger.warning("no prior from RDS export tasks", extra={"error": str(err)})
        return None
    return newest[1] if newest else None
