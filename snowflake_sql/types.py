"""Column types of an RDS snapshot export -> Snowflake column types.

The type comes from the column's Parquet type first (``columns[].parquet`` of manifest
version 2: what the file really holds), refined by RDS's ``original_type`` where one Parquet
type stands for source types of different meaning. docs/snowflake.md has the full table: every
row of AWS's conversion tables, the Snowflake type, and what happens to the edge values.

Sources:

* AWS, "Data conversion when exporting to an Amazon S3 bucket"
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html):
  MySQL DATETIME and TIMESTAMP are both INT64 TIMESTAMP(MICROS); BIGINT UNSIGNED is
  FIXED_LEN_BYTE_ARRAY(9) DECIMAL(20,0); a decimal of precision above 38 is a UTF-8 string;
  MySQL DATE and TIME and every PostgreSQL numeric, date and time type are UTF-8 strings;
  PostgreSQL BYTEA and MySQL's binary, BIT and geometry types are BYTE_ARRAY without a
  logical type.
* Snowflake, "Data types" (https://docs.snowflake.com/en/sql-reference/data-types): NUMBER
  holds at most 38 digits; TIME holds 00:00:00 to 23:59:59.999999999 only
  (https://docs.snowflake.com/en/sql-reference/data-types-datetime#time); BINARY holds at
  most 8 MB (https://docs.snowflake.com/en/sql-reference/data-types-text#binary);
  TIMESTAMP_NTZ is wall-clock time, TIMESTAMP_TZ an instant with its offset
  (https://docs.snowflake.com/en/sql-reference/data-types-datetime#timestamp-ltz-timestamp-ntz-timestamp-tz).

Rule: a column gets a type that holds EVERY value the source can hold. A string that only
sometimes parses as the source's type (PostgreSQL ``numeric`` holds ``NaN``, its dates and
timestamps ``infinity``, its ``time`` ``24:00:00``; MySQL's TIME is a duration up to
838:59:59 and its DATE may be ``0000-00-00``) stays VARCHAR, exactly as exported; query it
with ``TRY_TO_NUMBER``/``TRY_TO_DATE``/``TRY_TO_TIMESTAMP``. Text is VARCHAR and binary is
BINARY whatever their bytes.

This module is also embedded, as source, in the Snowflake stored procedure
(snowflake_sql/procedure.py), so that tables and columns that appear later are typed at run
time by this same code: it uses the standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_NUMBER_PRECISION = 38
UNIT_DIGITS = {"MILLIS": 3, "MICROS": 6, "NANOS": 9}


@dataclass(frozen=True)
class SnowflakeType:
    """The column type in the target table, and how the load gets there."""

    sql: str
    """The target column's type, e.g. ``NUMBER(12,2)``."""
    staging_sql: str
    """The staging column's type: the COPY casts the Parquet value to it."""
    convert: str = "{}"
    """The expression, ``{}`` for the staging column, that the INSERT applies."""
    comment: str | None = None
    """Why, when the choice is not the obvious one (shown beside the column in docs/DDL)."""

    @property
    def family(self) -> str:
        """The type's name as Snowflake's INFORMATION_SCHEMA.COLUMNS.DATA_TYPE spells it."""
        head = self.sql.split("(")[0]
        return "TEXT" if head == "VARCHAR" else head

    @property
    def digits(self) -> tuple[int, int] | None:
        """(precision, scale) of a NUMBER, else None."""
        match = re.fullmatch(r"NUMBER\((\d+),(\d+)\)", self.sql)
        return (int(match.group(1)), int(match.group(2))) if match else None


def _same(sql: str, comment: str | None = None) -> SnowflakeType:
    return SnowflakeType(sql=sql, staging_sql=sql, comment=comment)


VARCHAR = _same("VARCHAR")
BINARY = _same("BINARY")

# Decimal digits of the widest value of an integer of that many bits
_INT_DIGITS = {(8, True): 3, (16, True): 5, (32, True): 10, (64, True): 19}
_UINT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 20}

# Source integer types that RDS writes as plain INT32/INT64: the digits their range needs
_INTEGERS = {
    "tinyint": 3,
    "tinyint unsigned": 3,
    "smallint": 5,
    "smallint unsigned": 5,
    "int2": 5,
    "smallserial": 5,
    "mediumint": 7,
    "mediumint unsigned": 8,
    "int": 10,
    "integer": 10,
    "int4": 10,
    "serial": 10,
    "int unsigned": 10,
    "integer unsigned": 10,
    "bigint": 19,
    "int8": 19,
    "bigserial": 19,
    "year": 4,
}
_NTZ = {"datetime", "timestamp without time zone"}
_TZ = {"timestamp", "timestamp with time zone", "timestamptz"}
_STRING_KEPT = {
    # strings that only sometimes parse as the source type: kept as exported (module docstring)
    "date": "a date string: PostgreSQL's infinity / BC dates and MySQL's zero date do not parse",
    "time": "MySQL's TIME is a duration up to 838:59:59; PostgreSQL's time holds 24:00:00",
    "time without time zone": "PostgreSQL's time holds 24:00:00, Snowflake's TIME does not",
    "time with time zone": "Snowflake has no time of day with an offset",
    "timetz": "Snowflake has no time of day with an offset",
    "timestamp without time zone": "PostgreSQL timestamps hold infinity and BC dates",
    "timestamp with time zone": "PostgreSQL timestamps hold infinity and BC dates",
    "timestamptz": "PostgreSQL timestamps hold infinity and BC dates",
    "numeric": "numeric text: NaN (PostgreSQL) or more than 38 digits",
    "timestamp": "PostgreSQL timestamps hold infinity and BC dates",
    "decimal": "more than 38 digits (or NaN): exported as text",
    "interval": "Snowflake has no interval column type",
    "money": "PostgreSQL prints money with its currency symbol",
    "json": "PostgreSQL json keeps duplicate keys, which PARSE_JSON refuses: kept as text",
}


def base_type(original_type: Any) -> str:
    """``decimal(10, 2)`` -> ``decimal``; ``timestamp(6) with time zone`` ->
    ``timestamp with time zone``; ``INT UNSIGNED`` -> ``int unsigned``."""
    text = re.sub(r"\(\s*[^)]*\)", "", str(original_type or "").strip().lower())
    return " ".join(text.split())


def _timestamp(original: str, parquet: dict[str, Any]) -> SnowflakeType:
    digits = UNIT_DIGITS.get(str(parquet.get("unit") or ""), 9)
    if original in _NTZ:
        zone = "NTZ"
    elif original in _TZ:
        zone = "TZ"
    else:
        zone = "TZ" if parquet.get("utc") else "NTZ"
    return _same(f"TIMESTAMP_{zone}({digits})")


def _string(original: str, column: dict[str, Any]) -> SnowflakeType:
    if original == "jsonb":
        # PostgreSQL's normalised JSON (no duplicate keys): a real VARIANT, parsed from the
        # staged text. ``json`` (either engine; the manifest does not say which) stays text.
        return SnowflakeType(sql="VARIANT", staging_sql="VARCHAR", convert="PARSE_JSON({})")
    return _same("VARCHAR", _STRING_KEPT.get(original))


def _integer(original: str, physical: str, digits: int) -> SnowflakeType:
    """NUMBER wide enough for the source type; MySQL's DATA_TYPE drops ``unsigned``, so the
    source's own width counts only when RDS wrote the physical type it writes for the SIGNED
    type (AWS: MEDIUMINT is INT32, MEDIUMINT UNSIGNED INT64): otherwise the physical width."""
    known = _INTEGERS.get(original)
    if known is None or (physical == "INT64" and known < _INTEGERS["bigint"]):
        return _same(f"NUMBER({digits},0)")
    return _same(f"NUMBER({min(known, digits)},0)")


_TEXT_BYTES = frozenset(
    {"char", "character", "varchar", "text", "tinytext", "mediumtext", "longtext", "enum", "set"}
)
"""Text types: when RDS writes one as BYTE_ARRAY without a STRING annotation (AWS: MySQL
CHAR), the bytes are UTF-8 text; staged as BINARY, then decoded."""
TEXT_FROM_BYTES = SnowflakeType(
    sql="VARCHAR", staging_sql="BINARY", convert="TO_VARCHAR({}, 'UTF-8')"
)


def snowflake_type(column: dict[str, Any]) -> SnowflakeType:
    """The Snowflake type of one manifest column (``parquet`` first, then ``original_type``)."""
    original = base_type(column.get("original_type"))
    parquet = column.get("parquet")
    if not parquet:
        return _from_original(original, column)
    physical = str(parquet.get("physical") or "")
    logical = parquet.get("logical")
    if logical in ("STRING", "ENUM", "JSON", "UUID") or (
        logical is None and physical == "BYTE_ARRAY" and original in _STRING_KEPT
    ):
        return _string(original, column)
    if logical == "DECIMAL":
        precision = int(parquet.get("precision") or MAX_NUMBER_PRECISION)
        scale = int(parquet.get("scale") or 0)
        if precision > MAX_NUMBER_PRECISION:  # not writable as Parquet DECIMAL by RDS
            return _same("VARCHAR", _STRING_KEPT["decimal"])
        return _same(f"NUMBER({precision},{scale})")
    if logical == "DATE":
        return _same("DATE")
    if logical == "TIMESTAMP" or physical == "INT96":
        return _timestamp(original, parquet)
    if logical == "TIME":
        if original == "time":  # MySQL's TIME is a duration; see _STRING_KEPT
            return _same("VARCHAR", _STRING_KEPT["time"])
        return _same(f"TIME({UNIT_DIGITS.get(str(parquet.get('unit') or ''), 9)})")
    if logical == "INT":
        width = int(parquet.get("bit_width") or 64)
        if parquet.get("signed", True):
            return _integer(original, physical, _INT_DIGITS.get((width, True), 19))
        return _same(f"NUMBER({_UINT_DIGITS.get(width, 20)},0)")
    if physical == "BOOLEAN":
        return _same("BOOLEAN")
    if physical in ("INT32", "INT64"):
        return _integer(original, physical, 10 if physical == "INT32" else 19)
    if physical in ("FLOAT", "DOUBLE"):
        return _same("FLOAT")
    if physical in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY", "BINARY"):
        return TEXT_FROM_BYTES if original in _TEXT_BYTES else BINARY
    return _same("VARCHAR", f"Parquet type {physical}/{logical} not recognised: kept as text")


def _from_original(original: str, column: dict[str, Any]) -> SnowflakeType:
    """A column of a table with no files (no Parquet type): from what RDS says it exports."""
    if original in _INTEGERS:
        return _same(f"NUMBER({_INTEGERS[original]},0)")
    if original == "bigint unsigned":
        return _same("NUMBER(20,0)")
    if original in ("boolean", "bool"):
        return _same("BOOLEAN")
    if original in ("double", "double precision", "float", "real", "float4", "float8"):
        return _same("FLOAT")
    if original in ("decimal", "numeric") and column.get("precision") is not None:
        precision, scale = int(column["precision"]), int(column.get("scale") or 0)
        if precision <= MAX_NUMBER_PRECISION and not str(original).startswith("num"):
            return _same(f"NUMBER({precision},{scale})")
    if original in _NTZ or original == "timestamp":
        exported = str(column.get("exported_type") or "").upper()
        if "STRING" not in exported and "BYTE_ARRAY" not in exported:
            return _timestamp(original, {"unit": "MICROS"})
    if original in ("bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"):
        return BINARY
    return _string(original, column)
