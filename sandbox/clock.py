"""Simulated time for the sandbox.

Snapshots take minutes and exports hours; the sandbox replays them in a fraction of a second.
Wait states and retry back-offs advance this clock instead of sleeping, the simulated RDS
reads it to decide how far a snapshot or export has got, and the handlers read it through
`rds_s3_export.clock` (the sandbox installs it there). Real time is not involved.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._start = start or datetime.now(UTC)
        self._offset = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot move the clock back ({seconds} s)")
        with self._lock:
            self._offset += seconds

    @property
    def elapsed_seconds(self) -> float:
        with self._lock:
            return self._offset

    def spend(self, seconds: float) -> None:
        """Advance the clock by time the running handler spends (an S3 request's latency, the
        SDK's sleep before a retry), and charge it to that invocation (see `metered`)."""
        self.advance(seconds)
        spent = _spent.get()
        if spent is not None:
            spent[0] += seconds


# The seconds the handler invocation running in this context has spent so far. A context
# variable: the purge's worker threads run in a copy of their caller's context, so what they
# spend is charged to their invocation, and another execution's Wait states are not.
_spent: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "sandbox_spent", default=None
)


@contextmanager
def metered() -> Iterator[Callable[[], float]]:
    """For one handler invocation: a function that says how many seconds it has spent."""
    spent = [0.0]
    token = _spent.set(spent)
    try:
        yield lambda: spent[0]
    finally:
        _spent.reset(token)
