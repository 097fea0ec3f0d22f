"""The nightly load: the body of the Snowflake Python stored procedure, as plain Python.

``snowflake_sql.generate`` embeds this module's source (and types.py's, in place of the
``from snowflake_sql.types import`` line) into ``CREATE OR REPLACE PROCEDURE ... LANGUAGE
PYTHON ... HANDLER = 'run'``, with ``SETTINGS`` filled in. The tests execute that generated
body on fakesnow through a small session shim (snowflake_sql/local.py), so the code tested is
the code Snowflake runs. It uses the standard library and ``session.sql(q).collect()`` only.

What one call does (docs/snowflake.md, "The nightly load"):

1. ``ALTER SESSION SET TIMEZONE = 'UTC'``; read ``@stage/_manifest.json``.
2. Stop if the manifest's export is already recorded LOADED in the control table.
3. Plan: every COMPLETE table of the manifest, typed from its columns by types.py; compare
   with the tables that exist: new table -> create, new column -> add, vanished column ->
   kept (NULL for the new rows), vanished table -> reported and left as it is, a type change
   that would lose values -> :class:`SchemaChangeRefused`, before anything is changed.
4. Stage each table: a transient staging table, COPY with explicit casts from exactly the
   files the manifest lists, then its row count checked against the manifest's.
5. DDL for new tables and columns (DDL commits implicitly, so it runs before the transaction).
6. One transaction: DELETE + INSERT for every table, and the control row; COMMIT. Readers see
   all of last night or all of tonight.

Any failure rolls back, records a FAILED control row with the reason and the export id, drops
the staging tables and raises :class:`LoadFailed`, so the task run fails (TASK_HISTORY). A
FAILED export is tried again by the next call; a LOADED one never.
"""

from __future__ import annotations

import json
import re
from typing import Any

from snowflake_sql.types import SnowflakeType, base_type, snowflake_type

SETTINGS: dict[str, str] = {}
"""Filled in by the generator: database, schema, stage, file_format, json_format, control
(fully qualified, quoted) and staging_prefix."""

MAX_COPY_FILES = 1000
"""COPY's FILES takes at most 1,000 names
(https://docs.snowflake.com/en/sql-reference/sql/copy-into-table, FILES)."""
TASK_ID_PATTERN = r"[A-Za-z][A-Za-z0-9-]{0,254}"
SAFE_PATH = re.compile(r"[A-Za-z0-9_.$/=+-]+")
_UNQUOTED = re.compile(r"[a-z_][a-z0-9_$]*")


class LoadFailed(Exception):
    """The load of one export failed; no table changed."""


class SchemaChangeRefused(LoadFailed):
    """A column's type changed in a way the load cannot follow without losing values."""


class RowCountMismatch(LoadFailed):
    """A staged table does not hold the rows the manifest counted in the Parquet footers."""


class ManifestInvalid(LoadFailed):
    """The manifest cannot be loaded (version, task id, folders)."""


def quote(name: str) -> str:
    """A Snowflake quoted identifier."""
    if not name:
        raise ValueError("an identifier cannot be empty")
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A Snowflake string literal: backslash and ``'`` escaped."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "''") + "'"


def fold(name: str) -> str:
    """Upper-case a plain lower-case source name so Snowflake users can write it unquoted;
    keep any other spelling exactly."""
    return name.upper() if _UNQUOTED.fullmatch(name) else name


def table_name(target: str) -> str:
    """``shop.public.orders`` -> ``PUBLIC_ORDERS``; MySQL ``shop.orders`` -> ``ORDERS``."""
    _, dot, rest = target.partition(".")
    if not dot or not rest:
        raise ManifestInvalid(f"table target {target!r} is not <database>.<schema>.<table>")
    schema, dot, table = rest.partition(".")
    return fold(f"{schema}_{table}" if dot else schema)


def field(name: str) -> str:
    """The Parquet column ``name`` of the staged row ``$1`` (a quoted path element: any
    character, ``"`` doubled)."""
    return "$1:" + quote(name)


class Plan:
    """What tonight's load does to one table."""

    def __init__(self, entry: dict[str, Any], export_folder: str, prefix: str) -> None:
        self.target = str(entry["target"])
        self.name = table_name(self.target)
        self.status = str(entry.get("status") or "")
        self.row_count = int(entry.get("row_count") or 0)
        self.columns: list[tuple[str, str, SnowflakeType, bool]] = []  # name, source, type, typed
        seen: set[str] = set()
        for column in entry.get("columns") or []:
            source = str(column["name"])
            name = fold(source)
            if name in seen:
                raise ManifestInvalid(f"{self.target}: two columns would both be {name!r}")
            seen.add(name)
            typed = bool(column.get("parquet"))
            self.columns.append((name, source, snowflake_type(column), typed))
        folder = str(entry.get("folder") or "")
        if self.status == "COMPLETE" and not (
            folder.startswith(export_folder) and folder.endswith("/")
        ):
            raise ManifestInvalid(f"{self.target}: folder {folder!r} is not in {export_folder!r}")
        self.folder = folder[len(prefix) :]  # relative to the stage (the s3 prefix)
        self.in_export = folder[len(export_folder) :]
        files = entry.get("files")
        self.files: list[str] | None = None
        if files is not None and not entry.get("files_omitted"):
            self.files = [self.in_export + str(f["path"]) for f in files]
        self.new = False
        self.added: list[str] = []
        self.widened: list[tuple[str, str]] = []
        self.kept: list[str] = []


def _one(session: Any, sql: str) -> Any:
    rows = session.sql(sql).collect()
    return rows[0][0] if rows else None


def _existing(session: Any, settings: dict[str, str]) -> dict[str, dict[str, tuple[Any, ...]]]:
    """{table: {column: (DATA_TYPE, precision, scale)}} of the target schema."""
    database = settings["database_name"]
    rows = session.sql(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE "
        f"FROM {quote(database)}.INFORMATION_SCHEMA.COLUMNS "
        f"WHERE TABLE_SCHEMA = {literal(settings['schema_name'])} "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION"
    ).collect()
    found: dict[str, dict[str, tuple[Any, ...]]] = {}
    for row in rows:
        found.setdefault(str(row[0]), {})[str(row[1])] = (str(row[2]), row[3], row[4])
    return found


def _compare(plan: Plan, have: dict[str, tuple[Any, ...]]) -> None:
    """Fill plan.added/widened/kept; raise SchemaChangeRefused on a lossy type change."""
    wanted = {name for name, _, _, _ in plan.columns}
    for name, _, kind, typed in plan.columns:
        if name not in have:
            plan.added.append(name)
            continue
        if not typed:  # no file tonight: no Parquet type to compare with
            continue
        family, precision, scale = have[name]
        if family == kind.family and kind.digits is None:
            continue
        digits = kind.digits
        if family == "NUMBER" and digits is not None and scale == digits[1]:
            if precision is not None and digits[0] > int(precision):
                # a wider NUMBER of the same scale keeps every value
                # (https://docs.snowflake.com/en/sql-reference/sql/alter-table-column)
                plan.widened.append((name, kind.sql))
            continue
        raise SchemaChangeRefused(
            f"{plan.target}: column {name} is {family}"
            f"{'' if precision is None else f'({precision},{scale})'} in Snowflake but the "
            f"export now has {kind.sql}; changing it could lose values, so nothing was loaded "
            "(change the column by hand, or rename the table, then run the task again)"
        )
    plan.kept = [c for c in have if c not in wanted]


def _copies(plan: Plan, settings: dict[str, str], task_id: str, staging: str) -> list[str]:
    """COPY statements that fill ``staging`` from exactly this table's files."""
    select = ", ".join(
        f"{field(source)}::{kind.staging_sql}" for _, source, kind, _ in plan.columns
    )
    columns = ", ".join(quote(name) for name, _, _, _ in plan.columns)
    tail = (
        f"  FILE_FORMAT = (FORMAT_NAME = {literal(settings['file_format'])})\n"
        "  ON_ERROR = ABORT_STATEMENT\n"
        "  FORCE = TRUE"
    )
    if plan.files is not None:
        if not plan.files:
            return []
        statements = []
        for start in range(0, len(plan.files), MAX_COPY_FILES):
            chunk = plan.files[start : start + MAX_COPY_FILES]
            statements.append(
                f"COPY INTO {staging} ({columns})\n"
                f"  FROM (SELECT {select} FROM @{settings['stage']}/{task_id}/)\n"
                "  FILES = (" + ", ".join(literal(f) for f in chunk) + ")\n" + tail
            )
        return statements
    if not SAFE_PATH.fullmatch(plan.folder):
        raise ManifestInvalid(
            f"{plan.target}: the manifest omits the file list and the folder {plan.folder!r} "
            "cannot be written as an unquoted stage path"
        )
    return [
        f"COPY INTO {staging} ({columns})\n"
        f"  FROM (SELECT {select} FROM @{settings['stage']}/{plan.folder})\n" + tail
    ]


def read_manifest(session: Any, settings: dict[str, str]) -> dict[str, Any]:
    text = _one(
        session,
        f"SELECT $1 FROM @{settings['stage']}/_manifest.json "
        f"(FILE_FORMAT => {literal(settings['json_format'])})",
    )
    if text is None:
        raise ManifestInvalid(f"@{settings['stage']}/_manifest.json is missing or empty")
    manifest = json.loads(text) if isinstance(text, str) else text
    if not isinstance(manifest, dict):
        raise ManifestInvalid("_manifest.json does not hold a JSON object")
    return dict(manifest)


def _record(session: Any, settings: dict[str, str], values: dict[str, Any]) -> None:
    names = ", ".join(values)
    cells = ", ".join(
        "CURRENT_TIMESTAMP()"
        if v is _NOW
        else "NULL"
        if v is None
        else str(v)
        if isinstance(v, int)
        else literal(v)
        for v in values.values()
    )
    session.sql(f"INSERT INTO {settings['control']} ({names}) SELECT {cells}").collect()


_NOW = object()


def _last_loaded_tables(session: Any, settings: dict[str, str]) -> list[str]:
    rows = session.sql(
        f"SELECT TABLES FROM {settings['control']} WHERE COALESCE(STATUS, 'LOADED') = 'LOADED' "
        "AND TABLES IS NOT NULL ORDER BY RECORDED_AT DESC LIMIT 1"
    ).collect()
    return list(json.loads(rows[0][0])) if rows else []


def load(session: Any, settings: dict[str, str]) -> str:
    """Load the export ``@stage/_manifest.json`` names, all tables or none; see the module."""
    session.sql("ALTER SESSION SET TIMEZONE = 'UTC'").collect()
    if settings.get("stream"):
        # a DML that reads the stream advances it, so the triggered task stops firing for
        # this manifest (https://docs.snowflake.com/en/user-guide/streams-intro)
        session.sql(
            f"INSERT INTO {settings['events']} (RELATIVE_PATH, SEEN_AT) "
            f"SELECT RELATIVE_PATH, CURRENT_TIMESTAMP() FROM {settings['stream']}"
        ).collect()
    manifest = read_manifest(session, settings)
    task_id = str(manifest.get("export_task_id") or "")
    if not re.fullmatch(TASK_ID_PATTERN, task_id):
        raise ManifestInvalid(f"export_task_id {task_id!r} is not an RDS export task identifier")
    done = _one(
        session,
        f"SELECT COUNT(*) FROM {settings['control']} WHERE EXPORT_TASK_ID = {literal(task_id)} "
        "AND COALESCE(STATUS, 'LOADED') = 'LOADED'",
    )
    if int(done or 0) > 0:
        return f"export {task_id} already loaded: nothing to do"

    staging_tables: list[str] = []
    in_transaction = False
    try:
        plans, loading, vanished = _plan(session, settings, manifest, task_id)
        staged = _stage(session, settings, task_id, loading, staging_tables)
        _alter(session, settings, loading)
        session.sql("BEGIN TRANSACTION").collect()
        in_transaction = True
        for plan, staging in zip(loading, staging_tables, strict=True):
            target = table(settings, plan.name)
            columns = ", ".join(quote(n) for n, _, _, _ in plan.columns)
            values = ", ".join(k.convert.format(quote(n)) for n, _, k, _ in plan.columns)
            session.sql(f"DELETE FROM {target}").collect()
            session.sql(
                f"INSERT INTO {target} ({columns}) SELECT {values} FROM {staging}"
            ).collect()
        kept = [p.name for p in plans if p not in loading]
        _record(
            session,
            settings,
            {
                "EXPORT_TASK_ID": task_id,
                "STATUS": "LOADED",
                "RECORDED_AT": _NOW,
                "TABLES_LOADED": len(loading),
                "TABLES_KEPT": len(kept),
                "ROWS_LOADED": staged,
                "TABLES": json.dumps(sorted(p.name for p in loading)),
                "VANISHED": json.dumps(vanished),
                "REASON": None,
                "SNAPSHOT_ID": (manifest.get("snapshot") or {}).get("id"),
                "MANIFEST_WRITTEN_AT": manifest.get("written_at"),
            },
        )
        session.sql("COMMIT").collect()
        in_transaction = False
    except Exception as error:
        if in_transaction:
            session.sql("ROLLBACK").collect()
        reason = f"{type(error).__name__}: {error}"[:10000]
        _record(
            session,
            settings,
            {
                "EXPORT_TASK_ID": task_id,
                "STATUS": "FAILED",
                "RECORDED_AT": _NOW,
                "REASON": reason,
                "SNAPSHOT_ID": (manifest.get("snapshot") or {}).get("id"),
                "MANIFEST_WRITTEN_AT": manifest.get("written_at"),
            },
        )
        if isinstance(error, LoadFailed):
            raise
        raise LoadFailed(f"export {task_id}: {reason}; no table was changed") from error
    finally:
        for staging in staging_tables:
            session.sql(f"DROP TABLE IF EXISTS {staging}").collect()
    return _report(
        task_id, plans=plans, loading=loading, kept=kept, vanished=vanished, staged=staged
    )


def _plan(
    session: Any, settings: dict[str, str], manifest: dict[str, Any], task_id: str
) -> tuple[list[Plan], list[Plan], list[str]]:
    """(every table, the tables to load, the tables no longer exported); raises on what
    cannot be loaded, before anything is changed."""
    if manifest.get("manifest_version") != 2:
        raise ManifestInvalid(f"manifest_version {manifest.get('manifest_version')!r} is not 2")
    prefix = str(manifest.get("s3_prefix") or "").strip("/")
    prefix = f"{prefix}/" if prefix else ""
    export_folder = str(manifest.get("export_folder") or "")
    if not export_folder.startswith(prefix) or not export_folder.endswith(f"{task_id}/"):
        raise ManifestInvalid(f"export_folder {export_folder!r} is not {prefix}{task_id}/")
    plans = [Plan(e, export_folder, prefix) for e in manifest.get("tables") or []]
    names = [p.name for p in plans]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise ManifestInvalid(f"several tables would be named {sorted(clash)}")
    loading = [p for p in plans if p.status == "COMPLETE" and p.columns]
    existing = _existing(session, settings)
    for plan in loading:
        if plan.name in existing:
            _compare(plan, existing[plan.name])
        else:
            plan.new = True
    vanished = sorted(set(_last_loaded_tables(session, settings)) - set(names))
    return plans, loading, vanished


def _stage(
    session: Any,
    settings: dict[str, str],
    task_id: str,
    loading: list[Plan],
    staging_tables: list[str],
) -> int:
    """Stage every table and check its count, before any table changes; the rows staged."""
    staged = 0
    for plan in loading:
        staging = table(settings, settings["staging_prefix"] + plan.name)
        columns = ", ".join(f"{quote(n)} {k.staging_sql}" for n, _, k, _ in plan.columns)
        session.sql(f"CREATE OR REPLACE TRANSIENT TABLE {staging} ({columns})").collect()
        staging_tables.append(staging)
        for copy in _copies(plan, settings, task_id, staging):
            session.sql(copy).collect()
        count = int(_one(session, f"SELECT COUNT(*) FROM {staging}") or 0)
        if count != plan.row_count:
            raise RowCountMismatch(
                f"{plan.target}: staged {count} rows, the manifest counts {plan.row_count} "
                "in the Parquet footers (files missing or changed since the export?)"
            )
        staged += count
    return staged


def _alter(session: Any, settings: dict[str, str], loading: list[Plan]) -> None:
    """New tables and columns. DDL commits implicitly, so it runs before the transaction,
    once every table is staged."""
    for plan in loading:
        target = table(settings, plan.name)
        if plan.new:
            columns = ", ".join(f"{quote(n)} {k.sql}" for n, _, k, _ in plan.columns)
            session.sql(f"CREATE TABLE IF NOT EXISTS {target} ({columns})").collect()
            continue
        kinds = {n: k for n, _, k, _ in plan.columns}
        for name in plan.added:
            session.sql(
                f"ALTER TABLE {target} ADD COLUMN {quote(name)} {kinds[name].sql}"
            ).collect()
        for name, sql in plan.widened:
            session.sql(
                f"ALTER TABLE {target} ALTER COLUMN {quote(name)} SET DATA TYPE {sql}"
            ).collect()


def _report(
    task_id: str,
    *,
    plans: list[Plan],
    loading: list[Plan],
    kept: list[str],
    vanished: list[str],
    staged: int,
) -> str:
    report = [f"export {task_id}: {len(loading)} tables, {staged} rows loaded"]
    for plan in loading:
        if plan.new:
            report.append(f"created {plan.name}")
        if plan.added:
            report.append(f"{plan.name}: added {', '.join(plan.added)}")
        if plan.kept:
            report.append(f"{plan.name}: kept {', '.join(plan.kept)} (NULL for the new rows)")
    if kept:
        report.append(f"left as they were (not COMPLETE): {', '.join(kept)}")
    if vanished:
        report.append(f"no longer exported, left untouched: {', '.join(vanished)}")
    return "; ".join(report)


def table(settings: dict[str, str], name: str) -> str:
    return f"{quote(settings['database_name'])}.{quote(settings['schema_name'])}.{quote(name)}"


def run(session: Any) -> str:
    """The procedure's handler."""
    return load(session, SETTINGS)


__all__ = ["base_type", "load", "run"]
