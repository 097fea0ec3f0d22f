"""Simulated time for the sandbox.

Snapshots take minutes and exports hours; the sandbox replays them in a fraction of a second.
Wait states and retry back-offs advance this clock instead of sleeping, the simulated RDS
reads it to decide how far a snapshot or export has got, and the handlers read it through
`rds_s3_export.clock` (the sandbox installs it there). Real time is not involved.
"""

from __future__ import annotations

import threading
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
