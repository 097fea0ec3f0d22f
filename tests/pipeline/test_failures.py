"""The failure paths issue 2 names, executed in the sandbox. Each asserts on the bucket.

The wider matrix (every fault at every step) is in test_fault_matrix.py.
"""

from __future__ import annotations

import pytest

from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import RunResult, Sandbox, Settings
from tests.helpers import seed_objects

PREFIX = "exports/mydb"


@pytest.fixture
def previous(sandbox: Sandbox) -> dict[str, str]:
    """A complete export already in the prefix, as its keys and ETags."""
    first = sandbox.run({})
    assert first.status == "SUCCEEDED", first.cause
    return sandbox.listing(PREFIX)


def _assert_previous_untouched(sandbox: Sandbox, previous: dict[str, str]) -> None:
    after = sandbox.listing(PREFIX)
    assert {k: after.get(k) for k in previous} == previous


def _failed(result: RunResult, error: str) -> str:
    assert result.status == "FAILED", result.output
    assert result.error == error, result.cause
    assert result.cause
    return result.cause


def test_snapshot_failed(sandbox: Sandbox, previous: dict[str, str]) -> None:
    sandbox.rds.fail_next_snapshot("failed")
    cause = _failed(sandbox.run({}), "SnapshotFailed")
    assert "mysnapshot-" in cause and "failed" in cause
    assert sandbox.listing(PREFIX) == previous


@pytest.mark.parametrize("status", ["FAILED", "CANCELED"])
def test_export_failed_or_canceled_keeps_the_previous_export(
    sandbox: Sandbox, previous: dict[str, str], status: str
) -> None:
    sandbox.rds.next_export(ExportOutcome(status=status, failure_cause="S3 bucket is gone"))
    cause = _failed(sandbox.run({}), "ExportFailed")
    assert f"ended {status}" in cause and "S3 bucket is gone" in cause
    # the partial files RDS left of the failed export are removed; the previous export stays
    assert "1 partial object(s)" in cause
    assert sandbox.listing(PREFIX) == previous


def test_export_wait_deadline(sandbox: Sandbox, previous: dict[str, str]) -> None:
    # Given an export that takes 720 s and a deadline of 600 s
    sandbox.reconfigure(export_timeout_seconds=600)
    result = sandbox.run({})
    cause = _failed(result, "WaitTimedOut")
    assert "export task" in cause and "deadline" in cause
    # the last look happened at the deadline, not one poll interval later
    assert result.output is None
    _assert_previous_untouched(sandbox, previous)


@pytest.mark.parametrize(
    ("settings", "timing"),
    [(Settings(snapshot_timeout_seconds=900), Timing(snapshot_seconds=3600))],
)
def test_snapshot_wait_deadline(sandbox: Sandbox) -> None:
    cause = _failed(sandbox.run({}), "WaitTimedOut")
    assert "creating" in cause and "mysnapshot-" in cause
    assert sandbox.listing(PREFIX) == {}


def test_purge_over_several_pages_in_one_call(sandbox: Sandbox) -> None:
    # Given an old export folder of 2,500 objects (known to RDS by its export_info file)
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    old = "mysnapshot-2020-01-01-00-00-abcdef"
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{old}/export_info_{old}.json", Body=b"{}")
    seed_objects(
        bucket, (f"{PREFIX}/{old}/shop/public.t/1/part-{i:05d}.gz.parquet" for i in range(2499))
    )
    # When a run exports and purges
    result = sandbox.run({})
    # Then the old folder is gone, in one call of three DeleteObjects requests of at most 1,000
    # keys and a last one for its export_info, and only the new export remains
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["purge"]["objects_deleted"] == 2500
    assert out["purge"]["pages"] == 4
    assert result.visits("PurgePrefix") == 1
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]


@pytest.mark.parametrize(
    ("execution_input", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"s3_prefix": ""}, "s3_prefix"),
        ({"s3_prefix": "/"}, "s3_prefix"),
        (
            {"db_instance_identifier": "mydb", "db_cluster_identifier": "c1"},
            "db_cluster_identifier",
        ),
        ({"db_instance_identifier": ""}, "db_instance_identifier"),
        ({"keep_snapshots": "3"}, "keep_snapshots"),
    ],
)
def test_bad_input_fails_before_anything_is_created(
    sandbox: Sandbox, execution_input: dict[str, object], key: str
) -> None:
    cause = _failed(sandbox.run(execution_input), "InvalidInput")
    assert key in cause
    assert sandbox.snapshots("mydb", snapshot_type="manual") == []
    assert sandbox.listing() == {}


def test_one_throttling_error_then_success(sandbox: Sandbox) -> None:
    fault = sandbox.faults.api("rds", "CreateDBSnapshot", "Throttling", times=1)
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    assert fault.fired == 1
    assert next(s.outcome for s in result.states if s.name == "CreateSnapshot") == "error Throttled"
    assert len(sandbox.export_folders(PREFIX)) == 1


def test_a_retried_create_adopts_its_own_snapshot(sandbox: Sandbox) -> None:
    # Given a create whose Lambda dies after RDS accepted the snapshot (simulated by a Lambda
    # service error on the first invocation *after* creating: the snapshot exists already)
    sandbox.faults.crash_after("create_snapshot", times=1)
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["snapshot"]["adopted"] is True
    assert sandbox.snapshots("mydb", snapshot_type="manual") == [out["snapshot"]["id"]]
