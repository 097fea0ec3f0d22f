"""How long to wait before the next look at a snapshot or an export.

Two rules, bounded by the configured minimum and maximum:

* while there is no progress to go by, back off exponentially from the minimum
  (min, 2*min, 4*min, ... up to max);
* once RDS reports a percentage, estimate the time left from the rate so far and look again
  after half of it, so the last looks come close together near the end.

The wait never passes the deadline: the last look happens at the deadline itself.
"""

from __future__ import annotations

from datetime import datetime

from rds_s3_export import clock


def next_wait(
    *,
    polls: int,
    progress: int | None,
    elapsed_seconds: int,
    min_seconds: int,
    max_seconds: int,
    now: datetime,
    deadline: str,
) -> int:
    if progress is not None and 0 < progress < 100 and elapsed_seconds > 0:
        remaining = elapsed_seconds * (100 - progress) / progress
        wait = remaining / 2
    else:
        wait = min_seconds * 2 ** min(polls, 20)
    bounded = int(min(max(wait, min_seconds), max_seconds))
    until_deadline = int((clock.parse(deadline) - now).total_seconds())
    return max(1, min(bounded, until_deadline)) if until_deadline > 0 else 1
