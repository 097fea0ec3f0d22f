"""The Glue Data Catalog tables of an export: names, column types, and the table definition.

With ``-c glue_database=<name>`` the pipeline keeps one Glue table per exported table, pointing
at that table's folder in the newest export, so Athena queries the export where it lies
(docs/athena.md). This module is pure (no AWS calls): the step UpdateCatalog
(:mod:`rds_s3_export.steps.update_catalog`) turns a manifest into these table definitions and
writes them; the purge reads back which export folders the tables point at
(:func:`folders_named`).

Names (Athena, "Name databases, tables, and columns",
https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html: names in
Glue should be lower case, 1 to 255 bytes; names that start with ``_`` or a digit need quoting):

* a table is named from its export target, ``db.schema.table`` (``db.table`` for MySQL): lower
  case, every character other than ``a-z``, ``0-9`` and ``_`` becomes ``_``
  (``shop.Sales Dept.Order Lines`` -> ``shop_sales_dept_order_lines``). Deterministic, and the
  database is part of it, so two databases of one stack rarely meet. Two targets that map to
  one name are both refused (left out of the catalog, named in a warning), never guessed
  between; a name above 255 bytes is cut and ends with 8 hex digits of the target's SHA-256.
* a column keeps its own name, in lower case: Athena finds a Parquet column by its name
  (lower-cased), so a renamed column would read as NULL. Glue takes any single-line string of
  1 to 255 bytes as a column name (https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html).
  Two columns of one table equal but for case are refused (the table is left out, named).

Types: from each column's Parquet type (``columns[].parquet`` of manifest version 2: what the
file holds, which is what Athena reads), refined by the source type only where the Snowflake
side refines it too (text that RDS wrote as bytes); a table without files is typed from the
source type. Hive/Athena types: https://docs.aws.amazon.com/athena/latest/ug/data-types.html.
tests/unit/test_catalog_types.py checks every row of AWS's conversion tables
(tests/fixtures/aws_docs/rds_export_data_types.json) against this mapping AND against
``snowflake_sql.types`` (the same classification: a Snowflake NUMBER is a Glue integer or
decimal, VARCHAR is string, BINARY is binary, and so on).

The table definition is the Parquet SerDe's with the location of the table's folder in the
export (``s3://<bucket>/<prefix>/<export>/<db>/<schema.table>/``). RDS writes a table's files in
batch subfolders (``1/part-...parquet``); Athena reads every file under a table's LOCATION,
subfolders included ("Athena reads all data stored in the Amazon S3 folder that you
specify": https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html), so the
table is not partitioned by batch. Other Hive engines may need recursive reading switched on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

NAME_MAX_BYTES: Final = 255  # Glue and Athena, per the pages above
MAX_DECIMAL_PRECISION: Final = 38  # Athena's DECIMAL: precision up to 38 (data-types page)

# The parameters that mark a table as this pipeline's. Only tables that carry both, with this
# pipeline's name and this database's prefix, are ever updated or deleted: a user's table of
# the same name is left alone (and the export's table left out, named in a warning).
OWNER_KEY: Final = "rds-s3-export:pipeline"
PREFIX_KEY: Final = "rds-s3-export:s3_prefix"
EXPORT_KEY: Final = "rds-s3-export:export_task_id"
TARGET_KEY: Final = "rds-s3-export:target"

# Hive's Parquet SerDe and formats, what Athena documents for Parquet tables:
# https://docs.aws.amazon.com/athena/latest/ug/parquet-serde.html
SERDE: Final = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
INPUT_FORMAT: Final = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
OUTPUT_FORMAT: Final = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

_NOT_NAME: Final = re.compile(r"[^a-z0-9_]")


def table_name(target: str) -> str:
    """The Glue table's name for an export target (module docstring)."""
    name = _NOT_NAME.sub("_", target.lower())
    if len(name.encode()) <= NAME_MAX_BYTES:
        return name
    digest = hashlib.sha256(target.encode()).hexdigest()[:8]
    return f"{name[: NAME_MAX_BYTES - 9]}_{digest}"


# --- types ----------------------------------------------------------------------------------

_INT_BY_WIDTH: Final = {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}
_TEXT_SOURCES: Final = frozenset(
    {"char", "character", "varchar", "text", "tinytext", "mediumtext", "longtext", "enum", "set"}
)
_STRING_LOGICAL: Final = frozenset({"STRING", "ENUM", "JSON", "UUID"})


def base_type(original_type: Any) -> str:
    """``decimal(10, 2)`` -> ``decimal``; ``INT UNSIGNED`` -> ``int unsigned``."""
    text = re.sub(r"\(\s*[^)]*\)", "", str(original_type or "").strip().lower())
    return " ".join(text.split())


def glue_type(column: Mapping[str, Any]) -> str:
    """The Hive/Athena type of one manifest column: the Parquet type first."""
    original = base_type(column.get("original_type"))
    parquet = column.get("parquet")
    if not parquet:
        return _from_source(original, column)
    physical = str(parquet.get("physical") or "")
    logical = parquet.get("logical")
    if logical in _STRING_LOGICAL:
        return "string"
    if logical == "DECIMAL":
        precision = int(parquet.get("precision") or MAX_DECIMAL_PRECISION)
        if precision > MAX_DECIMAL_PRECISION:  # never a Parquet DECIMAL from RDS; a guard
            return "string"
        return f"decimal({precision},{int(parquet.get('scale') or 0)})"
    if logical == "DATE":
        return "date"
    if logical == "TIMESTAMP" or physical == "INT96":
        return "timestamp"
    if logical == "INT":
        width = int(parquet.get("bit_width") or 64)
        if parquet.get("signed", True):
            return _INT_BY_WIDTH.get(width, "bigint")
        # an unsigned value needs the next wider signed type; RDS writes BIGINT UNSIGNED as
        # DECIMAL(20,0) (AWS's conversion table), so no UINT_64 is expected
        return {8: "smallint", 16: "int", 32: "bigint"}.get(width, "decimal(20,0)")
    if logical == "TIME":
        # Hive has no time of day: the stored count of units since midnight (RDS writes
        # times as strings, per AWS's conversion table; a guard)
        return "int" if physical == "INT32" else "bigint"
    if physical == "BOOLEAN":
        return "boolean"
    if physical == "INT32":
        return "int"
    if physical == "INT64":
        return "bigint"
    if physical == "FLOAT":
        return "float"
    if physical == "DOUBLE":
        return "double"
    if physical in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"):
        # text RDS wrote as bytes without a STRING annotation (MySQL CHAR): Athena reads the
        # bytes of an unannotated BYTE_ARRAY as a string when the column says string
        return "string" if original in _TEXT_SOURCES else "binary"
    return "string"


def _from_source(original: str, column: Mapping[str, Any]) -> str:
    """A column of a table without files (no Parquet type): from the source type. The folder
    holds no file, so Athena reads no value against it; the next export's files retype it."""
    integers = {
        "tinyint": "tinyint",
        "smallint": "smallint",
        "int2": "smallint",
        "mediumint": "int",
        "int": "int",
        "integer": "int",
        "int4": "int",
        "serial": "int",
        "bigint": "bigint",
        "int8": "bigint",
        "bigserial": "bigint",
    }
    if original in integers:
        return integers[original]
    if original in ("boolean", "bool"):
        return "boolean"
    if original in ("double", "double precision", "float8"):
        return "double"
    if original in ("real", "float4", "float"):
        return "float"
    precision = column.get("precision")
    if original == "decimal" and isinstance(precision, int) and precision <= 38:
        return f"decimal({precision},{int(column.get('scale') or 0)})"
    if (
        original in ("datetime", "timestamp")
        and "STRING" not in str(column.get("exported_type") or "").upper()
    ):
        return "timestamp"
    if original in ("bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"):
        return "binary"
    return "string"


# --- the table definition -------------------------------------------------------------------


@dataclass
class Plan:
    """What the manifest asks of the catalog: tables by name, and what is left out (why)."""

    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> TableInput
    left_out: list[str] = field(default_factory=list)


def table_input(
    manifest: Mapping[str, Any], table: Mapping[str, Any], name: str, pipeline: str
) -> dict[str, Any]:
    """Glue's TableInput for one manifest table
    (https://docs.aws.amazon.com/glue/latest/webapi/API_TableInput.html)."""
    location = f"s3://{manifest['bucket']}/{str(table['folder']).rstrip('/')}/"
    return {
        "Name": name,
        "Description": f"{table['target']} in export {manifest['export_task_id']} (rds-s3-export)",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            OWNER_KEY: pipeline,
            PREFIX_KEY: str(manifest["s3_prefix"]),
            EXPORT_KEY: str(manifest["export_task_id"]),
            TARGET_KEY: str(table["target"]),
        },
        "StorageDescriptor": {
            "Columns": [
                {"Name": str(c["name"]).lower(), "Type": glue_type(c)} for c in table["columns"]
            ],
            "Location": location,
            "InputFormat": INPUT_FORMAT,
            "OutputFormat": OUTPUT_FORMAT,
            "SerdeInfo": {
                "SerializationLibrary": SERDE,
                "Parameters": {"serialization.format": "1"},
            },
        },
    }


def plan(manifest: Mapping[str, Any], pipeline: str) -> Plan:
    """The tables to have in the catalog: every COMPLETE table of the manifest, by name.

    Left out, each with a sentence: tables RDS did not export whole (SKIPPED, FAILED: a query
    would meet a table with missing rows), two targets with one name, a table with two columns
    equal but for case, a column name above 255 bytes, a table without columns."""
    result = Plan()
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for table in manifest.get("tables", []):
        by_name.setdefault(table_name(str(table["target"])), []).append(table)
    for name, tables in sorted(by_name.items()):
        if len(tables) > 1:
            targets = ", ".join(str(t["target"]) for t in tables)
            result.left_out.append(f"{targets}: all map to the Glue table name {name}")
            continue
        (table,) = tables
        target, status = str(table["target"]), str(table.get("status", ""))
        if status.upper() != "COMPLETE":
            result.left_out.append(f"{target}: status {status or 'unknown'}, not COMPLETE")
            continue
        columns = [str(c["name"]).lower() for c in table.get("columns", [])]
        clash = sorted({c for c in columns if columns.count(c) > 1})
        if clash:
            result.left_out.append(f"{target}: columns equal but for case: {', '.join(clash)}")
            continue
        too_long = [c for c in columns if not 0 < len(c.encode()) <= NAME_MAX_BYTES]
        if too_long or not columns:
            why = "a column name above 255 bytes" if too_long else "no columns"
            result.left_out.append(f"{target}: {why}")
            continue
        result.tables[name] = table_input(manifest, table, name, pipeline)
    return result


def owned(table: Mapping[str, Any], pipeline: str, s3_prefix: str) -> bool:
    """Whether a Glue table (GetTables's Table) is this pipeline's, for this prefix."""
    parameters = table.get("Parameters") or {}
    return bool(
        parameters.get(OWNER_KEY) == pipeline and parameters.get(PREFIX_KEY) == s3_prefix.strip("/")
    )


def folders_named(
    tables: Iterable[Mapping[str, Any]], bucket: str, s3_prefix: str, pipeline: str
) -> dict[str, list[str]]:
    """``{export folder: [table names]}``: the export folders under ``<s3_prefix>/`` that this
    pipeline's tables point at (the purge keeps them until no table does)."""
    base = f"s3://{bucket}/{s3_prefix.strip('/')}/"
    found: dict[str, list[str]] = {}
    for table in tables:
        if not owned(table, pipeline, s3_prefix):
            continue
        location = str((table.get("StorageDescriptor") or {}).get("Location") or "")
        if location.startswith(base):
            folder = location[len(base) :].split("/", 1)[0]
            if folder:
                found.setdefault(folder, []).append(str(table.get("Name")))
    return found
