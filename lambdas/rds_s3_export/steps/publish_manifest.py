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
manifest as it was. Any failure here is ``PublishFailed`` (throttling is ``Throttled`` and is
retried): the export is safe and complete, but downstream was not told, and yesterday's export,
which the manifest still names, stays. A retry writes the
manifest again and may send the event twice; a consumer should use ``export_task_id`` to
notice an export it has already loaded.
"""

from __future__ import annotations

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, s3layout, settings
from rds_s3_export.errors import PublishFailed
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


def _write(bucket: str, key: str, body: bytes) -> None:
    try:
        aws.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=settings.export_kms_key_arn(),
        )
    except ClientError as err:
        aws.raise_as(err, PublishFailed, "s3:PutObject", f"s3://{bucket}/{key}")


def _send(detail: dict[str, Any]) -> str:
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": EVENT_DETAIL_TYPE,
        "Detail": json.dumps(detail, sort_keys=True),
        "EventBusName": EVENT_BUS,
    }
    try:
        response = aws.client("events").put_events(Entries=[entry])
    except ClientError as err:
        aws.raise_as(err, PublishFailed, "events:PutEvents", f"event bus {EVENT_BUS}")
    (result,) = response.get("Entries") or [{}]
    if response.get("FailedEntryCount") or not result.get("EventId"):
        code, message = result.get("ErrorCode", "unknown"), result.get("ErrorMessage", "")
        raise PublishFailed(
            f"events:PutEvents on event bus {EVENT_BUS} refused the ready event: {code} "
            f"{message} (the manifest {detail['manifest']} is written)"
        )
    return str(result["EventId"])


def publish(event: dict[str, Any]) -> dict[str, Any]:
    if event["config"].get("dry_run"):  # never reached from the state machine; a guard
        raise PublishFailed("a dry run publishes nothing")
    bucket = settings.export_bucket()
    manifest = manifest_of(event, bucket)
    body = dumps(manifest)
    key = manifest_key(manifest["s3_prefix"])
    uri = f"s3://{bucket}/{key}"
    _write(bucket, key, body)
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
    event_id = _send(detail)
    logger.info("manifest published", extra={"manifest": uri, "event_id": event_id})
    return {"uri": uri, "tables": len(manifest["tables"]), "bytes": len(body), "event_id": event_id}


# `$.manifest`: where the manifest is, its size, and the id of the event that announced it
RESULT_FIELDS = (
    "uri",
    "tables",
    "bytes",
    "event_id",
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(publish(event), RESULT_FIELDS)
