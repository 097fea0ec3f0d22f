"""StartExport: export exactly this run's snapshot into `s3://<bucket>/<s3_prefix>/<task id>/`.

The task id is derived from the snapshot id plus this run's suffix: valid for RDS, unique per
run, and the same on a retry, so a retry that finds its own task (ExportTaskAlreadyExists with
the same source and destination) adopts it instead of failing.

When the account already runs the maximum number of exports, RDS refuses the task; that refusal
becomes ExportQuotaExceeded, which the state machine retries with backoff and jitter until a
slot frees. The quota has no error code of its own, so a refusal counts as the quota when its
message says so, or when its code is not a known permanent one and the account does run the
maximum number of exports at that moment. There is no count-then-start check beforehand: it
would race with every other pipeline starting an export, and RDS enforces the quota anyway.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, rules, status
from rds_s3_export.errors import ExportFailed, ExportQuotaExceeded
from rds_s3_export.log import correlated, logger
from rds_s3_export.rds import export_tasks
from rds_s3_export.settings import ExportTarget
from rds_s3_export.steps import shaped

MAX_RUNNING_EXPORTS = rules.CONCURRENT_EXPORTS_MAX
# The quota has no error code of its own in the API model: recognise it by its words.
_QUOTA_WORDS = re.compile(r"quota|limit|maximum number|too many|concurrent", re.IGNORECASE)
_PERMANENT_CODES = frozenset(
    {
        "IamRoleNotFound",
        "IamRoleMissingPermissions",
        "InvalidExportOnly",
        "InvalidS3BucketFault",
        "KMSKeyNotAccessibleFault",
        "InvalidExportSourceState",
        "DBSnapshotNotFound",
        "DBClusterSnapshotNotFoundFault",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def running_exports() -> list[str]:
    return [
        str(t.get("ExportTaskIdentifier"))
        for t in export_tasks(ExportFailed)
        if str(t.get("Status", "")).upper() in status.EXPORT_RUNNING
    ]


def _is_quota_refusal(err: ClientError) -> bool:
    code = aws.error_code(err)
    if code in _PERMANENT_CODES or code in aws.THROTTLING_CODES or code in aws.NOT_FOUND_CODES:
        return False
    if _QUOTA_WORDS.search(aws.error_message(err)):
        return True
    try:  # an unrecognised refusal while the quota is full is the quota
        return len(running_exports()) >= MAX_RUNNING_EXPORTS
    except ExportFailed:
        return False


def _is_own_task(task: dict[str, Any], source_arn: str, target: ExportTarget, prefix: str) -> bool:
    return (
        task.get("SourceArn") == source_arn
        and task.get("S3Bucket") == target.bucket
        and (task.get("S3Prefix") or "").rstrip("/") == prefix
    )


def start(event: dict[str, Any], *, first_try: bool = True) -> dict[str, Any]:
    config, source = event["config"], event["source"]
    target = ExportTarget.from_env()
    task_id = source["export_task_id"]
    prefix = config["s3_prefix"]
    params: dict[str, Any] = {
        "ExportTaskIdentifier": task_id,
        "SourceArn": source["snapshot_arn"],
        "S3BucketName": target.bucket,
        "IamRoleArn": target.role_arn,
        "KmsKeyId": target.kms_key_arn,
        "S3Prefix": prefix,
    }
    if config["export_only"]:
        params["ExportOnly"] = config["export_only"]

    adopted = False
    rds = aws.client("rds")
    try:
        existing = rds.describe_export_tasks(ExportTaskIdentifier=task_id).get("ExportTasks", [])
    except ClientError as err:
        if aws.error_code(err) not in {"ExportTaskNotFound", "ExportTaskNotFoundFault"}:
            aws.raise_as(err, ExportFailed, "rds:DescribeExportTasks", f"export task {task_id}")
        existing = []
    if existing:
        if not _is_own_task(existing[0], source["snapshot_arn"], target, prefix):
            raise ExportFailed(
                f"export task id {task_id} is already used by an export of "
                f"{existing[0].get('SourceArn')} to s3://{existing[0].get('S3Bucket')}/"
                f"{existing[0].get('S3Prefix')}; not starting a second one"
            )
        adopted, task = True, existing[0]
        logger.info("adopting own export task", extra={"export_task_id": task_id})
    else:
        try:
            task = rds.start_export_task(**params)
        except ClientError as err:
            code = aws.error_code(err)
            if first_try and code in {"ExportTaskAlreadyExists", "ExportTaskAlreadyExistsFault"}:
                # a concurrent retry of this very step got there first: adopt if it is ours
                return start(event, first_try=False)
            if _is_quota_refusal(err):
                raise ExportQuotaExceeded(
                    f"rds:StartExportTask {task_id} refused by the account's export quota "
                    f"(RDS runs at most {MAX_RUNNING_EXPORTS} exports at a time): "
                    f"{aws.describe(err)}. Retried until a slot frees."
                ) from err
            aws.raise_as(
                err,
                ExportFailed,
                "rds:StartExportTask",
                f"{source['snapshot_arn']} -> s3://{target.bucket}/{prefix}/ "
                f"(role {target.role_arn}, key {target.kms_key_arn})",
            )

    now = clock.now()
    raw = str(task.get("Status", "STARTING")).upper()
    result = {
        "export_task_id": task_id,
        "s3_uri": f"s3://{target.bucket}/{prefix}/{task_id}/",
        "adopted": adopted,
        **status.loop_start(
            now=now,
            timeout_seconds=config["export_timeout_seconds"],
            min_wait_seconds=config["poll"]["min_seconds"],
            state=status.export_state(raw),
            raw_status=raw,
            progress=task.get("PercentProgress"),
            extra={
                "extracted_gb": task.get("TotalExtractedDataInGB"),
                "warning": task.get("WarningMessage", ""),
            },
        ),
    }
    logger.info("export started", extra={"export": result})
    return result


# `$.export`: the export task, where it writes, and the start of its polling loop
RESULT_FIELDS = (
    "export_task_id",
    "s3_uri",
    "adopted",
    *status.LOOP_FIELDS,
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(start(event), RESULT_FIELDS)
