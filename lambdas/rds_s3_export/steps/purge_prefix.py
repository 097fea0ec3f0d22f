"""PurgePrefix: verify the new export, then delete older export folders, one page a call.

The rules, all of which hold on every page:

* the prefix is re-checked (non-empty, not `/`, `.`, `..`, no leading `/`, no `:`);
* before the first deletion the new export is verified: its `export_info_<id>.json` exists
  and says COMPLETE, and its `export_tables_info_*` files list no FAILED table (SKIPPED tables
  follow the `skipped_tables_policy`: `warn` lists them, `fail` refuses);
* only keys below `<s3_prefix>/` are listed (the `/` is part of the boundary, so `exports/db`
  never touches `exports/db2/`), and of those only keys inside a folder that is an export:
  named like an export task and either holding its own `export_info_<folder>.json` or known
  to RDS as an export task into this bucket and prefix;
* the new export's folder and the folder of any export still running are never deleted;
* an old folder's `export_info_<folder>.json` is deleted last, on the final page, so a purge
  that stops half-way still recognises the rest of the folder as an export next time;
* loose keys directly under the prefix and folders that are not exports are left alone and
  reported, except the pipeline's own `_manifest.json`, which is left alone silently.

A second mode, `discard-failed`, removes the partial files of this run's own export after RDS
reported it FAILED or CANCELED (see `discard_failed_page`).

Each call lists at most 1,000 keys (one S3 page) after the cursor and deletes with one
DeleteObjects call, so no call grows with the size of the exports; the state machine loops
while `more` is true. With `dry_run` it deletes nothing and reports the keys it would delete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, s3layout, settings, status
from rds_s3_export.errors import InvalidInput, PurgeRefused
from rds_s3_export.inputs import check_s3_prefix
from rds_s3_export.log import correlated, logger
from rds_s3_export.manifest import manifest_key
from rds_s3_export.rds import export_tasks

PAGE_SIZE = 1000  # S3 ListObjectsV2 and DeleteObjects both take at most 1,000 keys
DRY_RUN_KEYS_SHOWN = 1000  # keeps the execution output far below Step Functions' 256 KB
LEFT_ALONE_SHOWN = 100


def _get_json(bucket: str, key: str) -> Any:
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if aws.error_code(err) in aws.THROTTLING_CODES:  # transient: the state machine retries
            aws.raise_as(err, PurgeRefused, "s3:GetObject", f"s3://{bucket}/{key}")
        raise PurgeRefused(
            f"cannot read s3://{bucket}/{key} ({aws.describe(err)}): the new export cannot be "
            "verified, nothing was deleted"
        ) from err
    try:
        return json.loads(body)
    except ValueError as err:
        raise PurgeRefused(f"s3://{bucket}/{key} is not valid JSON: nothing was deleted") from err


def table_statuses(tables_info: Any) -> list[dict[str, str]]:
    """`[{table, status, reason}]` from one export_tables_info document."""
    entries = tables_info.get("perTableStatus", []) if isinstance(tables_info, dict) else []
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        out.append(
            {
                "table": str(entry.get("target", entry.get("tableName", "?"))),
                "status": str(entry.get("status", "UNKNOWN")).upper(),
                "reason": str(entry.get("failureCause") or entry.get("warningMessage") or ""),
            }
        )
    return out


def verify_export(bucket: str, prefix: str, task_id: str, policy: str) -> dict[str, Any]:
    """Check the new export is complete; raise PurgeRefused otherwise."""
    where = f"s3://{bucket}/{s3layout.folder_prefix(prefix, task_id)}"
    info = _get_json(bucket, s3layout.export_info_key(prefix, task_id))
    info_status = str(info.get("status", "COMPLETE")).upper() if isinstance(info, dict) else "?"
    if info_status != "COMPLETE":
        raise PurgeRefused(f"export_info of {where} says {info_status}: nothing was deleted")
    s3 = aws.client("s3")
    tables: list[dict[str, str]] = []
    listing = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=s3layout.tables_info_prefix(prefix, task_id)
    )
    try:
        info_files = [o["Key"] for page in listing for o in page.get("Contents", [])]
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"{where}export_tables_info_*")
    if not info_files:
        raise PurgeRefused(f"no export_tables_info file in {where}: nothing was deleted")
    for key in info_files:
        tables.extend(table_statuses(_get_json(bucket, key)))
    failed = [t for t in tables if t["status"] == "FAILED"]
    skipped = [t for t in tables if t["status"] == "SKIPPED"]
    if failed:
        names = ", ".join(f"{t['table']} ({t['reason'] or 'no reason given'})" for t in failed)
        raise PurgeRefused(f"export {where} has failed tables: {names}; nothing was deleted")
    if skipped and policy == "fail":
        names = ", ".join(f"{t['table']} ({t['reason'] or 'no reason given'})" for t in skipped)
        raise PurgeRefused(
            f"export {where} skipped tables: {names}; skipped_tables_policy is 'fail', "
            "nothing was deleted"
        )
    return {
        "export_info": s3layout.export_info_key(prefix, task_id),
        "tables": len(tables),
        "tables_complete": sum(1 for t in tables if t["status"] == "COMPLETE"),
        "tables_skipped": [t["table"] for t in skipped],
    }


def _rds_folders(bucket: str, prefix: str) -> tuple[set[str], set[str]]:
    """(export task ids RDS knows into this bucket+prefix, those of them still running)."""
    known, running = set(), set()
    for task in export_tasks(PurgeRefused):
        if task.get("S3Bucket") != bucket:
            continue
        ident = str(task.get("ExportTaskIdentifier"))
        if str(task.get("Status", "")).upper() in status.EXPORT_RUNNING:
            running.add(ident)  # protected wherever it writes
        if (task.get("S3Prefix") or "").rstrip("/") == prefix:
            known.add(ident)
    return known, running


def _has_export_info(bucket: str, prefix: str, folder: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=bucket, Key=s3layout.export_info_key(prefix, folder))
    except ClientError as err:
        if aws.error_code(err) in {"404", "NoSuchKey", "NotFound"}:
            return False
        aws.raise_as(err, PurgeRefused, "s3:HeadObject", f"s3://{bucket}/{prefix}/{folder}/")
    return True


def classify_folder(
    folder: str, bucket: str, prefix: str, new_id: str | None, *, known: set[str], running: set[str]
) -> str:
    """`keep-new`, `keep-running`, `not-an-export` or `old-export`."""
    if folder == new_id:
        return "keep-new"
    if folder in running:
        return "keep-running"
    if not s3layout.could_be_export_folder(folder):
        return "not-an-export"
    if folder in known or _has_export_info(bucket, prefix, folder):
        return "old-export"
    return "not-an-export"


def _delete(bucket: str, keys: list[str]) -> None:
    if not keys:
        return
    try:
        response = aws.client("s3").delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:DeleteObjects", f"s3://{bucket}/{keys[0]}...")
    errors = response.get("Errors", [])
    if errors:
        first = errors[0]
        raise PurgeRefused(
            f"{len(errors)} of {len(keys)} old keys could not be deleted, e.g. "
            f"s3://{bucket}/{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}. "
            "The new export is complete and untouched; delete the rest by hand or re-run."
        )


def _sort_page(
    keys: list[str],
    prefix: str,
    classify: Callable[[str], str],
    markers: list[str],
    left_alone: set[str],
) -> list[str]:
    """The keys of one listed page to delete now. An old folder's export_info goes to
    `markers` instead (deleted on the last page); what is not an export goes to `left_alone`."""
    doomed: list[str] = []
    for key in keys:
        folder = s3layout.folder_of(prefix, key)
        if key == manifest_key(prefix):
            continue  # the pipeline's own manifest (PublishManifest): kept, and not foreign
        if folder is None:
            left_alone.add(key.rsplit("/", 1)[-1] or key)
            continue
        verdict = classify(folder)
        if verdict == "old-export":
            if key == s3layout.export_info_key(prefix, folder):
                markers.append(key)  # what makes the folder an export: deleted last
            else:
                doomed.append(key)
        elif verdict == "not-an-export":
            left_alone.add(f"{folder}/")
    return doomed


def purge_page(event: dict[str, Any]) -> dict[str, Any]:
    config, state = event["config"], dict(event["purge"])
    dry_run = bool(config.get("dry_run"))
    try:
        prefix = check_s3_prefix("s3_prefix", config.get("s3_prefix"))
    except InvalidInput as err:
        raise PurgeRefused(f"refusing to purge: {err}") from err
    bucket = settings.export_bucket()
    new_id = None if dry_run else event["export"]["export_task_id"]
    now = clock.now()
    if not state.get("started_at"):
        state["started_at"] = clock.isoformat(now)
    if state["pages"] == 0 and new_id is not None:
        state["verification"] = verify_export(
            bucket, prefix, new_id, config["skipped_tables_policy"]
        )
        state["warnings"] = [
            f"table skipped by RDS: {t}" for t in state["verification"]["tables_skipped"]
        ]

    known, running = _rds_folders(bucket, prefix)
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{prefix}/", "MaxKeys": PAGE_SIZE}
    if state.get("cursor"):
        params["StartAfter"] = state["cursor"]
    try:
        page = aws.client("s3").list_objects_v2(**params)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{prefix}/")
    keys = [o["Key"] for o in page.get("Contents", [])]

    verdicts: dict[str, str] = {}
    markers = list(state.get("markers", []))
    left_alone = set(state.get("left_alone", []))

    def classify(folder: str) -> str:
        if folder not in verdicts:
            verdicts[folder] = classify_folder(
                folder, bucket, prefix, new_id, known=known, running=running
            )
        return verdicts[folder]

    doomed = _sort_page(keys, prefix, classify, markers, left_alone)
    more = bool(page.get("IsTruncated")) and bool(keys)
    if not more:
        doomed.extend(markers)
        markers = []

    if dry_run:
        shown = state.get("would_delete_keys", [])
        state["would_delete_keys"] = (shown + doomed)[:DRY_RUN_KEYS_SHOWN]
        state["would_delete_keys_truncated"] = len(shown) + len(doomed) > DRY_RUN_KEYS_SHOWN
        state["would_delete_count"] = state.get("would_delete_count", 0) + len(doomed)
        doomed = []
    else:
        _delete(bucket, doomed)
    folders = set(state.get("folders", [])) | {
        f"{prefix}/{f}/" for f, v in verdicts.items() if v == "old-export"
    }
    state.update(
        cursor=keys[-1] if keys else state.get("cursor", ""),
        more=more,
        markers=markers,
        pages=state["pages"] + 1,
        objects_deleted=state["objects_deleted"] + len(doomed),
        folders=sorted(folders),
        left_alone=sorted(left_alone)[:LEFT_ALONE_SHOWN],
        kept_running=sorted(running & set(verdicts)),
        elapsed_seconds=clock.seconds_between(state["started_at"], clock.now()),
    )
    logger.info(
        "purge page",
        extra={
            "page": state["pages"],
            "deleted": len(doomed),
            "dry_run": dry_run,
            "more": state["more"],
        },
    )
    return state


def discard_failed_page(event: dict[str, Any]) -> dict[str, Any]:
    """Delete one page of this run's own *failed* export folder (DiscardFailedExport).

    RDS may write part of an export before it fails or is canceled. Those files are not a
    complete export and never the only good copy of anything, but a loader that reads the
    whole prefix would take them in. Only the folder named by this run's export task id is
    touched, and only once RDS itself reports that task FAILED or CANCELED.
    """
    config, export, state = event["config"], event["export"], dict(event.get("discard") or {})
    try:
        prefix = check_s3_prefix("s3_prefix", config.get("s3_prefix"))
    except InvalidInput as err:
        raise PurgeRefused(f"refusing to discard: {err}") from err
    task_id = export["export_task_id"]
    if not s3layout.could_be_export_folder(task_id):
        raise PurgeRefused(f"refusing to discard folder {task_id!r}: not an export task id")
    bucket = settings.export_bucket()
    try:
        tasks = aws.client("rds").describe_export_tasks(ExportTaskIdentifier=task_id)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "rds:DescribeExportTasks", f"export task {task_id}")
    found = tasks.get("ExportTasks", [])
    raw = str(found[0].get("Status", "")).upper() if found else "missing"
    if raw not in status.EXPORT_FAILED:
        raise PurgeRefused(f"export task {task_id} is {raw}, not FAILED or CANCELED: kept")
    folder = s3layout.folder_prefix(prefix, task_id)
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": folder, "MaxKeys": PAGE_SIZE}
    try:
        page = aws.client("s3").list_objects_v2(**params)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{folder}")
    keys = [o["Key"] for o in page.get("Contents", []) if o["Key"].startswith(folder)]
    _delete(bucket, keys)
    return {
        "folder": f"s3://{bucket}/{folder}",
        "objects_deleted": int(state.get("objects_deleted", 0)) + len(keys),
        # deleted keys vanish from the listing: the next page starts from the top again
        "more": bool(page.get("IsTruncated")) and bool(keys),
    }


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("mode") == "discard-failed":
        return discard_failed_page(event)
    return {**event, "purge": purge_page(event)}
