"""polling.next_wait: where the next look goes, with and without the previous run's duration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from rds_s3_export import polling

NOW = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
FAR = "2024-05-02T02:00:00+00:00"


def wait(polls: int, progress: int | None, elapsed: int, expected: int | None = None) -> int:
    return polling.next_wait(
        polls=polls,
        progress=progress,
        elapsed_seconds=elapsed,
        min_seconds=30,
        max_seconds=300,
        now=NOW,
        deadline=FAR,
        expected_seconds=expected,
    )


def loop(end: int, percent: Callable[[float], int], expected: int | None) -> tuple[int, int]:
    """Looks (the first after 30 s, as the loop starts) until `end`: (looks, seconds late)."""
    elapsed, looks = 30, 0
    while True:
        looks += 1
        if elapsed >= end:
            return looks, elapsed - end
        elapsed += wait(looks, percent(elapsed / end), elapsed, expected)


def linear(fraction: float) -> int:
    return int(100 * fraction)


def none_until_done(fraction: float) -> int:
    return 0


def test_without_a_prior_the_first_night_is_unchanged() -> None:
    # exponential back-off while there is no progress, half the estimated rest once there is
    assert [wait(n, None, 0) for n in (1, 2, 3, 4)] == [60, 120, 240, 300]
    assert wait(5, 50, 200) == 100
    assert wait(5, 99, 2000) == 30  # never below the minimum


@pytest.mark.parametrize("offset", [-120, -60, 0, 37, 90, 150])
@pytest.mark.parametrize("percent", [linear, none_until_done], ids=["linear", "none"])
def test_with_a_prior_the_end_is_noticed_within_a_minute(
    offset: int, percent: Callable[[float], int]
) -> None:
    # Given last night's export took 90 minutes, and tonight's is up to 2 minutes off
    _, late = loop(5400 + offset, percent, expected=5400)
    # Then the end is noticed within NEAR_END_SECONDS, even when RDS reports no progress
    assert late <= polling.NEAR_END_SECONDS


def test_a_prior_does_not_cost_more_looks_with_linear_progress() -> None:
    first_night, _ = loop(5400, linear, expected=None)
    second_night, late = loop(5400, linear, expected=5400)
    assert second_night <= first_night
    assert late <= 30


def test_no_progress_without_a_prior_is_noticed_late() -> None:
    # the case the prior exists for: the back-off reaches 300 s and overshoots the end
    _, late = loop(5400, none_until_done, expected=None)
    assert late > polling.NEAR_END_SECONDS


def test_the_looks_land_on_the_expected_end() -> None:
    assert wait(3, None, 5340, expected=5400) == 60
    assert wait(3, None, 5370, expected=5400) == 30


def test_an_overrun_backs_off_by_a_quarter() -> None:
    assert wait(20, None, 5400, expected=5400) == 60
    assert wait(20, None, 5400 + 800, expected=5400) == 200
    assert wait(20, None, 5400 + 4000, expected=5400) == 300  # never above the maximum


def test_progress_moves_the_expected_end() -> None:
    # a prior of 90 minutes, but RDS is at 90% after 30 minutes: the end is near
    assert polling.expected_end(90, 1800, 5400) < 3000
    assert polling.expected_end(None, 1800, 5400) == 5400


def test_the_deadline_still_bounds_the_wait() -> None:
    deadline = (NOW + timedelta(seconds=45)).isoformat()
    got = polling.next_wait(
        polls=1,
        progress=None,
        elapsed_seconds=100,
        min_seconds=30,
        max_seconds=300,
        now=NOW,
        deadline=deadline,
        expected_seconds=5400,
    )
    assert got == 45
