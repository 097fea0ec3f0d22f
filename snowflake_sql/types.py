"""Source column types of an RDS snapshot export -> Snowflake column types.

Sources:

* the RDS user guide page "Data conversion when exporting to an Amazon S3 bucket"
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.DataTypes.html),
  which lists, for MySQL/MariaDB and for PostgreSQL, the Parquet type each source type is
  written as. The one row this module depends on by name is MySQL ``BIGINT UNSIGNED``, which
  the page lists as a fixed-length byte array annotated ``DECIMAL(20,0)`` (Parquet has no
  unsigned 64-bit integer);
* Snowflake's data type reference (https://docs.snowflake.com/en/sql-reference/data-types):
  ``NUMBER`` precision is at most 38 and scale at most 37; ``FLOAT`` is 64-bit;
  ``TIMESTAMP_NTZ``/``TIMESTAMP_TZ``/``TIME`` take a fractional-seconds precision of 0 to 9;
  ``VARCHAR``'s default maximum length is 16,777,216; ``BINARY`` holds at most 8 MB;
  ``VARIANT`` holds semi-structured data.

The mapping is driven by ``original_type`` (the type the source database reports, e.g.
PostgreSQL's ``timestamp with time zone`` or MySQL's ``bigint unsigned``), with precision,
scale, length and datetime precision from the manifest. Whatever Parquet type RDS wrote, the
COPY casts it to the column type chosen here; a value that cannot be cast fails the load of
that table, which is why the choices below err towards types that hold every source value.

Anything not listed maps to ``VARCHAR`` with a comment in the DDL saying the type was not
recognised, so that a new source type shows up in review instead of failing a load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

MAX_NUMBER_PRECISION: Final = 38
MAX_NUMBER_SCALE: Final = 37
MAX_FRACTION_DIGITS: Final = 9
MAX_VARCHAR: Final = 16_777_216
DEFAULT_FRACTION_DIGITS: Final = 6
"""Timestamps whose precision the manifest does not give: microseconds, the unit both
PostgreSQL and MySQL store at most, and what Parquet TIMESTAMP_MICROS carries."""


@dataclass(frozen=True)
class SnowflakeType:
    """The column type in the target table, and how the load gets there."""

    sql: str
    """The target column's type, e.g. ``NUMBER(12,2)``."""
    staging_sql: str
    """The staging column's type: what COPY can write from the Parquet value."""
    convert: str = "{}"
    """The expression, with ``{}`` for the staging column, that INSERT ... SELECT applies."""
    comment: str | None = None
    """A note to put beside the column in the DDL (unrecognised type, documented choice)."""


def _same(sql: str, comment: str | None = None) -> SnowflakeType:
    return SnowflakeType(sql=sql, staging_sql=sql, comment=comment)


# Integer types: NUMBER(p,0) wide enough for the type's full range.
_INTEGERS: Final[dict[str, int]] = {
    "smallint": 5,
    "int2": 5,
    "smallserial": 5,
    "integer": 10,
    "int": 10,
    "int4": 10,
    "serial": 10,
    "bigint": 19,
    "int8": 19,
    "bigserial": 19,
    # MySQL / MariaDB
    "tinyint": 3,
    "mediumint": 7,
    "year": 4,
    "tinyint unsigned": 3,
    "smallint unsigned": 5,
    "mediumint unsigned": 8,
    "int unsigned": 10,
    "integer unsigned": 10,
    # exported as DECIMAL(20,0) (RDS page above): 2**64-1 has 20 digits
    "bigint unsigned": 20,
}
_FLOATS: Final = frozenset(
    {"real", "float4", "float", "double precision", "float8", "double", "double unsigned"}
)
_BOOLEANS: Final = frozenset({"boolean", "bool"})
_DECIMALS: Final = frozenset({"numeric", "decimal", "dec", "fixed", "decimal unsigned"})
_TEXT: Final = frozenset(
    {
        "text",
        "character varying",
        "varchar",
        "character",
        "char",
        "bpchar",
        "name",
        "citext",
        # MySQL / MariaDB
        "tinytext",
        "mediumtext",
        "longtext",
        "enum",
        "set",
    }
)
_BINARY: Final = frozenset(
    {"bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"}
)
_JSON: Final = frozenset({"json", "jsonb"})
_TS_NTZ: Final = frozenset({"timestamp without time zone", "datetime"})
# MySQL's TIMESTAMP stores an instant (kept in UTC, shown in the session's zone): an instant
# is what TIMESTAMP_TZ holds. PostgreSQL never reports a bare "timestamp" in its catalog: it
# says "timestamp without time zone", mapped above.
_TS_TZ: Final = frozenset({"timestamp with time zone", "timestamptz", "timestamp"})
_TIME: Final = frozenset({"time without time zone", "time"})

_ARGS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def _base(original_type: str) -> tuple[str, tuple[int, int | None] | None]:
    """``numeric(12, 2)`` -> (``numeric``, (12, 2)); lower case, arguments removed."""
    text = " ".join(original_type.strip().lower().split())
    args = None
    match = _ARGS.search(text)
    if match:
        args = (int(match.group(1)), int(match.group(2)) if match.group(2) else None)
        text = " ".join((text[: match.start()] + text[match.end() :]).split())
    return text, args


def _fraction(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, MAX_FRACTION_DIGITS)
    return DEFAULT_FRACTION_DIGITS


def _decimal(precision: int | None, scale: int | None) -> SnowflakeType:
    if precision is None or scale is None:
        # An unbounded PostgreSQL numeric (or one whose scale the export does not say) can
        # hold more than 38 digits, any scale, and NaN. Documented choice: VARCHAR keeps every
        # value exactly and never fails a load; query it with TRY_TO_NUMBER(col, 38, s).
        return _same(
            "VARCHAR",
            "numeric without a known precision and scale: kept as text (exact, NaN-safe)",
        )
    scale = min(scale, MAX_NUMBER_SCALE)
    capped = min(max(precision, scale), MAX_NUMBER_PRECISION)
    comment = None
    if precision > MAX_NUMBER_PRECISION:
        comment = (
            f"source precision {precision} capped at Snowflake's {MAX_NUMBER_PRECISION}: "
            "a value with more digits fails the load"
        )
    return _same(f"NUMBER({capped},{scale})", comment)


def _varchar(length: Any) -> str:
    if isinstance(length, int) and not isinstance(length, bool) and length > 0:
        return f"VARCHAR({min(length, MAX_VARCHAR)})"
    return "VARCHAR"


def snowflake_type(column: Mapping[str, Any]) -> SnowflakeType:
    """The Snowflake type of one manifest column (``original_type``, ``precision``, ...)."""
    original = str(column.get("original_type") or "")
    base, args = _base(original)
    precision = column.get("precision")
    scale = column.get("scale")
    if args is not None:  # MySQL reports e.g. "decimal(10,2)"; the text wins when present
        precision = args[0] if base in _DECIMALS else precision
        scale = args[1] if base in _DECIMALS and args[1] is not None else scale

    if base in _INTEGERS:
        return _same(f"NUMBER({_INTEGERS[base]},0)")
    if base in _DECIMALS:
        return _decimal(precision, scale)
    if base in _FLOATS:
        return _same("FLOAT")
    if base in _BOOLEANS:
        return _same("BOOLEAN")
    if base == "date":
        return _same("DATE")
    if base in _TS_NTZ:
        return _same(f"TIMESTAMP_NTZ({_fraction(column.get('datetime_precision'))})")
    if base in _TS_TZ:
        return _same(f"TIMESTAMP_TZ({_fraction(column.get('datetime_precision'))})")
    if base in _TIME:
        return _same(f"TIME({_fraction(column.get('datetime_precision'))})")
    if base in {"time with time zone", "timetz"}:
        return _same("VARCHAR", "Snowflake has no time-of-day type with a zone: kept as text")
    if base == "uuid":
        return _same("VARCHAR(36)")
    if base in _TEXT:
        return _same(_varchar(column.get("char_length")))
    if base in _BINARY:
        return _same("BINARY")
    if base in _JSON:
        # The export writes JSON as text; COPY would store that text as a VARIANT *string*.
        # So the staging column is VARCHAR and the insert parses it into a real VARIANT.
        return SnowflakeType(sql="VARIANT", staging_sql="VARCHAR", convert="PARSE_JSON({})")
    return _same("VARCHAR", f"source type {original!r} not recognised: loaded as text")
