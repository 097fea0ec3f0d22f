"""Issue 17 end to end: honest counts after a lost answer, the purge's time budget under a
Lambda context that follows the simulated clock, and "absent" without s3:ListBucket."""

from __future__ import annotations

from sandbox import seams
from sandbox.runtime import Sandbox
from tests.helpers import seed_objects

PREFIX = "exports/mydb"
OLD = "mysnapshot-2020-01-01-00-00-abcdef"


def _seed_old_export(sandbox: Sandbox, objects: int) -> None:
    """An old export folder of `objects` objects, recognised by its export_info file."""
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{OLD}/export_info_{OLD}.json", Body=b"{}")
    seed_objects(
        bucket,
        (f"{PREFIX}/{OLD}/shop/public.t/1/part-{i:05d}.gz.parquet" for i in range(objects - 1)),
    )


def test_a_lost_purge_answer_reports_its_counts_as_lower_bounds(sandbox: Sandbox) -> None:
    # Given an old export of 2,512 objects, and the purge's first call losing its answer after
    # it deleted them (Lambda.ServiceException after the handler ran)
    _seed_old_export(sandbox, 2512)
    sandbox.faults.crash_after("purge_prefix", times=1)
    # When the run retries the call and ends
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    # Then the old export is gone, and the summary does not pass off what the retried call saw
    # as the truth: its counts are labelled lower bounds
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]
    assert out["purge"]["counts_are_lower_bounds"] is True
    assert out["purge"]["objects_deleted"] <= 2512


def test_a_purge_without_a_lost_answer_reports_exact_counts(sandbox: Sandbox) -> None:
    _seed_old_export(sandbox, 2512)
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["purge"]["counts_are_lower_bounds"] is False
    assert out["purge"]["objects_deleted"] == 2512
    assert out["purge"]["folders"] == [f"{PREFIX}/{OLD}/"]


def test_the_purge_splits_its_work_by_the_time_its_function_has_left(sandbox: Sandbox) -> None:
    # Given an old export of 3,500 objects (4 pages) and S3 taking 40 simulated seconds for each
    # DeleteObjects request, against the purge function's 300-second timeout
    assert seams.FUNCTION_TIMEOUT_SECONDS["purge_prefix"] == 300
    _seed_old_export(sandbox, 3500)
    sandbox.faults.latency("s3", "DeleteObjects", 40, module="purge_prefix")
    # When the run purges
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    # Then the purge took more than one call, none of them ran past its timeout, and the count
    # is exact (no call had to be retried)
    assert result.visits("PurgePrefix") >= 2
    failures = [s.outcome for s in result.states if s.name == "PurgePrefix" and s.outcome != "ok"]
    assert failures == []
    assert out["purge"]["objects_deleted"] == 3500
    assert out["purge"]["counts_are_lower_bounds"] is False
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]


def test_a_call_that_runs_past_its_timeout_is_answered_as_lambda_does(sandbox: Sandbox) -> None:
    # Given S3 so slow that even one DeleteObjects request outlasts the purge's timeout
    _seed_old_export(sandbox, 10)
    sandbox.faults.latency("s3", "DeleteObjects", 400, module="purge_prefix")
    # Then the call is failed as Lambda fails a function at its timeout, and retried
    result = sandbox.run({})
    outcomes = [s.outcome for s in result.states if s.name == "PurgePrefix"]
    assert "error Sandbox.Timedout" in outcomes


def test_first_night_without_list_bucket_is_not_refused(sandbox: Sandbox) -> None:
    # Given the first night (no manifest), an old export, and a role without s3:ListBucket on
    # the keys it reads, so that S3 answers a GET or HEAD of a missing key 403, not 404
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions")
    _seed_old_export(sandbox, 5)
    for operation in ("GetObject", "HeadObject"):
        sandbox.faults.api(
            "s3", operation, "AccessDenied", times=None, url_contains="_manifest.json"
        )
    # When the run purges, Then the missing manifest is found absent by a listing, not refused
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    assert result.output["purge"]["objects_deleted"] == 5
