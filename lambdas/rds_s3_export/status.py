"""Normalised status of a snapshot or an export task.

RDS speaks in many words (`creating`, `incompatible-restore`, `IN_PROGRESS`, `canceled`...);
the state machine needs three: `pending`, `done`, `failed`. The raw word is kept alongside.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rds_s3_export import clock

SNAPSHOT_DONE = frozenset({"available"})
SNAPSHOT_FAILED = frozenset(
    {"failed", "deleted", "deleting", "incompatible-restore", "incompatible-parameters", "error"}
)
EXPORT_DONE = frozenset({"COMPLETE"})
EXPORT_FAILED = frozenset({"FAILED", "CANCELED"})
EXPORT_RUNNING = frozenset({"STARTING", "IN_PROGRESS", "CANCELING"})


def snapshot_state(raw: str) -> str:
    value = raw.lower()
    if value in SNAPSHOT_DONE:
        return "done"
    if value in SNAPSHOT_FAILED:
        return "failed"
    return "pending"


def export_state(raw: str) -> str:
    value = raw.upper()
    if value in EXPORT_DONE:
        return "done"
    if value in EXPORT_FAILED:
        return "failed"
    return "pending"


def result(
    *,
    state: str,
    raw_status: str,
    progress: int | None,
    polls: int,
    wait_seconds: int,
    elapsed_seconds: int,
    cause: str | None = None,
    timed_out: bool = False,
    extra: dict[str, Any] | None = None,
    pending_seconds: int = 0,
) -> dict[str, Any]:
    """The status object the state machine's Choice states read. `pending_seconds`: the
    elapsed seconds at the last look that still saw the snapshot or export pending, so the end
    lies between it and `elapsed_seconds` (the next run's prior, see polling.py)."""
    body: dict[str, Any] = {
        "state": state,
        "raw_status": raw_status,
        "progress": progress,
        "polls": polls,
        "wait_seconds": wait_seconds,
        "elapsed_seconds": elapsed_seconds,
        "pending_seconds": pending_seconds,
        "timed_out": timed_out,
        "cause": cause or "",
    }
    if extra:
        body.update(extra)
    return body


# the keys loop_start gives a polling loop's piece of the state
LOOP_FIELDS = ("started_at", "deadline", "status")


def loop_start(
    *,
    now: datetime,
    timeout_seconds: int,
    min_wait_seconds: int,
    state: str,
    raw_status: str,
    progress: int | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`started_at`, `deadline` and the first `status` of a polling loop (snapshot or export):
    what the Wait/Choice loop of the state machine reads before its first look. `extra` holds
    the fields a later look would add, so a loop that is done at once (an adopted, finished
    export) gives the same shape to the states after it."""
    return {
        "started_at": clock.isoformat(now),
        "deadline": clock.isoformat(now + timedelta(seconds=timeout_seconds)),
        "status": result(
            state=state,
            raw_status=raw_status,
            progress=progress,
            polls=0,
            wait_seconds=min_wait_seconds,
            elapsed_seconds=0,
            extra=extra,
        ),
    }
