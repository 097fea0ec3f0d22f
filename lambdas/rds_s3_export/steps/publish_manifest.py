"""PublishManifest: tell downstream that the prefix holds a new, complete export.

Runs once per successful, non-dry run, after the purge's first pass (so the prefix holds the
new export folder and at most one more, the previous export the current manifest names, which
the purge held back) and before PurgePreviousExport deletes that one. It:

1. reads the new export's ``export_info_<id>.json`` and every ``export_tables_info_*`` file
   and lists every key of the export folder ``<s3_prefix>/<export_task_id>/``;
2. matches the listed folders to the tables (:func:`rds_s3_export.manifest.locate_tables`: a
   COMPLETE table whose files cannot be found fails the step) and reads every data file's
   Parquet footer with ranged GETs (:mod:`rds_s3_export.parquet_footer`; never the data), a
   few files at a time, for its row count and column types;
3. builds the manifest (:func:`rds_s3_export.manifest.build_manifest`) and writes it to
   ``<s3_prefix>/_manifest.json`` with one PutObject, SSE-KMS under the export key like the
   export itself. It is the last object the run writes; a reader sees yesterday's manifest or
   today's, never half of one, and each names a folder that is there: the purge never deletes
   the new export, and deletes yesterday's only after this write;
4. puts one event on the account's default EventBridge bus (see :data:`EVENT_SOURCE`,
   :data:`EVENT_DETAIL_TYPE`), so a loader can start at once instead of on a fixed schedule.

A dry run, a failed export or a refused purge never reach this step, so they leave the
manifest as it was. A failure before the manifest is written is ``PublishFailed`` (throttling is
``Throttled`` and is retried): the export is safe and complete, but downstream was not told, and
yesterday's export, which the manifest still names, stays. A retry writes the manifest again
and may send the event twice; a consumer should use ``export_task_id`` to notice an export it
has already loaded.

A publish that half-succeeded is told apart from one that failed:

* the PUT's answer was lost (every attempt the SDK made): the manifest is read back (listed
  first, then read). If it is this run's, the write went through: the step succeeds with a
  warning. Otherwise ``PublishFailed``, and the manifest is as it was.
* PutEvents refused the event after the manifest was written: it is sent again, up to
  EVENT_ATTEMPTS times with backoff. Still refused, the step succeeds with a warning (no event
  this night): the manifest names the new, complete export, so the night is published for
  whoever reads the manifest, and the previous export, which no manifest names any more, is
  deleted by the purge's last pass as on any night. Only throttling that outlasts the attempts
  is ``Throttled`` (the state machine calls the step again).
"""

from __future__ import annotations

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from rds_s3_export import aws, clock, s3layout, settings
from rds_s3_export.errors import PublishFailed, Throttled
from rds_s3_export.log import correlated, logger
from rds_s3_export.manifest import (
    DataFile,
    ExportMismatch,
    ManifestTooLarge,
    build_manifest,
    dumps,
    footers_to_read,
    manifest_key,
)
from rds_s3_export.parquet_footer import Footer, ParquetFooterError, read_footer, s3_range_reader
from rds_s3_export.steps import shaped

EVENT_SOURCE: Final = "rds-s3-export"
"""The event's ``source``: the product's name, the same for every deployment. Which pipeline
sent it is in ``detail.pipeline`` (the stack's ``pipeline_name``)."""
EVENT_DETAIL_TYPE: Final = "RDS Export Ready"
EVENT_BUS: Final = "default"

FOOTER_READERS: Final = 8
"""Footers read at a time: each is one or two small ranged GETs, so a few in flight cut the
step's time by as much for an export of thousands of files. Below botocore's default pool of
10 connections per client (https://botocore.amazonaws.com/v1/documentation/api/latest/
reference/config.html, ``max_pool_connections``), and far below S3's 5,500 GET requests per
second per prefix (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
optimizing-performance.html)."""

# PutEvents takes entries of at most 256 KB (detail included):
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
# The detail below is a few hundred bytes whatever the size of the export.
# A refused entry (FailedEntryCount, or the call refused) is sent again with backoff:
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html
EVENT_ATTEMPTS: Final = 3
EVENT_BACKOFF_SECONDS: Final = 1.0


def _read_json(s3: Any, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        aws.raise_as(err, PublishFailed, "s3:GetObject", f"s3://{bucket}/{key}")
    try:
        return json.loads(body)
    except ValueError as err:
        raise PublishFailed(f"s3://{bucket}/{key} is not valid JSON: no manifest written") from err


def _list_folder(s3: Any, bucket: str, folder: str) -> list[tuple[str, int]]:
    """(key, size) of every object under ``folder``."""
    found: list[tuple[str, int]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            found += [(o["Key"], int(o.get("Size", 0))) for o in page.get("Contents", [])]
    except ClientError as err:
        aws.raise_as(err, PublishFailed, "s3:ListObjectsV2", f"s3://{bucket}/{folder}")
    return found


def _footer(s3: Any, bucket: str, data_file: DataFile) -> Footer:
    uri = f"s3://{bucket}/{data_file.key}"
    try:
        return read_footer(s3_range_reader(s3, bucket, data_file.key), data_file.size, uri)
    except ClientError as err:
        aws.raise_as(err, PublishFailed, "s3:GetObject (the Parquet footer)", uri)
    except ParquetFooterError as err:
        raise PublishFailed(f"{err}: no manifest written") from err


def read_footers(s3: Any, bucket: str, files: list[DataFile]) -> dict[str, Footer]:
    """The footer of every file, by key, FOOTER_READERS at a time."""
    if not files:
        return {}
    with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
        # each worker runs in the caller's context (logging and tracing context go with it)
        futures = [
            pool.submit(contextvars.copy_context().run, _footer, s3, bucket, f) for f in files
        ]
        return {f.key: future.result() for f, future in zip(files, futures, strict=True)}


def manifest_of(event: dict[str, Any], bucket: str) -> dict[str, Any]:
    """The manifest of this run's export, read from what RDS wrote in its folder."""
    config, export, source = event["config"], event["export"], event["source"]
    prefix = str(config["s3_prefix"]).strip("/")
    task_id = str(export["export_task_id"])
    s3 = aws.client("s3")
    folder = s3layout.folder_prefix(prefix, task_id)
    listing = _list_folder(s3, bucket, folder)
    keys = [key for key, _ in listing]
    info_key = s3layout.export_info_key(prefix, task_id)
    if info_key not in keys:
        raise PublishFailed(f"s3://{bucket}/{info_key} is missing: no manifest written")
    info = _read_json(s3, bucket, info_key)
    tables: list[dict[str, Any]] = []
    for key in sorted(
        k for k in keys if k.startswith(s3layout.tables_info_prefix(prefix, task_id))
    ):
        document = _read_json(s3, bucket, key)
        tables += document.get("perTableStatus", []) if isinstance(document, dict) else []
    try:
        footers = read_footers(
            s3, bucket, footers_to_read(bucket, task_id, prefix, tables, listing)
        )
        return build_manifest(
            bucket=bucket,
            s3_prefix=prefix,
            export_task_id=task_id,
            export_info=info if isinstance(info, dict) else {},
            tables_info=tables,
            listing=listing,
            footers=footers,
            database={"kind": config.get("database_kind"), "id": config.get("database_id")},
            snapshot={
                "id": source.get("snapshot_id"),
                "arn": source.get("snapshot_arn"),
                "time": info.get("snapshotTime") if isinstance(info, dict) else None,
            },
            execution=str((event.get("plan") or {}).get("execution_id", "")),
            written_at=clock.isoformat(clock.now()),
        )
    except (ExportMismatch, ManifestTooLarge, ValueError) as err:
        raise PublishFailed(
            f"the manifest of s3://{bucket}/{folder} cannot be built: {err}"
        ) from err


def _written(bucket: str, key: str, body: bytes) -> bool:
    """Whether `key` holds `body` now: listed first (a missing key answers 403 to a GET without
    s3:ListBucket), then read."""
    if not aws.object_exists(bucket, key, PublishFailed, "the manifest, read back"):
        return False
    try:
        return bool(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == body)
    except ClientError as err:
        aws.raise_as(err, PublishFailed, "s3:GetObject", f"s3://{bucket}/{key}")


def _write(bucket: str, key: str, body: bytes) -> str | None:
    """PUT the manifest; a warning when the PUT's answer was lost but the manifest is ours."""
    uri = f"s3://{bucket}/{key}"
    try:
        aws.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=settings.export_kms_key_arn(),
        )
    except (ClientError, BotoCoreError) as err:
        if isinstance(err, ClientError) and aws.error_code(err) in aws.THROTTLING_CODES:
            aws.raise_as(err, PublishFailed, "s3:PutObject", uri)
        if _written(bucket, key, body):  # the PUT went through; its answer did not come back
            return f"s3:PutObject of {uri} answered {err}, but {uri} holds this run's manifest"
        if isinstance(err, ClientError):
            aws.raise_as(err, PublishFailed, "s3:PutObject", uri)
        raise PublishFailed(f"s3:PutObject on {uri} failed: {err}; it was not written") from err
    return None


def _refusal(entry: dict[str, Any]) -> tuple[str | None, str]:
    """(the event's id, or None; what refused it)."""
    try:
        response = aws.client("events").put_events(Entries=[entry])
    except ClientError as err:
        return None, aws.describe(err)
    (result,) = response.get("Entries") or [{}]
    if response.get("FailedEntryCount") or not result.get("EventId"):
        return None, f"{result.get('ErrorCode', 'unknown')} {result.get('ErrorMessage', '')}"
    return str(result["EventId"]), ""


def _send(detail: dict[str, Any]) -> tuple[str, str | None]:
    """(the event's id, ""), or ("", a warning) when PutEvents refused it every time."""
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": EVENT_DETAIL_TYPE,
        "Detail": json.dumps(detail, sort_keys=True),
        "EventBusName": EVENT_BUS,
    }
    refusals: list[str] = []
    for attempt in range(EVENT_ATTEMPTS):
        if attempt:
            clock.sleep(EVENT_BACKOFF_SECONDS * 2 ** (attempt - 1))
        event_id, refusal = _refusal(entry)
        if event_id is not None:
            return event_id, None
        refusals.append(refusal.strip())
    last = refusals[-1]
    if last.split(":")[0].split(" ")[0] in aws.THROTTLING_CODES:
        raise Throttled(
            f"events:PutEvents on event bus {EVENT_BUS} throttled {EVENT_ATTEMPTS} times: {last}"
        )
    return "", (
        f"events:PutEvents on event bus {EVENT_BUS} refused the ready event "
        f"{EVENT_ATTEMPTS} times ({last}): no event this night; the manifest "
        f"{detail['manifest']} is written and names export {detail['export_task_id']}"
    )


def _minutes_since_start(event: dict[str, Any]) -> int:
    """Whole minutes from the run's start (its plan's started_at, the execution's StartTime) to
    now, when its manifest is written: the success message says it (0 without a plan)."""
    started = (event.get("plan") or {}).get("started_at")
    return clock.seconds_between(started, clock.now()) // 60 if isinstance(started, str) else 0


def publish(event: dict[str, Any]) -> dict[str, Any]:
    if event["config"].get("dry_run"):  # never reached from the state machine; a guard
        raise PublishFailed("a dry run publishes nothing")
    bucket = settings.export_bucket()
    manifest = manifest_of(event, bucket)
    body = dumps(manifest)
    key = manifest_key(manifest["s3_prefix"])
    uri = f"s3://{bucket}/{key}"
    warnings = [w for w in [_write(bucket, key, body)] if w]
    detail = {
        "pipeline": event["config"].get("pipeline_name"),
        "manifest": uri,
        "export_task_id": manifest["export_task_id"],
        "s3_uri": manifest["s3_uri"],
        "database": manifest["database"],
        "snapshot_id": manifest["snapshot"]["id"],
        "execution": manifest["execution"],
        "tables": len(manifest["tables"]),
    }
    event_id, refused = _send(detail)
    warnings += [refused] if refused else []
    logger.info("manifest published", extra={"manifest": uri, "event_id": event_id})
    for warning in warnings:
        logger.warning(warning)
    return {
        "uri": uri,
        "tables": len(manifest["tables"]),
        "rows": sum(int(table["row_count"]) for table in manifest["tables"]),
        "minutes": _minutes_since_start(event),
        "bytes": len(body),
        "event_id": event_id,  # "" when PutEvents refused it (see warnings)
        "warnings": warnings,
    }


# `$.manifest`: where the manifest is, its size, and the id of the event that announced it
RESULT_FIELDS = (
    "uri",
    "tables",
    "rows",  # the rows of every table, read from the Parquet footers
    "minutes",
    "bytes",
    "event_id",
    "warnings",  # a publish that half-succeeded: the manifest is written, and what was not
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(publish(event), RESULT_FIELDS)
