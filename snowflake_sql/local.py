"""Run the Snowflake setup script and the load procedure on fakesnow (DuckDB), locally.

fakesnow 0.12.1 executes most of what the script and the procedure send. Where it cannot,
:class:`ShimSession` (the procedure's ``session``) and :func:`run_script` do the nearest
faithful thing, and only these (tests/snowflake/test_script.py lists them by name):

* ``ALTER SESSION SET TIMEZONE = 'UTC'``: not implemented by fakesnow; the shim sets DuckDB's
  own ``TimeZone`` to UTC, which is what the statement means.
* ``SELECT $1 FROM @stage/_manifest.json (FILE_FORMAT => ...)``: fakesnow cannot query a
  staged file; the shim looks the stage's ``file://`` URL up in fakesnow's own stage table and
  reads the file (no file: no row, as Snowflake returns for a missing file).
* the ``INSERT ... FROM <stream>`` that advances the stream: fakesnow has no streams; skipped.
* ``$1:"col"`` in a COPY: fakesnow turns the path element into an UNQUOTED DuckDB identifier,
  which breaks on names with ``"``, spaces or capitals that differ; :func:`patch_fakesnow`
  makes it a quoted identifier (the Parquet column's exact name), as Snowflake reads it.
* ``TO_VARCHAR(<binary>, 'UTF-8')`` (MySQL CHAR arrives as bytes): sqlglot's DuckDB output
  drops the format; :func:`patch_fakesnow` writes DuckDB's ``DECODE`` instead.
* the stage: the script's ``s3://`` stage is created with a ``file://`` URL over a local copy
  of the prefix (:func:`copy_prefix`), with the same name, format and directory option.
* the procedure: its generated Python body is executed as a module, and ``CALL`` runs its
  ``run(session)`` with a :class:`ShimSession`.

Needs the dev extras (fakesnow, the connector, sqlglot). Used by tests/snowflake and the demo.
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from snowflake_sql.generate import split_script

NOT_ON_FAKESNOW = {
    "storage integration": "needs a Snowflake account (an IAM trust)",
    "stream": "fakesnow has no streams",
    "task": "fakesnow has no tasks",
    "task resume": "fakesnow has no tasks",
    "email integration": "needs a Snowflake account",
    "alert": "fakesnow has no alerts",
    "alert resume": "fakesnow has no alerts",
}
"""Statements of the script fakesnow cannot execute: parsed with sqlglot only."""
SUBSTITUTED = {
    "session time zone": "DuckDB's TimeZone set to UTC",
    "stage": "created with a file:// URL over a local copy of the prefix, no AUTO_REFRESH",
    "procedure": "its Python body executed as a module",
    "first load": "run(session) with ShimSession",
}
"""Statements executed by the nearest faithful equivalent (see the module docstring)."""

_MANIFEST_READ = re.compile(r"SELECT \$1 FROM @(.+)/_manifest\.json \(FILE_FORMAT => .*\)", re.S)
_PATCHED = False


def patch_fakesnow() -> None:
    """Make fakesnow read ``$1:"col"`` as the quoted column ``col`` (module docstring)."""
    global _PATCHED  # noqa: PLW0603
    if _PATCHED:
        return
    from fakesnow import copy_into  # noqa: PLC0415
    from sqlglot import exp  # noqa: PLC0415

    def strip(expr: Any) -> Any:
        dollar1 = exp.Parameter(this=exp.Literal(this="1", is_string=False))
        for p in list(expr.find_all(exp.Parameter)):
            if p == dollar1 and p.parent and (key := p.parent.expression.find(exp.JSONPathKey)):
                p.parent.replace(exp.Identifier(this=key.this, quoted=True))
        return expr

    copy_into._strip_json_extract = strip

    # TO_VARCHAR(<binary>, 'UTF-8') decodes bytes as UTF-8 in Snowflake
    # (https://docs.snowflake.com/en/sql-reference/functions/to_char); sqlglot's DuckDB output
    # drops the format and casts, which prints escapes instead. DuckDB's decode() is the same.
    from sqlglot.dialects.duckdb import DuckDB  # noqa: PLC0415

    original = DuckDB.Generator.tochar_sql

    def tochar_sql(self: Any, expression: Any) -> str:
        fmt = expression.args.get("format")
        if isinstance(fmt, exp.Literal) and fmt.this.upper() in ("UTF-8", "UTF8"):
            return f"DECODE({self.sql(expression, 'this')})"
        return str(original(self, expression))

    DuckDB.Generator.tochar_sql = tochar_sql  # type: ignore[method-assign]
    _PATCHED = True


def copy_prefix(s3: Any, bucket: str, prefix: str, root: Path) -> list[Path]:
    """Copy every object under ``<prefix>/`` into ``root`` (``root`` is the stage's URL)."""
    head = f"{prefix.strip('/')}/"
    written: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=head):
        for obj in page.get("Contents", []):
            local = root / obj["Key"][len(head) :]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            written.append(local)
    return written


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def collect(self) -> list[tuple[Any, ...]]:
        return self.rows


class ShimSession:
    """The part of Snowpark's ``Session`` the procedure uses, over a fakesnow cursor."""

    def __init__(self, cursor: Any, before: Callable[[str], None] | None = None) -> None:
        self.cursor = cursor
        self.before = before
        self.log: list[str] = []

    def sql(self, query: str) -> _Rows:
        self.log.append(query)
        if self.before is not None:
            self.before(query)
        if query == "ALTER SESSION SET TIMEZONE = 'UTC'":
            self.cursor._duck_conn.execute("SET TimeZone = 'UTC'")
            return _Rows([("Statement executed successfully.",)])
        match = _MANIFEST_READ.fullmatch(query)
        if match:
            return _Rows(self._read_staged(match.group(1), "_manifest.json"))
        if re.match(r"INSERT INTO .* FROM [^ ]+_MANIFESTS\"$", query, re.S):
            return _Rows([(0,)])
        return _Rows(list(self.cursor.execute(query).fetchall()))

    def _read_staged(self, stage: str, name: str) -> list[tuple[Any, ...]]:
        parts = [p.replace('""', '"') for p in re.findall(r'"((?:[^"]|"")*)"', stage)]
        database, schema, stage_name = parts
        self.cursor._duck_conn.execute(
            "SELECT url FROM _fs_global._fs_information_schema._fs_stages "
            "WHERE database_name = ? AND schema_name = ? AND name = ?",
            (database, schema, stage_name),
        )
        found = self.cursor._duck_conn.fetchone()
        if not found:
            raise LookupError(f"stage {stage} does not exist")
        path = Path(unquote(urlparse(found[0]).path)) / name
        if not path.is_file():
            return []
        return [(path.read_text(),)]


def load_body(body: str, name: str = "rds_export_load_procedure") -> types.ModuleType:
    """Execute a generated procedure body as a module (as Snowflake imports the handler)."""
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up while the body runs
    exec(compile(body, f"<procedure {name}>", "exec"), module.__dict__)  # nosec B102  # noqa: S102
    return module


def procedure_of(sql: str) -> str:
    """The Python body of a rendered ``CREATE OR REPLACE PROCEDURE ... AS $$ ... $$``."""
    return sql.split("\n$$\n", 1)[1].rsplit("$$", 1)[0]


@contextmanager
def connect() -> Iterator[Any]:
    """A fresh in-memory fakesnow connection that creates no database or schema by itself."""
    import fakesnow  # noqa: PLC0415  (dev extra)
    import snowflake.connector  # noqa: PLC0415

    patch_fakesnow()
    with fakesnow.patch(create_database_on_connect=False, create_schema_on_connect=False):
        conn = snowflake.connector.connect()
        try:
            yield conn.cursor()
        finally:
            conn.close()


class LocalSnowflake:
    """The printed script run top to bottom on fakesnow; then the procedure, on demand."""

    def __init__(self, cursor: Any, stage_root: Path) -> None:
        self.cursor = cursor
        self.stage_root = stage_root
        self.module: types.ModuleType | None = None
        self.parsed: list[str] = []  # names of statements only parsed
        self.executed: list[str] = []
        self.substituted: list[str] = []
        self.first_load: str | None = None

    def run_script(self, script: str) -> None:
        import sqlglot  # noqa: PLC0415

        for name, sql in split_script(script):
            kind = _kind(name)
            if kind in NOT_ON_FAKESNOW:
                sqlglot.parse_one(sql, read="snowflake")  # raises when it does not parse
                self.parsed.append(name)
            elif kind == "stage":
                self.cursor.execute(_local_stage(sql, self.stage_root))
                self.substituted.append(name)
            elif kind == "session time zone":
                ShimSession(self.cursor).sql(sql).collect()
                self.substituted.append(name)
            elif kind == "procedure":
                self.module = load_body(procedure_of(sql))
                self.substituted.append(name)
            elif kind == "first load":
                self.first_load = self.call()
                self.substituted.append(name)
            else:
                self.cursor.execute(sql)
                self.executed.append(name)

    def call(self, before: Callable[[str], None] | None = None) -> str:
        """``CALL`` the procedure: its generated body's ``run(session)`` on this connection."""
        if self.module is None:
            raise RuntimeError("the script's procedure statement has not run")
        return str(self.module.run(ShimSession(self.cursor, before)))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.cursor.execute(sql).fetchall())

    def one(self, sql: str) -> Any:
        return self.rows(sql)[0][0]


def _kind(name: str) -> str:
    return "control column" if name.startswith("control column ") else name


def _local_stage(sql: str, root: Path) -> str:
    """The script's stage statement with its URL and integration replaced by ``root``."""
    out = re.sub(r"URL = '[^']*'", f"URL = 'file://{root}/'", sql)
    out = out.replace("AUTO_REFRESH = TRUE", "")  # S3 notifications do not reach file://
    return re.sub(r"\n  STORAGE_INTEGRATION = [^\n]+", "", out)


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Publish ``manifest`` as the stage's ``_manifest.json`` (as PublishManifest does)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "_manifest.json").write_text(json.dumps(manifest))
