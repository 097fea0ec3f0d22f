"""A sandbox started at a chosen date runs its executions on that date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.rds_sim import Timing
from sandbox.runtime import Sandbox

START = datetime(2025, 3, 3, 21, 0, tzinfo=UTC)


def test_executions_and_snapshots_follow_the_simulated_clock() -> None:
    timing = Timing(snapshot_seconds=30, export_starting_seconds=10, export_running_seconds=20)
    with Sandbox(timing=timing, start=START) as sb:
        sb.add_instance("mydb")
        first = sb.run({})
        sb.clock.advance((START + timedelta(days=1) - sb.clock.now()).total_seconds())
        second = sb.run({})
    assert first.output is not None and second.output is not None
    assert first.output["snapshot"]["id"].startswith("mysnapshot-2025-03-03-21-0")
    assert second.output["snapshot"]["id"].startswith("mysnapshot-2025-03-04-21-0")
