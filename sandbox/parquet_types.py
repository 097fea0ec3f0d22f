"""How the sandbox writes each source type to Parquet: AWS's data-conversion tables, as code.

AWS, "Data conversion when exporting to an Amazon S3 bucket",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html
(read 2026-12-02) gives, for each MySQL/MariaDB and PostgreSQL source type, the Parquet primitive
type and the logical annotation RDS writes. This module is the sandbox's OWN transcription of those
tables into pyarrow types; ``tests/sandbox/test_parquet_types.py`` reads the files it writes and
compares each column's footer with an independent transcription
(``tests/fixtures/aws_docs/rds_export_data_types.json``), row by row.

What the page does not say, and what the sandbox assumes instead (docs/sandbox.md, "What AWS
does not document", is the one list of these):

* DECIMAL/NUMERIC (MySQL): the page picks INT32 / INT64 / FIXED_LEN_BYTE_ARRAY(N) by whether "the
  source value" is below 2^31 / 2^63; a Parquet column has one physical type, so the sandbox
  reads it by the column's declared precision: up to 9 digits INT32, up to 18 INT64, up to 38
  FIXED_LEN_BYTE_ARRAY of the smallest width that holds the precision, above 38 a STRING.
* TIMESTAMP_MICROS is the legacy ConvertedType name, which means "adjusted to UTC"; the sandbox
  writes MySQL DATETIME and TIMESTAMP as INT64 TIMESTAMP(isAdjustedToUTC=true, MICROS), the
  DATETIME's wall-clock value taken as UTC.
* The text of a value RDS converts to STRING (a PostgreSQL date, an array, a MySQL TIME...) is
  not documented; the sandbox writes the source database's own text output
  (:func:`export_text`).
* PostgreSQL OBJECT IDENTIFIER is "N/A" on the page: the sandbox has no mapping for it.

pyarrow writes every documented physical type and annotation here; INT96 (listed by the page
as a primitive type, used by no row) is never needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from sandbox.fixture_db import Engine, FixtureColumn

PAGE: Final = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html"
)

_STRING: Final = "STRING"
_BINARY: Final = "BINARY"


@dataclass(frozen=True)
class ParquetType:
    """How one column is written: the pyarrow type and the value conversion it needs."""

    arrow_type: Any  # a pyarrow DataType
    kind: str  # how a source value becomes an Arrow value: see _convert
    exported_type: str  # the sandbox's spelling of expectedExportedType (undocumented by AWS)


def _decimal_type(precision: int, scale: int) -> ParquetType:
    """MySQL DECIMAL/NUMERIC(p,s): INT32, INT64 or FIXED_LEN_BYTE_ARRAY DECIMAL, or a STRING
    above precision 38 (Parquet's limit, per the page). pyarrow's ``store_decimal_as_integer``
    writes p <= 9 as INT32 and p <= 18 as INT64; above that a FIXED_LEN_BYTE_ARRAY of the
    smallest width for p."""
    if precision > 38:
        return ParquetType(pa.string(), "decimal_text", "binary (UTF8)")
    if precision <= 9:
        physical = "int32"
    elif precision <= 18:
        physical = "int64"
    else:
        physical = "fixed_len_byte_array"
    return ParquetType(
        pa.decimal128(precision, scale), "decimal", f"{physical} (DECIMAL({precision},{scale}))"
    )


_INT32: Final = ParquetType(pa.int32(), "int", "int32")
_INT64: Final = ParquetType(pa.int64(), "int", "int64")
_INT16: Final = ParquetType(pa.int16(), "int", "int32 (INT_16)")
_DOUBLE: Final = ParquetType(pa.float64(), "float", "double")
_FLOAT: Final = ParquetType(pa.float32(), "float", "float")
_BOOL: Final = ParquetType(pa.bool_(), "bool", "boolean")
_BYTES: Final = ParquetType(pa.binary(), "bytes", "binary")
_TEXT_AS_BYTES: Final = ParquetType(pa.binary(), "utf8_bytes", "binary")
_TEXT: Final = ParquetType(pa.string(), "text", "binary (UTF8)")
_MICROS: Final = ParquetType(pa.timestamp("us", tz="UTC"), "timestamp", "int64 (TIMESTAMP_MICROS)")
_UNSIGNED_64: Final = ParquetType(
    pa.decimal128(20, 0), "unsigned", "fixed_len_byte_array (DECIMAL(20,0))"
)

# MySQL and MariaDB rows of the page, by source data type.
_MYSQL: Final[dict[str, ParquetType]] = {
    "BIGINT": _INT64,
    "BIGINT UNSIGNED": _UNSIGNED_64,  # FIXED_LEN_BYTE_ARRAY(9) DECIMAL(20,0)
    "BIT": _BYTES,
    "DOUBLE": _DOUBLE,
    "FLOAT": _DOUBLE,  # FLOAT is written as DOUBLE
    "INT": _INT32,
    "INT UNSIGNED": _INT64,
    "MEDIUMINT": _INT32,
    "MEDIUMINT UNSIGNED": _INT64,
    "SMALLINT": _INT32,
    "SMALLINT UNSIGNED": _INT32,
    "TINYINT": _INT32,
    "TINYINT UNSIGNED": _INT16,  # INT32 annotated INT(16, true)
    "BINARY": _BYTES,
    "BLOB": _BYTES,
    "CHAR": _TEXT_AS_BYTES,  # BYTE_ARRAY with no STRING annotation
    "ENUM": _TEXT,
    "LINESTRING": _BYTES,
    "LONGBLOB": _BYTES,
    "LONGTEXT": _TEXT,
    "MEDIUMBLOB": _BYTES,
    "MEDIUMTEXT": _TEXT,
    "MULTILINESTRING": _BYTES,
    "SET": _TEXT,
    "TEXT": _TEXT,
    "TINYBLOB": _BYTES,
    "TINYTEXT": _TEXT,
    "VARBINARY": _BYTES,
    "VARCHAR": _TEXT,
    "DATE": _TEXT,
    "DATETIME": _MICROS,
    "TIME": _TEXT,
    "TIMESTAMP": _MICROS,
    "YEAR": _INT32,
    "GEOMETRY": _BYTES,
    "GEOMETRYCOLLECTION": _BYTES,
    "MULTIPOINT": _BYTES,
    "MULTIPOLYGON": _BYTES,
    "POINT": _BYTES,
    "POLYGON": _BYTES,
    "JSON": _TEXT,
}

# PostgreSQL rows of the page. Everything but integers, floats, booleans and bytea is a STRING.
_POSTGRES_TYPED: Final[dict[str, ParquetType]] = {
    "BIGINT": _INT64,
    "BIGSERIAL": _INT64,
    "DOUBLE PRECISION": _DOUBLE,
    "INTEGER": _INT32,
    "REAL": _FLOAT,
    "SERIAL": _INT32,
    "SMALLINT": _INT16,  # INT32 annotated INT(16, true)
    "SMALLSERIAL": _INT16,
    "BYTEA": _BYTES,  # the page's "BINARY": a BYTE_ARRAY with no annotation
    "BOOLEAN": _BOOL,
}
_POSTGRES_STRING: Final = frozenset(
    {
        "DECIMAL", "MONEY", "ARRAY", "BIT", "BIT VARYING", "CHAR", "CHAR(N)", "ENUM", "NAME",
        "TEXT", "TEXT SEARCH", "VARCHAR(N)", "XML", "DATE", "INTERVAL", "TIME",
        "TIME WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "BOX", "CIRCLE", "LINE",
        "LINESEGMENT", "PATH", "POINT", "POLYGON", "JSON", "JSONB", "CIDR", "COMPOSITE",
        "DOMAIN", "INET", "MACADDR", "PG_LSN", "RANGE", "UUID",
    }
)  # fmt: skip


def parquet_type(engine: Engine, column: FixtureColumn) -> ParquetType:
    """The Parquet type RDS writes for ``column`` of an ``engine`` database (per PAGE)."""
    doc_type = column.doc_type
    if engine == "mysql":
        if doc_type in ("DECIMAL", "NUMERIC"):
            return _decimal_type(column.precision, column.scale)
        if doc_type in _MYSQL:
            return _MYSQL[doc_type]
    elif engine == "postgres":
        if doc_type in _POSTGRES_TYPED:
            return _POSTGRES_TYPED[doc_type]
        if doc_type in _POSTGRES_STRING:
            return ParquetType(pa.string(), "text", "binary (UTF8)")
    raise ValueError(
        f"{engine} type {doc_type!r} (column {column.name!r}) has no Parquet type on {PAGE}"
    )


# --- the text of values RDS converts to STRING (undocumented: see the module's docstring) ----


def _pg_array_item(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "{" + ",".join(_pg_array_item(v) for v in value) + "}"
    text = str(value)
    plain = text and text.upper() != "NULL" and not any(c in text for c in ' ,{}"\\\t\n\r')
    if plain:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pg_timestamp(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    if moment.tzinfo is not None:
        text += "+00"  # the session's TimeZone taken as UTC; the value is already in UTC
    return text


def _mysql_time(duration: timedelta) -> str:
    micros = round(duration.total_seconds() * 1_000_000)
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return text + (f".{fraction:06d}" if fraction else "")


def _decimal_text(value: Decimal, column: FixtureColumn) -> str:
    if value.is_nan():
        return "NaN"
    if column.precision:  # declared scale: printed with exactly that many decimals
        return f"{value:.{column.scale}f}"
    return format(value, "f")


def export_text(engine: Engine, column: FixtureColumn, value: Any) -> str | None:
    """The text the sandbox writes for a source value of a column exported as STRING.

    AWS documents that these types become UTF-8 strings, not the text; the sandbox writes what
    the source database itself prints (PostgreSQL: DateStyle ISO, TimeZone UTC; MySQL: its
    TIME and DATE formats, a DECIMAL with its declared scale). ``None`` stays ``None``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return _decimal_text(value, column)
    if isinstance(value, datetime):  # before date: a datetime is a date
        return _pg_timestamp(value) if engine == "postgres" else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _mysql_time(value)
    if isinstance(value, list):
        return _pg_array_item(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # integers (a PostgreSQL DOMAIN over integer), UUIDs


def arrow_value(engine: Engine, column: FixtureColumn, kind: str, value: Any) -> Any:
    """A source value as the Arrow value its Parquet column holds."""
    if value is None:
        return None
    if kind in ("text", "decimal_text"):
        return export_text(engine, column, value)
    if kind == "utf8_bytes":
        return value.encode()
    if kind == "unsigned":
        return Decimal(value)
    if kind == "float":
        return float(value)
    # "timestamp": pyarrow takes a naive DATETIME as UTC wall-clock time, as the sandbox means
    return value


def is_nan(value: Any) -> bool:
    """Whether a value is a float NaN (NaN never equals itself: comparisons must know)."""
    return isinstance(value, float) and math.isnan(value)
