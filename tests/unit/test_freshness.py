"""Is the run's snapshot the one `<prefix>/_manifest.json` names? Only that stops a run: a
missing, unreadable or foreign manifest lets it export (one export too many, nothing lost)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rds_s3_export import aws, freshness
from rds_s3_export.errors import Throttled
from sandbox import faults
from tests.unit.conftest import BUCKET, put

PREFIX = "exports/mydb"
ARN = "arn:aws:rds:us-east-1:123456789012:snapshot:rds:mydb-2026-11-27-03-10"
SNAPSHOT = {"id": "rds:mydb-2026-11-27-03-10", "arn": ARN}
CONFIG = {"s3_prefix": PREFIX}


def _manifest(s3: Any, snapshot: Any) -> None:
    put(
        s3,
        f"{PREFIX}/_manifest.json",
        json.dumps({"export_task_id": "x", "snapshot": snapshot}).encode(),
    )


def test_the_snapshot_the_manifest_names_is_up_to_date(s3: Any) -> None:
    _manifest(s3, {"id": SNAPSHOT["id"], "arn": ARN, "time": None})
    reason = freshness.up_to_date(CONFIG, SNAPSHOT)
    assert reason is not None and SNAPSHOT["id"] in reason and f"s3://{BUCKET}/{PREFIX}" in reason


@pytest.mark.parametrize(
    "named",
    [
        {"id": "rds:mydb-2026-11-26-03-10", "arn": ARN.replace("27", "26")},  # last night's
        {"id": SNAPSHOT["id"], "arn": ARN.replace("us-east-1", "eu-west-1")},  # same id elsewhere
        None,  # a manifest without a snapshot
        "rds:mydb-2026-11-27-03-10",  # not an object
    ],
)
def test_another_snapshot_is_not_up_to_date(s3: Any, named: Any) -> None:
    _manifest(s3, named)
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is None


def test_without_an_arn_the_ids_are_compared_ignoring_case(s3: Any) -> None:
    _manifest(s3, {"id": "RDS:MYDB-2026-11-27-03-10", "arn": None})
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is not None


def test_no_manifest_or_one_that_is_not_json_lets_the_run_export(s3: Any) -> None:
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is None
    put(s3, f"{PREFIX}/_manifest.json", b"not json")
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is None


def test_an_unreadable_manifest_lets_the_run_export_and_throttling_is_retried(
    s3: Any, injector: faults.FaultInjector
) -> None:
    _manifest(s3, {"id": SNAPSHOT["id"], "arn": ARN})
    injector.api("s3", "GetObject", "AccessDenied", times=1)
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is None
    # one SlowDown is retried by the S3 client itself (aws.S3_ATTEMPTS); one on every attempt is
    # Throttled, which the state machine retries
    injector.api("s3", "GetObject", "SlowDown", times=1)
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is not None
    injector.api("s3", "GetObject", "SlowDown", times=aws.S3_ATTEMPTS)
    with pytest.raises(Throttled):
        freshness.up_to_date(CONFIG, SNAPSHOT)
    assert freshness.up_to_date(CONFIG, SNAPSHOT) is not None  # and then it reads it


def test_an_event_for_a_snapshot_older_than_the_exported_one_is_up_to_date(s3: Any) -> None:
    # Given the export of tonight's snapshot, taken 03:10
    _manifest(s3, {"id": "rds:mydb-2026-11-27-03-10", "arn": ARN, "time": "2026-11-27T03:10:00Z"})
    older = {
        "id": "rds:mydb-2026-11-26-03-10",
        "arn": ARN.replace("27", "26"),
        "created": "2026-11-26T03:10:00+00:00",
    }
    # When an event for last night's snapshot arrives late, Then the newer export stays
    reason = freshness.up_to_date({**CONFIG, "trigger": "rds-event"}, older)
    assert reason is not None and "came late or out of order" in reason
    # But a run started by hand exports the older snapshot it names, as asked
    assert freshness.up_to_date({**CONFIG, "trigger": "manual"}, older) is None
    # And a newer snapshot than the manifest's is exported
    newer = {**older, "id": "rds:mydb-2026-11-28-03-10", "created": "2026-11-28T03:10:00Z"}
    assert freshness.up_to_date({**CONFIG, "trigger": "rds-event"}, newer) is None
