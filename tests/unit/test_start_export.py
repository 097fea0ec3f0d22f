"""start_export: how a refused StartExportTask is classified (the export quota has no error code
of its own), ExportOnly, and adopting this run's own task on a retry. RDS is a botocore Stubber:
each test says exactly which calls it expects, in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rds_s3_export import aws
from rds_s3_export.errors import ExportFailed, ExportQuotaExceeded, SourceNotFound, Throttled
from rds_s3_export.steps import start_export

TASK_ID = "mysnapshot-2026-01-02-03-04-abc123"
SNAPSHOT_ARN = "arn:aws:rds:us-east-1:123456789012:snapshot:mysnapshot-2026-01-02-03-04"
BUCKET = "export-bucket"
ROLE = "arn:aws:iam::123456789012:role/export"
KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
PREFIX = "exports/mydb"


@pytest.fixture
def rds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("rds", region_name="us-east-1")
    monkeypatch.setattr(aws, "client", lambda service: client)
    monkeypatch.setenv("EXPORT_BUCKET", BUCKET)
    monkeypatch.setenv("EXPORT_ROLE_ARN", ROLE)
    monkeypatch.setenv("EXPORT_KMS_KEY_ARN", KEY)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _event(export_only: list[str] | None = None) -> dict[str, Any]:
    return {
        "config": {
            "s3_prefix": PREFIX,
            "export_only": export_only or [],
            "export_timeout_seconds": 3600,
            "poll": {"min_seconds": 30, "max_seconds": 300},
        },
        "source": {"export_task_id": TASK_ID, "snapshot_arn": SNAPSHOT_ARN},
    }


def _start_params(export_only: list[str] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "ExportTaskIdentifier": TASK_ID,
        "SourceArn": SNAPSHOT_ARN,
        "S3BucketName": BUCKET,
        "IamRoleArn": ROLE,
        "KmsKeyId": KEY,
        "S3Prefix": PREFIX,
    }
    if export_only:
        params["ExportOnly"] = export_only
    return params


def _task(
    ident: str, status: str, source: str = SNAPSHOT_ARN, prefix: str = PREFIX
) -> dict[str, Any]:
    return {
        "ExportTaskIdentifier": ident,
        "SourceArn": source,
        "S3Bucket": BUCKET,
        "S3Prefix": prefix,
        "Status": status,
        "TaskStartTime": datetime(2026, 1, 2, tzinfo=UTC),
    }


def _no_task_yet(rds: Stubber) -> None:
    rds.add_client_error(
        "describe_export_tasks",
        service_error_code="ExportTaskNotFound",
        expected_params={"ExportTaskIdentifier": TASK_ID},
    )


def _refused(rds: Stubber, code: str, message: str, export_only: list[str] | None = None) -> None:
    rds.add_client_error(
        "start_export_task",
        service_error_code=code,
        service_message=message,
        expected_params=_start_params(export_only),
    )


def test_starts_the_task_with_export_only(rds: Stubber) -> None:
    # Given no task of this run yet
    _no_task_yet(rds)
    tables = ["shop.public.orders", "shop.public.customers"]
    rds.add_response(
        "start_export_task", _task(TASK_ID, "STARTING"), expected_params=_start_params(tables)
    )

    # When the export is started with an export_only list
    result = start_export.start(_event(tables))

    # Then StartExportTask got it as ExportOnly (the Stubber checks the parameters)
    assert result["export_task_id"] == TASK_ID
    assert result["s3_uri"] == f"s3://{BUCKET}/{PREFIX}/{TASK_ID}/"
    assert result["adopted"] is False
    assert result["status"]["state"] == "pending"


def test_an_empty_export_only_is_not_sent(rds: Stubber) -> None:
    # Given no task yet; When started without export_only; Then no ExportOnly parameter is sent
    _no_task_yet(rds)
    rds.add_response("start_export_task", _task(TASK_ID, "STARTING"), _start_params())
    assert start_export.start(_event())["export_task_id"] == TASK_ID


def test_a_refusal_that_names_the_quota_is_export_quota_exceeded(rds: Stubber) -> None:
    # Given RDS refusing with a generic code and a message about the limit
    _no_task_yet(rds)
    _refused(rds, "LimitExceededException", "You have reached the maximum number of export tasks")

    # When the export is started, Then it is the transient ExportQuotaExceeded, retried by the ASL
    with pytest.raises(ExportQuotaExceeded, match="maximum number of export tasks"):
        start_export.start(_event())


def test_an_unrecognised_refusal_while_five_exports_run_is_the_quota(rds: Stubber) -> None:
    # Given RDS refusing with words the pipeline does not know, while five exports run
    _no_task_yet(rds)
    _refused(rds, "InvalidParameterCombination", "Cannot start the task at this time")
    running = [_task(f"other-{n}", "IN_PROGRESS", source=f"arn:other:{n}") for n in range(5)]
    rds.add_response("describe_export_tasks", {"ExportTasks": [*running, _task("x", "COMPLETE")]})

    # When the export is started, Then it counts as the quota: retried, not failed
    with pytest.raises(ExportQuotaExceeded, match="Cannot start the task"):
        start_export.start(_event())


def test_an_unrecognised_refusal_with_free_slots_fails_the_export(rds: Stubber) -> None:
    # Given the same refusal while only four exports run
    _no_task_yet(rds)
    _refused(rds, "InvalidParameterCombination", "Cannot start the task at this time")
    running = [_task(f"other-{n}", "STARTING", source=f"arn:other:{n}") for n in range(4)]
    rds.add_response("describe_export_tasks", {"ExportTasks": running})

    # When the export is started, Then it fails ExportFailed, naming the call and the target
    with pytest.raises(ExportFailed, match="rds:StartExportTask") as raised:
        start_export.start(_event())
    assert SNAPSHOT_ARN in str(raised.value)
    assert f"s3://{BUCKET}/{PREFIX}/" in str(raised.value)


@pytest.mark.parametrize(
    "code", ["IamRoleMissingPermissions", "InvalidExportOnly", "KMSKeyNotAccessibleFault"]
)
def test_a_permanent_refusal_is_export_failed_even_if_it_mentions_a_limit(
    rds: Stubber, code: str
) -> None:
    # Given a refusal whose code is known to be permanent, whatever its words
    _no_task_yet(rds)
    _refused(rds, code, "over the limit of what this role may do")

    # When the export is started, Then it fails at once (no quota retry, no running-count look)
    with pytest.raises(ExportFailed, match=code):
        start_export.start(_event())


def test_throttling_is_throttled_not_the_quota(rds: Stubber) -> None:
    # Given StartExportTask throttled with a message that mentions a limit
    _no_task_yet(rds)
    _refused(rds, "ThrottlingException", "Rate exceeded: request limit")

    # When the export is started, Then it is Throttled (the ASL's short retry), not the quota
    with pytest.raises(Throttled):
        start_export.start(_event())


def test_a_snapshot_that_vanished_is_source_not_found(rds: Stubber) -> None:
    _no_task_yet(rds)
    _refused(rds, "DBSnapshotNotFound", "DBSnapshot mysnapshot-2026-01-02-03-04 not found")
    with pytest.raises(SourceNotFound, match="not found"):
        start_export.start(_event())


def test_a_retry_adopts_its_own_task_without_starting_another(rds: Stubber) -> None:
    # Given this run's task already exists (the first attempt started it, its answer was lost)
    rds.add_response(
        "describe_export_tasks",
        {"ExportTasks": [_task(TASK_ID, "IN_PROGRESS")]},
        {"ExportTaskIdentifier": TASK_ID},
    )

    # When the step is retried, Then it adopts the task and calls no StartExportTask
    result = start_export.start(_event())
    assert result["adopted"] is True
    assert result["status"]["raw_status"] == "IN_PROGRESS"


def test_a_task_of_the_same_id_exporting_something_else_is_refused(rds: Stubber) -> None:
    # Given a task with this run's id that exports another snapshot into another prefix
    other = _task(TASK_ID, "COMPLETE", source="arn:other:snapshot", prefix="elsewhere")
    rds.add_response("describe_export_tasks", {"ExportTasks": [other]})

    # When the export is started, Then it refuses rather than adopt a stranger's task
    with pytest.raises(ExportFailed, match="already used by an export of arn:other:snapshot"):
        start_export.start(_event())


def test_losing_a_race_to_its_own_retry_adopts_the_task(rds: Stubber) -> None:
    # Given no task at first, then ExportTaskAlreadyExists because a retry got there first
    _no_task_yet(rds)
    _refused(rds, "ExportTaskAlreadyExists", "already exists")
    rds.add_response("describe_export_tasks", {"ExportTasks": [_task(TASK_ID, "STARTING")]})

    # When the export is started, Then it adopts that task
    assert start_export.start(_event())["adopted"] is True


def test_an_adopted_finished_task_has_the_status_shape_later_states_read(rds: Stubber) -> None:
    # Given this run's task already finished before the retried step looked (no DescribeExportStatus
    # will run: the state machine goes straight on, and its summary reads these fields)
    task = {**_task(TASK_ID, "COMPLETE"), "TotalExtractedDataInGB": 7, "WarningMessage": "w"}
    rds.add_response(
        "describe_export_tasks", {"ExportTasks": [task]}, {"ExportTaskIdentifier": TASK_ID}
    )
    # When the step adopts it
    status = start_export.start(_event())["status"]
    # Then the status is done and carries what DescribeExportStatus would have added
    assert status["state"] == "done"
    assert (status["extracted_gb"], status["warning"]) == (7, "w")
