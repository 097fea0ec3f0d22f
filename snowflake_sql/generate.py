"""Render one Snowflake SQL script from an export manifest.

The script has named sections, in this order (see :data:`SECTIONS`):

``formats``   the Parquet file format the COPY uses and the JSON one the task reads the
              manifest with;
``access``    the storage integration (allowed location: the prefix only) and the stage;
``tables``    database, schema, the control table ``_RDS_EXPORT_LOADS`` and one table per
              exported table;
``schedule``  a stored procedure that loads whatever export ``@stage/_manifest.json`` names,
              only if its task id is not yet in the control table, and a task that calls it;
``load``      the load of *this* manifest's export, statement by statement.

``tables`` and ``load`` (and ``formats``) run as they are on fakesnow in the tests;
``access`` and ``schedule`` need a Snowflake account (an integration, Snowflake Scripting) and
are only parsed there.

Names
-----
A table ``<database>.<schema>.<table>`` of the export becomes ``<schema>_<table>`` in the
chosen Snowflake database and schema (for MySQL's ``<database>.<table>``: ``<table>``). Then,
for tables and columns alike: a name that is entirely lower case letters, digits, ``_`` and
``$`` (how PostgreSQL and MySQL spell an unquoted name) is upper-cased, so that Snowflake
users can write it unquoted (``PUBLIC_ORDERS``, ``CUSTOMER_ID``); any other name (mixed case,
spaces, dots) is kept exactly. Every identifier is double-quoted in the script with ``"``
doubled, so reserved words and odd characters survive. Two tables (or two columns of one
table) that end up with the same name are an error, raised before anything is rendered.

The load
--------
For each ``COMPLETE`` table: COPY exactly ``@stage/<export_task_id>/<table folder>/`` (with
``FILES`` naming the manifest's files when it lists at most 1,000 of them, Snowflake's limit
for ``FILES``) into a transient staging table, then, in one transaction, ``DELETE`` the target
and ``INSERT`` the staged rows. Re-running the load replaces again: rows never double. The
COPY uses ``FORCE = TRUE`` because the staging table is new each time and the point is to
read the files again. A ``SKIPPED`` or ``FAILED`` table is left untouched (yesterday's rows
stay) and a comment says so. Last, the task id goes into the control table (once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from snowflake_sql.types import SnowflakeType, snowflake_type

SECTIONS: Final = ("formats", "access", "tables", "schedule", "load")
EXECUTABLE: Final = ("formats", "tables", "load")
PARSE_ONLY: Final = ("access", "schedule")

CONTROL_TABLE: Final = "_RDS_EXPORT_LOADS"
STAGING_PREFIX: Final = "_RDS_STAGE_"
MAX_COPY_FILES: Final = 1000
"""Snowflake accepts at most 1,000 names in COPY's ``FILES``; above that the folder is read."""
TASK_ID_PATTERN: Final = "[A-Za-z][A-Za-z0-9-]{0,254}"
"""An RDS export task identifier; the procedure refuses a manifest whose id is not one."""

_UNQUOTED: Final = re.compile(r"[a-z_][a-z0-9_$]*")


def quote(name: str) -> str:
    """A Snowflake quoted identifier: ``"`` around, ``"`` inside doubled."""
    if not name:
        raise ValueError("an identifier cannot be empty")
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A Snowflake string literal: backslash and ``'`` escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def fold(name: str) -> str:
    """Upper-case a plain lower-case source name (see the module docstring); keep others."""
    return name.upper() if _UNQUOTED.fullmatch(name) else name


def table_name(target: str) -> str:
    """``shop.public.orders`` -> ``PUBLIC_ORDERS``; ``shop.Sales.Order Items`` ->
    ``Sales_Order Items``; MySQL ``shop.orders`` -> ``ORDERS``."""
    _, dot, rest = target.partition(".")
    if not dot or not rest:
        raise ValueError(f"table target {target!r} is not <database>.<schema>.<table>")
    schema, dot, table = rest.partition(".")
    return fold(f"{schema}_{table}" if dot else schema)


@dataclass(frozen=True)
class Column:
    name: str
    type: SnowflakeType


@dataclass(frozen=True)
class Table:
    target: str
    name: str
    status: str
    folder: str  # relative to the export folder, with a trailing "/"
    files: list[str] | None  # relative to ``folder``; None when the manifest omits them
    columns: list[Column]


def _relative_folder(manifest: Mapping[str, Any], table: Mapping[str, Any]) -> str:
    folder = str(table["folder"])
    export_folder = str(manifest["export_folder"])
    if not folder.startswith(export_folder) or not folder.endswith("/"):
        raise ValueError(f"table folder {folder!r} is not inside {export_folder!r}")
    return folder[len(export_folder) :]


def tables_of(manifest: Mapping[str, Any]) -> list[Table]:
    """The manifest's tables with their Snowflake names and types; raises on a name clash."""
    tables: list[Table] = []
    seen: dict[str, str] = {}
    for entry in manifest["tables"]:
        target = str(entry["target"])
        name = table_name(target)
        if name in seen:
            raise ValueError(f"tables {seen[name]!r} and {target!r} would both be {name!r}")
        seen[name] = target
        folder = _relative_folder(manifest, entry)
        files = None
        if "files" in entry:
            files = [str(f)[len(folder) :] for f in entry["files"] if str(f).startswith(folder)]
        columns: list[Column] = []
        names: set[str] = set()
        for column in entry.get("columns") or []:
            col_name = fold(str(column["name"]))
            if col_name in names:
                raise ValueError(f"{target}: two columns would both be {col_name!r}")
            names.add(col_name)
            columns.append(Column(col_name, snowflake_type(column)))
        tables.append(Table(target, name, str(entry["status"]), folder, files, columns))
    return tables


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
    procedure: str
    task: str
    warehouse: str

    def table(self, name: str) -> str:
        return f"{quote(self.database)}.{quote(self.schema)}.{quote(name)}"

    def staging(self, name: str) -> str:
        return self.table(f"{STAGING_PREFIX}{name}")


def _names(
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
        procedure=q(f"{base}_LOAD"),
        task=q(f"{base}_NIGHTLY"),
        warehouse=quote(task_warehouse),
    )


# --- sections ------------------------------------------------------------------------------


def _formats(n: Names) -> list[str]:
    return [
        f"CREATE FILE FORMAT IF NOT EXISTS {n.file_format} TYPE = PARQUET",
        f"CREATE FILE FORMAT IF NOT EXISTS {n.json_format} TYPE = JSON",
    ]


def _access(n: Names, manifest: Mapping[str, Any], role_arn: str, external_id: str) -> list[str]:
    url = stage_url(manifest)
    return [
        f"CREATE STORAGE INTEGRATION IF NOT EXISTS {n.integration}\n"
        "  TYPE = EXTERNAL_STAGE\n"
        "  STORAGE_PROVIDER = 'S3'\n"
        "  ENABLED = TRUE\n"
        f"  STORAGE_AWS_ROLE_ARN = {literal(role_arn)}\n"
        f"  STORAGE_AWS_EXTERNAL_ID = {literal(external_id)}\n"
        f"  STORAGE_ALLOWED_LOCATIONS = ({literal(url)})",
        f"CREATE STAGE IF NOT EXISTS {n.stage}\n"
        f"  URL = {literal(url)}\n"
        f"  STORAGE_INTEGRATION = {n.integration}\n"
        f"  FILE_FORMAT = {n.file_format}",
    ]


def stage_url(manifest: Mapping[str, Any]) -> str:
    """``s3://<bucket>/<s3_prefix>/``: the prefix, never one export folder."""
    prefix = str(manifest["s3_prefix"]).strip("/")
    bucket = str(manifest["bucket"])
    return f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"


def _column_list(columns: Sequence[Column], staging: bool) -> str:
    lines = []
    for i, c in enumerate(columns):
        line = f"  {quote(c.name)} {c.type.staging_sql if staging else c.type.sql}"
        if i < len(columns) - 1:
            line += ","
        if not staging and c.type.comment:
            line += f"  -- {c.type.comment}"
        lines.append(line)
    return "\n".join(lines)


def _create_table(name: str, columns: Sequence[Column], *, staging: bool) -> str:
    verb = "CREATE OR REPLACE TRANSIENT TABLE" if staging else "CREATE TABLE IF NOT EXISTS"
    # a comment after the last column must not swallow the ")": put it on its own line
    return f"{verb} {name} (\n{_column_list(columns, staging)}\n)"


def _tables(n: Names, tables: Sequence[Table]) -> list[str]:
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {quote(n.database)}",
        f"CREATE SCHEMA IF NOT EXISTS {quote(n.database)}.{quote(n.schema)}",
        f"CREATE TABLE IF NOT EXISTS {n.control} (\n"
        "  EXPORT_TASK_ID VARCHAR NOT NULL,\n"
        "  LOADED_AT TIMESTAMP_TZ NOT NULL,\n"
        "  TABLES_LOADED NUMBER(10,0),\n"
        "  TABLES_KEPT NUMBER(10,0),\n"
        "  SNAPSHOT_ID VARCHAR,\n"
        "  MANIFEST_WRITTEN_AT VARCHAR\n"
        ")",
    ]
    for table in tables:
        if not table.columns:
            statements.append(
                f"-- {table.target}: the export lists no columns for it, so no table is created"
            )
            continue
        statements.append(_create_table(n.table(table.name), table.columns, staging=False))
    return statements


def _copy(n: Names, table: Table, task_location: str, files: list[str] | None) -> str:
    """COPY of one table's folder; ``task_location`` is ``<task_id>`` or a placeholder."""
    location = f"@{n.stage}/{task_location}/{table.folder}"
    text = f"COPY INTO {n.staging(table.name)}\n  FROM {literal(location)}\n"
    if files is not None and 0 < len(files) <= MAX_COPY_FILES:
        text += "  FILES = (" + ", ".join(literal(f) for f in files) + ")\n"
    text += (
        f"  FILE_FORMAT = (FORMAT_NAME = {literal(n.file_format)})\n"
        "  MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE\n"
        "  FORCE = TRUE"
    )
    return text


def _replace(n: Names, table: Table) -> list[str]:
    """The atomic replace: one transaction holds the DELETE and the INSERT."""
    target_cols = ", ".join(quote(c.name) for c in table.columns)
    select = ", ".join(c.type.convert.format(quote(c.name)) for c in table.columns)
    return [
        "BEGIN TRANSACTION",
        f"DELETE FROM {n.table(table.name)}",
        f"INSERT INTO {n.table(table.name)} ({target_cols})\n"
        f"  SELECT {select} FROM {n.staging(table.name)}",
        "COMMIT",
        f"DROP TABLE IF EXISTS {n.staging(table.name)}",
    ]


def _load(n: Names, manifest: Mapping[str, Any], tables: Sequence[Table]) -> list[str]:
    task_id = str(manifest["export_task_id"])
    statements: list[str] = []
    loaded = kept = 0
    for table in tables:
        if table.status != "COMPLETE" or not table.columns:
            statements.append(
                f"-- {table.target}: {table.status} in export {task_id}: left as it is "
                "(the rows of the last load stay)"
            )
            kept += 1
            continue
        statements.append(f"-- {table.target}: {len(table.files or [])} file(s)")
        statements.append(_create_table(n.staging(table.name), table.columns, staging=True))
        statements.append(_copy(n, table, task_id, table.files))
        statements.extend(_replace(n, table))
        loaded += 1
    snapshot = manifest.get("snapshot") or {}
    statements.append(
        f"INSERT INTO {n.control} (EXPORT_TASK_ID, LOADED_AT, TABLES_LOADED, TABLES_KEPT, "
        "SNAPSHOT_ID, MANIFEST_WRITTEN_AT)\n"
        f"  SELECT {literal(task_id)}, CURRENT_TIMESTAMP(), {loaded}, {kept}, "
        f"{_maybe(snapshot.get('id'))}, {_maybe(manifest.get('written_at'))}\n"
        f"  WHERE NOT EXISTS (SELECT 1 FROM {n.control} WHERE EXPORT_TASK_ID = {literal(task_id)})"
    )
    return statements


def _maybe(value: Any) -> str:
    return "NULL" if value is None else literal(str(value))


_TASK_PLACEHOLDER: Final = "\x00TASK\x00"


def _procedure(n: Names, tables: Sequence[Table]) -> str:
    """Snowflake Scripting: read the manifest, load it if its task id is new."""
    body = [
        "DECLARE",
        "  manifest VARIANT;",
        "  manifest_tables VARIANT;",
        "  task_id VARCHAR;",
        "  snapshot_id VARCHAR;",
        "  written_at VARCHAR;",
        "  seen NUMBER;",
        "  table_status VARCHAR;",
        "  copy_sql VARCHAR;",
        "  loaded NUMBER DEFAULT 0;",
        "  kept NUMBER DEFAULT 0;",
        "BEGIN",
        f"  SELECT $1 INTO :manifest FROM @{n.stage}/_manifest.json "
        f"(FILE_FORMAT => {literal(n.json_format)});",
        "  task_id := manifest:export_task_id::VARCHAR;",
        "  manifest_tables := manifest:tables;",
        "  snapshot_id := manifest:snapshot:id::VARCHAR;",
        "  written_at := manifest:written_at::VARCHAR;",
        f"  IF (task_id IS NULL OR NOT REGEXP_LIKE(task_id, {literal(TASK_ID_PATTERN)})) THEN",
        "    RETURN 'manifest has no usable export_task_id: nothing loaded';",
        "  END IF;",
        f"  SELECT COUNT(*) INTO :seen FROM {n.control} WHERE EXPORT_TASK_ID = :task_id;",
        "  IF (seen > 0) THEN",
        "    RETURN 'export ' || task_id || ' already loaded';",
        "  END IF;",
    ]
    for table in tables:
        if not table.columns:
            continue
        copy = _copy(n, table, _TASK_PLACEHOLDER, None)
        before, after = copy.split(_TASK_PLACEHOLDER)
        body += [
            f"  -- {table.target}",
            "  SELECT MAX(t.value:status::VARCHAR) INTO :table_status",
            "    FROM TABLE(FLATTEN(INPUT => :manifest_tables)) t",
            f"    WHERE t.value:target::VARCHAR = {literal(table.target)};",
            "  IF (table_status = 'COMPLETE') THEN",
            *_indent(_create_table(n.staging(table.name), table.columns, staging=True) + ";"),
            f"    copy_sql := {literal(before)} || task_id || {literal(after)};",
            "    EXECUTE IMMEDIATE :copy_sql;",
            *[line for s in _replace(n, table) for line in _indent(s + ";")],
            "    loaded := loaded + 1;",
            "  ELSE",
            "    kept := kept + 1;  -- SKIPPED, FAILED or absent: yesterday's rows stay",
            "  END IF;",
        ]
    body += [
        f"  INSERT INTO {n.control} (EXPORT_TASK_ID, LOADED_AT, TABLES_LOADED, TABLES_KEPT, "
        "SNAPSHOT_ID, MANIFEST_WRITTEN_AT)",
        "    SELECT :task_id, CURRENT_TIMESTAMP(), :loaded, :kept, :snapshot_id, :written_at;",
        "  RETURN 'export ' || task_id || ': ' || loaded || ' table(s) loaded, ' || kept || "
        "' kept';",
        "END;",
    ]
    return (
        f"CREATE OR REPLACE PROCEDURE {n.procedure}()\n"
        "  RETURNS VARCHAR\n"
        "  LANGUAGE SQL\n"
        "  EXECUTE AS OWNER\n"
        "AS\n$$\n" + "\n".join(body) + "\n$$"
    )


def _indent(statement: str) -> list[str]:
    return ["    " + line for line in statement.splitlines()]


def _schedule(n: Names, tables: Sequence[Table], schedule: str) -> list[str]:
    return [
        _procedure(n, tables),
        f"CREATE TASK IF NOT EXISTS {n.task}\n"
        f"  WAREHOUSE = {n.warehouse}\n"
        f"  SCHEDULE = {literal(schedule)}\n"
        f"  AS CALL {n.procedure}()",
        f"ALTER TASK {n.task} RESUME",
    ]


# --- the script ----------------------------------------------------------------------------


def render_sections(
    manifest: Mapping[str, Any],
    *,
    integration: str,
    role_arn: str,
    external_id: str,
    database: str,
    schema: str,
    stage: str,
    file_format: str,
    task_warehouse: str,
    schedule: str,
    pipeline: str = "rds-s3-export",
) -> dict[str, list[str]]:
    """The script's statements by section (no trailing ``;``); comments are ``--`` lines."""
    if manifest.get("manifest_version") != 1:
        raise ValueError(f"manifest_version {manifest.get('manifest_version')!r} is not 1")
    task_id = str(manifest["export_task_id"])
    if not re.fullmatch(TASK_ID_PATTERN, task_id):
        raise ValueError(f"export_task_id {task_id!r} is not an RDS export task identifier")
    names = _names(
        integration=integration,
        database=database,
        schema=schema,
        stage=stage,
        file_format=file_format,
        task_warehouse=task_warehouse,
        pipeline=pipeline,
    )
    tables = tables_of(manifest)
    return {
        "formats": _formats(names),
        "access": _access(names, manifest, role_arn, external_id),
        "tables": _tables(names, tables),
        "schedule": _schedule(names, tables, schedule),
        "load": _load(names, manifest, tables),
    }


_HEADINGS: Final = {
    "formats": "file formats",
    "access": "storage integration and stage (needs ACCOUNTADMIN or CREATE INTEGRATION)",
    "tables": "tables and the control table",
    "schedule": "nightly task: loads a new export when the manifest names one",
    "load": "load of export {task} now (re-runnable: it replaces, never appends)",
}


def section_marker(section: str) -> str:
    """The comment line that opens a section in the rendered script."""
    return f"-- ==== section: {section} ===="


def render(manifest: Mapping[str, Any], **options: Any) -> str:
    """The whole script; see :func:`render_sections` for the options."""
    sections = render_sections(manifest, **options)
    out = [
        f"-- Snowflake SQL for export {manifest['export_task_id']} of "
        f"{stage_url(manifest)} (generated by python -m snowflake_sql)",
        f"-- executable on fakesnow: {', '.join(EXECUTABLE)}; "
        f"Snowflake only: {', '.join(PARSE_ONLY)}",
    ]
    for section in SECTIONS:
        heading = _HEADINGS[section].format(task=manifest["export_task_id"])
        out += ["", section_marker(section), f"-- {heading}"]
        out += [s if s.startswith("--") else f"{s};" for s in sections[section]]
    return "\n".join(out) + "\n"


def split_script(script: str) -> dict[str, str]:
    """The text of each section of a rendered script, by name (for tests and tools)."""
    found: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in script.splitlines():
        match = re.fullmatch(r"-- ==== section: (\w+) ====", line)
        if match:
            if current is not None:
                found[current] = "\n".join(lines)
            current, lines = match.group(1), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines)
    return found
