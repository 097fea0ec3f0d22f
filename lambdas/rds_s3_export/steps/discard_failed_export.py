"""DiscardFailedExport: remove the partial files of this run's own failed export.

RDS may write part of an export before it fails or is canceled. Those files are not a
complete export and never the only good copy of anything, but a loader that reads the whole
prefix would take them in. Only the folder named by this run's export task id is touched, and
only once RDS itself reports that task FAILED or CANCELED. One page (at most 1,000 keys) a
call; the state machine loops while `more` is true.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, rules, s3layout, settings, status
from rds_s3_export.errors import InvalidInput, PurgeRefused
from rds_s3_export.inputs import check_s3_prefix
from rds_s3_export.log import correlated
from rds_s3_export.steps import shaped

# one listing page, deleted in one request (both capped at 1,000 keys by S3)
PAGE_SIZE = min(rules.S3_LIST_PAGE_MAX_KEYS, rules.S3_DELETE_OBJECTS_MAX_KEYS)


def _confirm_failed(task_id: str) -> None:
    try:
        tasks = aws.client("rds").describe_export_tasks(ExportTaskIdentifier=task_id)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "rds:DescribeExportTasks", f"export task {task_id}")
    found = tasks.get("ExportTasks", [])
    raw = str(found[0].get("Status", "")).upper() if found else "missing"
    if raw not in status.EXPORT_FAILED:
        raise PurgeRefused(f"export task {task_id} is {raw}, not FAILED or CANCELED: kept")


def _delete(bucket: str, keys: list[str]) -> int:
    """Delete one page of partial files; the number S3 reports deleted."""
    try:
        deleted = aws.delete_objects(
            bucket, keys, PurgeRefused, "They are partial files of the failed export."
        )
    except ClientError as err:  # throttled: the state machine's Retry backs off
        aws.raise_as(err, PurgeRefused, "s3:DeleteObjects", f"s3://{bucket}/{keys[0]}...")
    return len(deleted)


def discard_page(event: dict[str, Any]) -> dict[str, Any]:
    """Delete one page of this run's own *failed* export folder."""
    config, export, state = event["config"], event["export"], dict(event.get("discard") or {})
    try:
        prefix = check_s3_prefix("s3_prefix", config.get("s3_prefix"))
    except InvalidInput as err:
        raise PurgeRefused(f"refusing to discard: {err}") from err
    task_id = export["export_task_id"]
    if not s3layout.could_be_export_folder(task_id):
        raise PurgeRefused(f"refusing to discard folder {task_id!r}: not an export task id")
    bucket = settings.export_bucket()
    _confirm_failed(task_id)
    folder = s3layout.folder_prefix(prefix, task_id)
    try:
        page = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=folder, MaxKeys=PAGE_SIZE)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{folder}")
    keys = [o["Key"] for o in page.get("Contents", []) if o["Key"].startswith(folder)]
    deleted = _delete(bucket, keys)
    return {
        "folder": f"s3://{bucket}/{folder}",
        "objects_deleted": int(state.get("objects_deleted", 0)) + deleted,
        # deleted keys vanish from the listing: the next page starts from the top again
        "more": bool(page.get("IsTruncated")) and bool(keys),
    }


# `$.discard`: the failed export's folder, what was removed from it, whether more is left
RESULT_FIELDS = (
    "folder",
    "objects_deleted",
    "more",
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(discard_page(event), RESULT_FIELDS)
