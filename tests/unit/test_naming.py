"""Generated ids: always valid for RDS, unique per run, the same on a retry of one run."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from rds_s3_export import naming

STAMP = "2026-11-27-21-00"  # the run's start, for snapshots whose id carries no date
# RDS's rules, written out independently of rds_s3_export.naming
RDS_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*(?<!-)$")
SNAPSHOT_ID_MAX = 255
EXPORT_TASK_ID_MAX = 60
EXAMPLES = hypothesis_settings(max_examples=60, deadline=None)


def valid_export_task_id(value: str) -> bool:
    return (
        0 < len(value) <= EXPORT_TASK_ID_MAX
        and value[0].isascii()
        and value[0].isalpha()
        and "--" not in value
        and not value.endswith("-")
        and all(c in string.ascii_letters + string.digits + "-" for c in value)
    )


# A snapshot_prefix as ValidateInput accepts it: an RDS identifier of at most 200 characters
PREFIXES = st.from_regex(r"\A[A-Za-z](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,199}\Z").filter(
    lambda p: len(p) <= 200
)
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
EXECUTION_NAMES = st.text(
    alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=80
)
# Snapshot ids a run may export: its own, automated ones (`rds:...`), or any named one
SNAPSHOT_IDS = st.one_of(
    PREFIXES.map(lambda p: p.lower()),
    st.builds(lambda p, m: f"rds:{p}-{naming.minute_stamp(m)}", PREFIXES, MOMENTS),
    st.text(min_size=0, max_size=300),
)


def execution_arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:rds-s3-export:{name}"


@EXAMPLES
@given(prefix=PREFIXES, started=MOMENTS, name=EXECUTION_NAMES)
def test_a_snapshot_id_is_a_valid_rds_identifier(prefix: str, started: datetime, name: str) -> None:
    # Given any valid snapshot_prefix and start time, When the snapshot id is made (also the
    # form with the run's suffix that a second run in the same minute uses)
    snapshot_id = naming.snapshot_id(prefix, started)
    with_suffix = f"{snapshot_id}-{naming.run_suffix(execution_arn(name))}"
    # Then both are valid RDS snapshot identifiers in the original `<prefix>-YYYY-mm-dd-HH-MM`
    for ident in (snapshot_id, with_suffix):
        assert RDS_ID.match(ident) and len(ident) <= SNAPSHOT_ID_MAX, ident
        assert naming.is_rds_identifier(ident, "snapshot")
    assert snapshot_id == f"{prefix.lower()}-{started:%Y-%m-%d-%H-%M}"


@EXAMPLES
@given(snapshot_id=SNAPSHOT_IDS, name=EXECUTION_NAMES)
def test_an_export_task_id_is_always_valid_for_rds(snapshot_id: str, name: str) -> None:
    # Given any snapshot id, however long or odd, When this run's export task id is derived
    task_id = naming.export_task_id(snapshot_id, naming.run_suffix(execution_arn(name)), STAMP)
    # Then RDS accepts it: a letter first, letters/digits/single hyphens, no trailing hyphen,
    # at most 60 characters
    assert valid_export_task_id(task_id), task_id
    assert naming.is_export_task_id(task_id)


@EXAMPLES
@given(snapshot_id=SNAPSHOT_IDS, first=EXECUTION_NAMES, second=EXECUTION_NAMES)
def test_distinct_runs_get_distinct_export_task_ids_for_one_snapshot(
    snapshot_id: str, first: str, second: str
) -> None:
    # Given two different executions exporting the same snapshot (e.g. latest-automated)
    assume(first != second)
    ids = [
        naming.export_task_id(snapshot_id, naming.run_suffix(execution_arn(n)), STAMP)
        for n in (first, second)
    ]
    # Then their export task ids differ (the run suffix: 24 bits of the execution ARN's hash)
    assert ids[0] != ids[1]


@EXAMPLES
@given(prefix=PREFIXES, started=MOMENTS, name=EXECUTION_NAMES)
def test_the_same_run_always_gets_the_same_ids(prefix: str, started: datetime, name: str) -> None:
    # Given one execution, When its ids are derived again (a retry of a step)
    def ids() -> tuple[str, str]:
        snapshot_id = naming.snapshot_id(prefix, started)
        suffix = naming.run_suffix(execution_arn(name))
        return snapshot_id, naming.export_task_id(snapshot_id, suffix, STAMP)

    # Then they are the same: a retry adopts what it made instead of making a second one
    assert ids() == ids()


@EXAMPLES
@given(prefix=PREFIXES, started=MOMENTS)
def test_two_starts_in_different_minutes_get_different_snapshot_ids(
    prefix: str, started: datetime
) -> None:
    later = started + timedelta(minutes=1)
    assert naming.snapshot_id(prefix, started) != naming.snapshot_id(prefix, later)


def test_the_snapshot_id_uses_the_start_time_in_utc() -> None:
    # Given a start time expressed in another time zone
    started = datetime(2024, 5, 1, 4, 30, tzinfo=timezone(timedelta(hours=2)))
    # Then the id carries the UTC time
    assert naming.snapshot_id("Nightly", started) == "nightly-2024-05-01-02-30"


@pytest.mark.parametrize(
    ("snapshot_id", "expected"),
    [
        ("mysnapshot-2024-05-01-02-30", "mysnapshot-2024-05-01-02-30-abc123"),
        ("rds:mydb-2024-05-01-02-30", "rds-mydb-2024-05-01-02-30-abc123"),
        ("2024-only-digits-first", "x-2024-only-digits-first-2026-11-27-21-00-abc123"),
        ("", "x-2026-11-27-21-00-abc123"),
        ("mycluster-before-upgrade", "mycluster-before-upgrade-2026-11-27-21-00-abc123"),
        # a long name is cut, its date never: the folder shows which night it holds
        ("a" * 100, "a" * 36 + "-2026-11-27-21-00-abc123"),
        ("a" * 80 + "-2024-05-01-02-30", "a" * 36 + "-2024-05-01-02-30-abc123"),
        ("a" * 35 + "--b", "a" * 35 + "-2026-11-27-21-00-abc123"),  # no "--", no "-" at the cut
    ],
)
def test_export_task_id_examples(snapshot_id: str, expected: str) -> None:
    assert naming.export_task_id(snapshot_id, "abc123", STAMP) == expected


def test_the_run_suffix_is_stable_and_short() -> None:
    arn = execution_arn("nightly-2024-05-01")
    assert naming.run_suffix(arn) == naming.run_suffix(arn)
    assert len(naming.run_suffix(arn)) == naming.RUN_SUFFIX_LEN
    assert naming.run_suffix(arn) != naming.run_suffix(execution_arn("nightly-2024-05-02"))


def test_a_snapshot_id_that_carries_the_run_suffix_does_not_get_it_twice() -> None:
    # Given a run whose snapshot got `-<suffix>` because another run had the minute's plain id
    suffix = naming.run_suffix("arn:aws:states:us-east-1:1:execution:sm:night-2")
    snapshot = f"mysnapshot-2026-11-27-21-00-{suffix}"
    # Then the export task id is the snapshot id, not the snapshot id plus the suffix again
    assert naming.export_task_id(snapshot, suffix, STAMP) == snapshot
    assert naming.export_task_id("mysnapshot-2026-11-27-21-00", suffix, STAMP) == snapshot


@EXAMPLES
@given(prefix=PREFIXES, started=MOMENTS, name=EXECUTION_NAMES)
def test_the_date_stays_visible_in_the_export_task_id(
    prefix: str, started: datetime, name: str
) -> None:
    # Given a prefix of any allowed length, When the run's ids are derived
    snapshot_id = naming.snapshot_id(prefix, started)
    task_id = naming.export_task_id(snapshot_id, naming.run_suffix(execution_arn(name)), STAMP)
    # Then the export folder's name still shows the snapshot's date
    assert f"-{started:%Y-%m-%d-%H-%M}-" in task_id, task_id
