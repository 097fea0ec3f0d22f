"""The one place the handlers read the time.

Deadlines and phase durations are computed here. In AWS the system clock is used; a harness
that simulates time (Wait states that do not really sleep) replaces `now` through
`set_clock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return _now()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Use `clock` for `now()`; `None` restores the system clock."""
    global _now  # noqa: PLW0603 - one process-wide clock is the point of this module
    _now = clock if clock is not None else (lambda: datetime.now(UTC))


_sleep: Callable[[float], None] = time.sleep


def sleep(seconds: float) -> None:
    """Wait `seconds` (a handler's own backoff between two attempts)."""
    _sleep(seconds)


def set_sleep(sleeper: Callable[[float], None] | None) -> None:
    """Use `sleeper` for `sleep()` (a harness advances its simulated clock); `None` restores
    time.sleep."""
    global _sleep  # noqa: PLW0603 - as `set_clock`
    _sleep = sleeper if sleeper is not None else time.sleep


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, second precision: the form used in every payload."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    """Parse the ISO 8601 forms seen in payloads (`Z` or `+00:00`, with or without fraction)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def seconds_between(start: str, end: datetime) -> int:
    """Whole seconds from the ISO timestamp `start` to `end` (never negative)."""
    return max(0, int((end - parse(start)).total_seconds()))
