"""Render the Snowflake setup script for an export prefix, from one of its manifests.

The script is a list of named statements (:func:`statements`), printed in dependency order:
the session's time zone, the database and schema, the two file formats, the storage
integration and the stage (with its directory table), the control table, the load procedure,
the stream on the stage's directory table and the task it triggers, an optional failure alert,
and a first ``CALL`` of the procedure. Everything the user can change on a re-run (formats,
stage, procedure, stream, task, alert) is ``CREATE OR REPLACE``; only objects that hold data
or a trust relationship (database, schema, control table, storage integration) are
``IF NOT EXISTS``.

The load itself is not in the script: it is the Python procedure
(snowflake_sql/procedure.py), which reads ``_manifest.json`` from the stage each time it runs.
The manifest given to the generator only supplies the bucket, the prefix and the execution's
names; no table list is frozen into the script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from snowflake_sql.procedure import TASK_ID_PATTERN, fold, literal, quote

CONTROL_TABLE: Final = "_RDS_EXPORT_LOADS"
EVENTS_TABLE: Final = "_RDS_MANIFEST_EVENTS"
STAGING_PREFIX: Final = "_RDS_STAGE_"
RUNTIME_VERSION: Final = "3.11"
"""A Python version Snowflake runs procedures with
(https://docs.snowflake.com/en/developer-guide/stored-procedure/python/procedure-python-overview)."""

CONTROL_COLUMNS: Final = (
    ("EXPORT_TASK_ID", "VARCHAR NOT NULL"),
    ("LOADED_AT", "TIMESTAMP_TZ"),  # the first script's column; kept for its rows
    ("TABLES_LOADED", "NUMBER(10,0)"),
    ("TABLES_KEPT", "NUMBER(10,0)"),
    ("SNAPSHOT_ID", "VARCHAR"),
    ("MANIFEST_WRITTEN_AT", "VARCHAR"),
    ("STATUS", "VARCHAR"),
    ("RECORDED_AT", "TIMESTAMP_TZ"),
    ("ROWS_LOADED", "NUMBER(38,0)"),
    ("TABLES", "VARCHAR"),
    ("VANISHED", "VARCHAR"),
    ("REASON", "VARCHAR"),
)
FIRST_CONTROL_COLUMNS: Final = 6
"""The control table of the first version of this script had the first six columns; the
others are added with ``ADD COLUMN IF NOT EXISTS`` so that its rows stay."""


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    comment: str = ""


@dataclass(frozen=True)
class Names:
    """Every object the script creates, fully qualified and quoted."""

    database: str
    schema: str
    integration: str
    stage: str
    file_format: str
    json_format: str
    control: str
    events: str
    procedure: str
    stream: str
    task: str
    alert: str
    warehouse: str

    def settings(self) -> dict[str, str]:
        """What the procedure's body needs (procedure.SETTINGS)."""
        return {
            "database_name": self.database,
            "schema_name": self.schema,
            "stage": self.stage,
            "file_format": self.file_format,
            "json_format": self.json_format,
            "control": self.control,
            "events": self.events,
            "stream": self.stream,
            "staging_prefix": STAGING_PREFIX,
        }


def names(
    *,
    integration: str,
    database: str,
    schema: str,
    stage: str,
    file_format: str,
    task_warehouse: str,
    pipeline: str,
) -> Names:
    def q(name: str) -> str:
        return f"{quote(database)}.{quote(schema)}.{quote(name)}"

    base = fold(pipeline.replace("-", "_"))
    return Names(
        database=database,
        schema=schema,
        integration=quote(integration),
        stage=q(stage),
        file_format=q(file_format),
        json_format=q(f"{file_format}_MANIFEST_JSON"),
        control=q(CONTROL_TABLE),
        events=q(EVENTS_TABLE),
        procedure=q(f"{base}_LOAD"),
        stream=q(f"{base}_MANIFESTS"),
        task=q(f"{base}_LOAD_ON_MANIFEST"),
        alert=q(f"{base}_LOAD_FAILED"),
        warehouse=quote(task_warehouse),
    )


def stage_url(manifest: dict[str, Any]) -> str:
    """``s3://<bucket>/<s3_prefix>/``: the prefix, never one export folder."""
    prefix = str(manifest["s3_prefix"]).strip("/")
    bucket = str(manifest["bucket"])
    return f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"


PACKAGE: Final = Path(__file__).resolve().parent
_IMPORT_TYPES: Final = "from snowflake_sql.types import SnowflakeType, base_type, snowflake_type\n"
_SETTINGS_LINE: Final = "SETTINGS: dict[str, str] = {}\n"
_FUTURE: Final = "from __future__ import annotations\n"


def procedure_body(settings: dict[str, str]) -> str:
    """The Python source of the procedure: procedure.py with types.py in place of its import
    and SETTINGS filled in. Raises if either marker line moved (a test checks it runs)."""
    types_source = (PACKAGE / "types.py").read_text().replace(_FUTURE, "")
    source = (PACKAGE / "procedure.py").read_text()
    for marker in (_IMPORT_TYPES, _SETTINGS_LINE, _FUTURE):
        if source.count(marker) != 1:
            raise RuntimeError(f"procedure.py must hold the line {marker.strip()!r} once")
    source = source.replace(_FUTURE, "")
    source = source.replace(_IMPORT_TYPES, "# --- snowflake_sql/types.py ---\n" + types_source)
    source = source.replace(_SETTINGS_LINE, f"SETTINGS: dict[str, str] = {settings!r}\n")
    body = _FUTURE + source
    if "$$" in body:
        raise RuntimeError("the procedure body may not contain $$ (it is the body's delimiter)")
    return body


def parquet_format(n: Names) -> str:
    # Each option pinned, so that a change of Snowflake's defaults cannot change what loads
    # (https://docs.snowflake.com/en/sql-reference/sql/create-file-format, TYPE = PARQUET):
    # USE_LOGICAL_TYPE: read DECIMAL/DATE/TIMESTAMP/TIME annotations as those types;
    # BINARY_AS_TEXT = FALSE: a column with no logical type is binary, not UTF-8 text;
    # USE_VECTORIZED_SCANNER: the scanner Snowflake announced as the future default, chosen
    # now rather than switched under us; it honours logical types
    # (https://docs.snowflake.com/en/user-guide/data-load-considerations-load#vectorized-scanner);
    # NULL_IF = (): no string turns into NULL; REPLACE_INVALID_CHARACTERS = FALSE: bytes are
    # never rewritten (invalid UTF-8 in a STRING column fails the load instead).
    return (
        f"CREATE OR REPLACE FILE FORMAT {n.file_format}\n"
        "  TYPE = PARQUET\n"
        "  USE_LOGICAL_TYPE = TRUE\n"
        "  BINARY_AS_TEXT = FALSE\n"
        "  USE_VECTORIZED_SCANNER = TRUE\n"
        "  REPLACE_INVALID_CHARACTERS = FALSE\n"
        "  NULL_IF = ()"
    )


def statements(
    manifest: dict[str, Any],
    *,
    integration: str,
    role_arn: str,
    external_id: str,
    database: str,
    schema: str,
    stage: str,
    file_format: str,
    task_warehouse: str,
    schedule: str | None = None,
    pipeline: str = "rds-s3-export",
    error_integration: str | None = None,
    notify_email: str | None = None,
) -> list[Statement]:
    """The script, statement by statement, in the order it must run."""
    task_id = str(manifest.get("export_task_id") or "")
    if not re.fullmatch(TASK_ID_PATTERN, task_id):
        raise ValueError(f"export_task_id {task_id!r} is not an RDS export task identifier")
    n = names(
        integration=integration,
        database=database,
        schema=schema,
        stage=stage,
        file_format=file_format,
        task_warehouse=task_warehouse,
        pipeline=pipeline,
    )
    url = stage_url(manifest)
    where = f"{quote(database)}.{quote(schema)}"
    out = [
        Statement(
            "session time zone",
            "ALTER SESSION SET TIMEZONE = 'UTC'",
            "no timestamp moves by the account's default zone (the procedure sets it too)",
        ),
        Statement("database", f"CREATE DATABASE IF NOT EXISTS {quote(database)}"),
        Statement("schema", f"CREATE SCHEMA IF NOT EXISTS {where}"),
        Statement("use schema", f"USE SCHEMA {where}"),
        Statement("parquet format", parquet_format(n)),
        Statement(
            "manifest format",
            f"CREATE OR REPLACE FILE FORMAT {n.json_format}\n  TYPE = JSON",
        ),
        Statement(
            "storage integration",
            f"CREATE STORAGE INTEGRATION IF NOT EXISTS {n.integration}\n"
            "  TYPE = EXTERNAL_STAGE\n"
            "  STORAGE_PROVIDER = 'S3'\n"
            "  ENABLED = TRUE\n"
            f"  STORAGE_AWS_ROLE_ARN = {literal(role_arn)}\n"
            f"  STORAGE_AWS_EXTERNAL_ID = {literal(external_id)}\n"
            f"  STORAGE_ALLOWED_LOCATIONS = ({literal(url)})",
            "IF NOT EXISTS: replacing it would change the trust the IAM role was made for",
        ),
        Statement(
            "stage",
            # DIRECTORY AUTO_REFRESH: the directory table follows S3 event notifications sent
            # to the SQS queue DESC STAGE shows (directory_notification_channel)
            # https://docs.snowflake.com/en/user-guide/data-load-dirtables-auto-s3
            f"CREATE OR REPLACE STAGE {n.stage}\n"
            f"  URL = {literal(url)}\n"
            f"  STORAGE_INTEGRATION = {n.integration}\n"
            f"  FILE_FORMAT = {n.file_format}\n"
            "  DIRECTORY = (ENABLE = TRUE AUTO_REFRESH = TRUE)",
            "DESC STAGE shows directory_notification_channel: give it to the stack as "
            "snowflake_stage_sqs_arn (docs/snowflake.md)",
        ),
        Statement(
            "control table",
            f"CREATE TABLE IF NOT EXISTS {n.control} (\n"
            + ",\n".join(f"  {c} {t}" for c, t in CONTROL_COLUMNS[:FIRST_CONTROL_COLUMNS])
            + "\n)",
        ),
    ]
    for column, kind in CONTROL_COLUMNS[FIRST_CONTROL_COLUMNS:]:
        out.append(
            Statement(
                f"control column {column}",
                f"ALTER TABLE {n.control} ADD COLUMN IF NOT EXISTS {column} {kind}",
            )
        )
    out += [
        Statement(
            "events table",
            f"CREATE TABLE IF NOT EXISTS {n.events} (\n"
            "  RELATIVE_PATH VARCHAR,\n  SEEN_AT TIMESTAMP_TZ\n)",
            "what the stream delivered; reading it is what advances the stream",
        ),
        Statement(
            "procedure",
            # EXECUTE AS CALLER: an owner's-rights procedure may not ALTER SESSION
            # https://docs.snowflake.com/en/developer-guide/stored-procedure/stored-procedures-rights
            f"CREATE OR REPLACE PROCEDURE {n.procedure}()\n"
            "  RETURNS VARCHAR\n"
            "  LANGUAGE PYTHON\n"
            f"  RUNTIME_VERSION = {literal(RUNTIME_VERSION)}\n"
            "  PACKAGES = ('snowflake-snowpark-python')\n"
            "  HANDLER = 'run'\n"
            "  EXECUTE AS CALLER\n"
            "AS\n$$\n" + procedure_body(n.settings()) + "$$",
        ),
        Statement(
            "stream",
            # a stream on the stage's directory table
            # https://docs.snowflake.com/en/user-guide/data-load-dirtables-pipeline
            f"CREATE OR REPLACE STREAM {n.stream} ON STAGE {n.stage}",
        ),
        _task(n, schedule, error_integration),
    ]
    if notify_email:
        out += _email_alert(n, notify_email, pipeline)
    out += [
        Statement("task resume", f"ALTER TASK {n.task} RESUME"),
        Statement(
            "first load",
            f"CALL {n.procedure}()",
            f"loads the export _manifest.json names now (export {task_id} when it was written)",
        ),
    ]
    return out


def _task(n: Names, schedule: str | None, error_integration: str | None) -> Statement:
    lines = [f"CREATE OR REPLACE TASK {n.task}", f"  WAREHOUSE = {n.warehouse}"]
    if schedule:
        lines.append(f"  SCHEDULE = {literal(schedule)}")
        comment = "fallback: runs at a fixed time and loads whatever manifest is there"
    else:
        comment = "triggered: runs when the manifest's notification reaches the stream"
    if error_integration:
        # https://docs.snowflake.com/en/user-guide/tasks-errors
        lines.append(f"  ERROR_INTEGRATION = {quote(error_integration)}")
    if not schedule:
        # a triggered task: WHEN SYSTEM$STREAM_HAS_DATA and no SCHEDULE
        # https://docs.snowflake.com/en/user-guide/tasks-triggered
        lines.append(f"  WHEN SYSTEM$STREAM_HAS_DATA({literal(n.stream)})")
    lines.append(f"  AS CALL {n.procedure}()")
    return Statement("task", "\n".join(lines), comment)


def _email_alert(n: Names, email: str, pipeline: str) -> list[Statement]:
    integration = quote(fold(f"{pipeline.replace('-', '_')}_email"))
    # email notifications and alerts:
    # https://docs.snowflake.com/en/user-guide/notifications/email-notifications
    # https://docs.snowflake.com/en/user-guide/alerts
    task_name = n.task.split(".")[-1].strip('"')
    return [
        Statement(
            "email integration",
            f"CREATE NOTIFICATION INTEGRATION IF NOT EXISTS {integration}\n"
            "  TYPE = EMAIL\n  ENABLED = TRUE\n"
            f"  ALLOWED_RECIPIENTS = ({literal(email)})",
        ),
        Statement(
            "alert",
            f"CREATE OR REPLACE ALERT {n.alert}\n"
            f"  WAREHOUSE = {n.warehouse}\n"
            "  SCHEDULE = '60 MINUTE'\n"
            "  IF (EXISTS (\n"
            "    SELECT 1 FROM TABLE(INFORMATION_SCHEMA.TASK_HISTORY(\n"
            "      SCHEDULED_TIME_RANGE_START =>\n"
            "        SNOWFLAKE.ALERT.LAST_SUCCESSFUL_SCHEDULED_TIME(),\n"
            f"      TASK_NAME => {literal(task_name)}))\n"
            "    WHERE STATE = 'FAILED'))\n"
            f"  THEN CALL SYSTEM$SEND_EMAIL({literal(integration.strip(chr(34)))}, "
            f"{literal(email)}, {literal(f'{pipeline}: the Snowflake load failed')}, "
            f"{literal('See TASK_HISTORY and ' + CONTROL_TABLE + ' (STATUS, REASON).')})",
        ),
        Statement("alert resume", f"ALTER ALERT {n.alert} RESUME"),
    ]


def render(manifest: dict[str, Any], **options: Any) -> str:
    """The whole script, one statement after another, each with a ``-- [name]`` line."""
    out = [
        f"-- Snowflake setup for the exports under {stage_url(manifest)} "
        "(generated by python -m snowflake_sql)",
        "-- Run top to bottom. Re-running it updates the formats, stage, procedure, stream,",
        "-- task and alert; it never drops a loaded table or the control table.",
    ]
    for statement in statements(manifest, **options):
        out += ["", f"-- [{statement.name}]"]
        if statement.comment:
            out.append(f"-- {statement.comment}")
        out.append(f"{statement.sql};")
    return "\n".join(out) + "\n"


def split_script(script: str) -> list[tuple[str, str]]:
    """(name, sql) of each statement of a rendered script, in printed order."""
    found: list[tuple[str, str]] = []
    name: str | None = None
    lines: list[str] = []
    inside_body = False
    for line in script.splitlines():
        match = None if inside_body else re.fullmatch(r"-- \[(.+)\]", line)
        if match:
            if name is not None:
                found.append((name, "\n".join(lines).strip()))
            name, lines = match.group(1), []
            continue
        if name is None:
            continue
        if line == "$$":
            inside_body = True
        elif inside_body and line == "$$;":
            inside_body = False
        if not lines and line.startswith("-- ") and not inside_body:
            continue  # the statement's comment
        lines.append(line)
    if name is not None:
        found.append((name, "\n".join(lines).strip()))
    return [(n, sql.removesuffix(";")) for n, sql in found]
