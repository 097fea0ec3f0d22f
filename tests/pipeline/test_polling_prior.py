"""The second night polls with the first night's durations as its prior."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rds_s3_export import polling
from sandbox.rds_sim import Timing
from sandbox.runtime import RunResult, Sandbox

SNAPSHOT_S, EXPORT_S = 300, 1700  # a 1700 s export is noticed 250 s late without a prior


@pytest.fixture
def timing() -> Timing:
    return Timing(
        snapshot_seconds=SNAPSHOT_S,
        export_starting_seconds=120,
        export_running_seconds=EXPORT_S - 120,
        progress_curve="none-until-done",
    )


def priors(result: RunResult) -> dict[str, Any]:
    """The `expected_seconds` ValidateInput handed to the polling loops of this run."""
    for event in result.history:
        details = event.get("taskSucceededEventDetails")
        if details and '"poll"' in details.get("output", ""):
            return dict(json.loads(details["output"])["Payload"]["config"]["poll"])
    raise AssertionError("no ValidateInput result in the history")


def test_the_second_night_notices_the_end_within_a_minute(sandbox: Sandbox) -> None:
    # Given a database whose export reports no progress until it is done
    first = sandbox.run({})
    assert first.status == "SUCCEEDED", first.cause
    assert priors(first)["expected_seconds"] == {"snapshot": None, "export": None}
    assert first.output is not None
    assert first.output["phases_seconds"]["export"] - EXPORT_S > polling.NEAR_END_SECONDS

    # When it runs again the next night
    sandbox.clock.advance(24 * 3600)
    second = sandbox.run({})

    # Then the priors are last night's durations, and both ends are noticed within a minute
    assert second.status == "SUCCEEDED", second.cause
    expected = priors(second)["expected_seconds"]
    assert expected["export"] == EXPORT_S  # RDS's own start and end times
    # the snapshot's: the middle between the first night's last look that saw it creating and
    # the look that saw it available (RDS gives no snapshot end time), nearer the truth than
    # the look that noticed the end
    noticed = first.output["phases_seconds"]["snapshot"]
    pending = first.output["pending_seconds"]["snapshot"]
    assert pending < SNAPSHOT_S <= noticed
    assert expected["snapshot"] == (pending + noticed) // 2
    assert abs(expected["snapshot"] - SNAPSHOT_S) < noticed - SNAPSHOT_S
    assert second.output is not None
    phases = second.output["phases_seconds"]
    assert 0 <= phases["export"] - EXPORT_S <= polling.NEAR_END_SECONDS
    assert 0 <= phases["snapshot"] - SNAPSHOT_S <= polling.NEAR_END_SECONDS


def test_a_previous_export_elsewhere_is_not_a_prior(sandbox: Sandbox) -> None:
    # Given a finished export of the same database into another prefix
    sandbox.seed_previous_export("mydb", 60, s3_prefix="exports/other")
    result = sandbox.run({})
    assert priors(result)["expected_seconds"]["export"] is None
