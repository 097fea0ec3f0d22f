"""UpdateCatalog: point the Glue tables at the export the manifest now names (Athena).

Runs after PublishManifest and before PurgePreviousExport, on every successful, non-dry run.
Without ``-c glue_database`` (no GLUE_DATABASE in its environment) it answers
``not-configured`` at once: one short Lambda call rather than a setting carried through every
run's input (docs/decisions.md). With it, it:

1. reads ``<s3_prefix>/_manifest.json`` and checks that it names this run's export;
2. lists the database's tables (GetTables) and creates or updates one table per COMPLETE table
   of the manifest (:func:`rds_s3_export.catalog.plan`), its location the table's folder in the
   new export, its columns from the manifest; a table of that name that is not this
   pipeline's (no marker parameters, or another prefix's) is left alone, named in a warning;
3. deletes this pipeline's tables, for this prefix, whose export table is gone.

A failure is a warning naming its cause, never a failed run: the export and the manifest are
published. But then some table may still point at the previous export's folders, so the answer
says ``previous_export_may_go: false`` and the state machine keeps the previous export this
run (no PurgePreviousExport). The next run repairs the catalog; its purge keeps every folder a
table of the catalog still points at (purge_prefix, ``catalog_folders``) until the catalog has
moved on, so a query never meets a deleted location. Throttling is ``Throttled`` (the state
machine retries it; spent retries are a warning like any other failure).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rds_s3_export import aws, catalog, clock, settings
from rds_s3_export.errors import Throttled
from rds_s3_export.log import correlated, logger
from rds_s3_export.manifest import manifest_key
from rds_s3_export.steps import shaped

NOT_CONFIGURED = "not-configured"
UPDATED = "updated"
FAILED = "failed"


class CatalogFailure(Exception):
    """One call refused: the message names the call, the table and the error."""


def _call(what: str, call: Any, **params: Any) -> Any:
    try:
        return call(**params)
    except ClientError as err:
        if aws.error_code(err) in aws.THROTTLING_CODES:
            raise Throttled(f"{what} throttled: {aws.describe(err)}") from err
        raise CatalogFailure(f"{what} failed: {aws.describe(err)}") from err
    except BotoCoreError as err:
        raise CatalogFailure(f"{what} failed: {err}") from err


def _manifest(bucket: str, prefix: str, task_id: str) -> dict[str, Any]:
    key = manifest_key(prefix)
    body = _call(
        f"s3:GetObject of s3://{bucket}/{key}", aws.client("s3").get_object, Bucket=bucket, Key=key
    )["Body"].read()
    try:
        manifest = json.loads(body)
    except ValueError as err:
        raise CatalogFailure(f"s3://{bucket}/{key} is not JSON") from err
    if not isinstance(manifest, dict) or manifest.get("export_task_id") != task_id:
        named = manifest.get("export_task_id") if isinstance(manifest, dict) else None
        raise CatalogFailure(f"s3://{bucket}/{key} names export {named}, not this run's {task_id}")
    return manifest


def _tables(database: str) -> dict[str, dict[str, Any]]:
    tables = _call(f"glue:GetTables on {database}", aws.glue_tables, database=database)
    return {table["Name"]: table for table in tables}


def update(event: dict[str, Any]) -> dict[str, Any]:
    started = clock.isoformat(clock.now())
    database = settings.glue_database()
    result: dict[str, Any] = {
        "status": NOT_CONFIGURED,
        "database": database,
        "created": [],
        "updated": [],
        "deleted": [],
        "left_out": [],
        "warnings": [],
        "previous_export_may_go": True,
    }
    if not database:
        result["elapsed_seconds"] = 0
        return result
    config, export = event["config"], event["export"]
    prefix = str(config["s3_prefix"]).strip("/")
    pipeline = settings.catalog_owner() or str(config.get("pipeline_name") or "")
    bucket = settings.export_bucket()
    glue = aws.client("glue")
    try:
        manifest = _manifest(bucket, prefix, str(export["export_task_id"]))
        wanted = catalog.plan(manifest, pipeline)
        existing = _tables(database)
        result["left_out"] = list(wanted.left_out)
        for name, table in wanted.tables.items():
            current = existing.get(name)
            if current is None:
                _call(
                    f"glue:CreateTable {database}.{name}",
                    glue.create_table,
                    DatabaseName=database,
                    TableInput=table,
                )
                result["created"].append(name)
            elif catalog.owned(current, pipeline, prefix):
                # SkipArchive: no archived version per night. Glue keeps table versions
                # against a quota per table and per account
                # (https://docs.aws.amazon.com/general/latest/gr/glue.html), which a nightly
                # update of every table would use up; the export's own history is the record
                # (https://docs.aws.amazon.com/glue/latest/webapi/API_UpdateTable.html).
                _call(
                    f"glue:UpdateTable {database}.{name}",
                    glue.update_table,
                    DatabaseName=database,
                    TableInput=table,
                    SkipArchive=True,
                )
                result["updated"].append(name)
            else:
                result["left_out"].append(
                    f"{table['Parameters'][catalog.TARGET_KEY]}: {database}.{name} exists and is "
                    "not this pipeline's (for this prefix): left alone"
                )
        for name, current in sorted(existing.items()):
            if name not in wanted.tables and catalog.owned(current, pipeline, prefix):
                _call(
                    f"glue:DeleteTable {database}.{name}",
                    glue.delete_table,
                    DatabaseName=database,
                    Name=name,
                )
                result["deleted"].append(name)
        result["status"] = UPDATED
    except CatalogFailure as err:
        result["status"] = FAILED
        result["previous_export_may_go"] = False
        result["warnings"].append(
            f"the Glue catalog {database} was not brought up to date: {err}; the previous "
            "export is kept this run, and the next run repairs the catalog"
        )
    if result["left_out"]:
        result["warnings"].append(
            f"{len(result['left_out'])} table(s) not in the Glue catalog {database}: "
            + "; ".join(result["left_out"][:5])
        )
    result["elapsed_seconds"] = clock.seconds_between(started, clock.now())
    logger.info("catalog", extra={"catalog": result})
    for warning in result["warnings"]:
        logger.warning(warning)
    return result


# `$.catalog`: what the catalog now holds, and whether the previous export may be deleted
RESULT_FIELDS = (
    "status",  # "updated", "failed" (see warnings) or "not-configured"
    "database",
    "created",
    "updated",
    "deleted",
    "left_out",
    "warnings",
    # false when some table may still point at the previous export: it is kept this run
    "previous_export_may_go",
    "elapsed_seconds",
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(update(event), RESULT_FIELDS)
