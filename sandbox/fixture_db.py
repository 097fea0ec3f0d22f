"""Two fixture databases, one MySQL and one PostgreSQL, as they are in the SOURCE database.

Each has a table ``all_types`` with one column for every row of AWS's data-conversion table for
its engine ("Data conversion when exporting to an Amazon S3 bucket",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html),
holding the edge values of each type; a table split over several batch folders; an empty
table; tables whose names hold a space, a ``"``, a reserved word, mixed case or ``$`` (and, on
PostgreSQL, a backslash and a backtick); and a table that RDS skips because a column name holds a
space (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html,
"Limitations").

The values are Python values of the source database, as a driver would hand them over:

* integers -> ``int``; DECIMAL/NUMERIC -> ``decimal.Decimal`` (PostgreSQL's ``NaN`` included);
  FLOAT/DOUBLE/REAL -> ``float`` (NaN and infinities included on PostgreSQL);
* text -> ``str``; binary, MySQL BIT and MySQL geometries -> ``bytes`` (a MySQL geometry is its
  internal value: a 4-byte little-endian SRID, then the WKB);
* DATE -> ``datetime.date``; MySQL DATETIME and PostgreSQL ``timestamp`` -> naive
  ``datetime.datetime``; MySQL TIMESTAMP and PostgreSQL ``timestamptz`` -> ``datetime`` in UTC;
  MySQL TIME (a duration, up to +-838:59:59) -> ``datetime.timedelta``; YEAR -> ``int``;
* PostgreSQL arrays -> ``list``; ``uuid`` -> ``uuid.UUID``; PostgreSQL ``boolean`` -> ``bool``;
* every other PostgreSQL type whose values Python has no type for (``time`` -- it holds
  ``24:00:00`` --, ``timetz``, ``interval``, ``money``, bit strings, geometric, network, range,
  composite, ``pg_lsn``, ``tsvector``, ``xml``, ``json``/``jsonb``, ``enum``) -> ``str``, as
  PostgreSQL prints the value (its text output format, ``DateStyle`` ISO, ``lc_monetary``
  en_US);
* SQL NULL -> ``None``.

The tables' rows are plain tuples in column order. This module is the definition other code
imports (the sandbox's export writer, and the Snowflake round-trip tests, which compare loaded
values with these): keep its names stable.
"""

from __future__ import annotations

import random
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

Engine = Literal["mysql", "postgres"]

DATA_TYPES_PAGE: Final = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html"
)
LIMITATIONS_PAGE: Final = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html"
)


@dataclass(frozen=True)
class FixtureColumn:
    """One column: its name, its declared type, and the row of AWS's table it exercises.

    ``doc_type`` is the "source data type" cell of the conversion table's row, spelt as the page
    spells it (``BIGINT UNSIGNED``, ``TIME WITH TIME ZONE``). ``sql_type`` is the column's type
    as declared in the source database (``decimal(38,10)``, ``timestamp(6) with time zone``).
    """

    name: str
    doc_type: str
    sql_type: str
    precision: int = 0
    scale: int = 0
    char_length: int = 0
    datetime_precision: int = 0
    nullable: bool = True


@dataclass(frozen=True)
class FixtureTable:
    """A table of a fixture database, with its rows as source values.

    ``files`` says how RDS split it: one ``(batch index, partition number)`` per data file, in
    row order (the rows are cut into that many consecutive, nearly equal slices). A table with
    no rows still has one file: see docs/sandbox.md, "Empty tables".
    ``skipped_reason`` is set for a table RDS skips (no data file, status SKIPPED).
    """

    database: str
    schema: str
    name: str
    columns: tuple[FixtureColumn, ...]
    rows: tuple[tuple[Any, ...], ...]
    files: tuple[tuple[int, int], ...] = ((1, 0),)
    skipped_reason: str | None = None

    @property
    def target(self) -> str:
        """``database.schema.table``, each part spelt as in the source database."""
        return f"{self.database}.{self.schema}.{self.name}"

    @property
    def exported(self) -> bool:
        """Whether RDS writes this table's data (False for a table RDS skips)."""
        return self.skipped_reason is None

    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column name: value}``."""
        names = self.column_names()
        return [dict(zip(names, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class FixtureDatabase:
    """One source database of one engine."""

    engine: Engine
    name: str
    tables: tuple[FixtureTable, ...]

    def table(self, name: str) -> FixtureTable:
        """The table called ``name`` (its source spelling)."""
        for table in self.tables:
            if table.name == name:
                return table
        known = ", ".join(t.name for t in self.tables)
        raise KeyError(f"{self.name} has no table {name!r} ({known})")

    @property
    def row_count(self) -> int:
        """Rows in the tables RDS exports."""
        return sum(len(t.rows) for t in self.tables if t.exported)


def _rows(
    columns: tuple[FixtureColumn, ...], values: dict[str, list[Any]]
) -> tuple[tuple[Any, ...], ...]:
    names = [c.name for c in columns]
    if set(values) != set(names):
        raise ValueError(f"values for {sorted(set(values) ^ set(names))} do not match columns")
    lengths = {len(v) for v in values.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns have different numbers of values: {lengths}")
    return tuple(zip(*(values[n] for n in names), strict=True))


def _col(name: str, doc_type: str, sql_type: str, **kwargs: Any) -> FixtureColumn:
    return FixtureColumn(name, doc_type, sql_type, **kwargs)


# --- MySQL geometries: SRID (4 bytes, little-endian) + WKB --------------------------------

_WKB_POINT, _WKB_LINESTRING, _WKB_POLYGON = 1, 2, 3
_WKB_MULTIPOINT, _WKB_MULTILINESTRING, _WKB_MULTIPOLYGON, _WKB_COLLECTION = 4, 5, 6, 7


def _wkb(kind: int, body: bytes) -> bytes:
    return struct.pack("<BI", 1, kind) + body


def _pt(x: float, y: float) -> bytes:
    return struct.pack("<dd", x, y)


def _wkb_point(x: float, y: float) -> bytes:
    return _wkb(_WKB_POINT, _pt(x, y))


def _wkb_line(*points: tuple[float, float]) -> bytes:
    return _wkb(_WKB_LINESTRING, struct.pack("<I", len(points)) + b"".join(_pt(*p) for p in points))


def _wkb_polygon(*points: tuple[float, float]) -> bytes:
    ring = struct.pack("<I", len(points)) + b"".join(_pt(*p) for p in points)
    return _wkb(_WKB_POLYGON, struct.pack("<I", 1) + ring)


def _wkb_multi(kind: int, *parts: bytes) -> bytes:
    return _wkb(kind, struct.pack("<I", len(parts)) + b"".join(parts))


def mysql_geometry(wkb: bytes, srid: int = 0) -> bytes:
    """MySQL's internal geometry value: the SRID, then the WKB."""
    return struct.pack("<I", srid) + wkb


_SQUARE = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 0.0))

# --- edge values shared by both engines ------------------------------------------------------

DEC38_10_MAX: Final = Decimal("9999999999999999999999999999.9999999999")
"""The largest DECIMAL(38,10): 28 digits before the point, 10 after."""
DEC38_10_MIN: Final = Decimal("-9999999999999999999999999999.9999999999")
"""The smallest DECIMAL(38,10), written out: ``-DEC38_10_MAX`` would round to 28 digits."""
UNSIGNED_64_MAX: Final = 2**64 - 1
TEXT_EDGE: Final = "emoji \U0001f600 \"double\" 'single' `tick` back\\slash\nnew line\r\ntab\tend"
"""Text with an emoji, both quotes, a backtick, a backslash, LF, CRLF and a tab."""
NON_UTF8: Final = b"\xff\xfe\x00\xc3\x28 not utf-8 \x80"
"""Bytes that are not UTF-8 (an invalid lead byte, a lone continuation byte, a NUL)."""
LONG_TEXT: Final = "x" * 5000

_DT_TYPICAL: Final = datetime(2024, 2, 29, 12, 34, 56, 789012)
_DT_MIN: Final = datetime(1000, 1, 1, 0, 0, 0)
_DT_MAX: Final = datetime(9999, 12, 31, 23, 59, 59, 999999)
_DT_EPOCH: Final = datetime(1970, 1, 1)
_TIME_MAX: Final = timedelta(hours=838, minutes=59, seconds=59)


def _five(typical: Any, low: Any, high: Any, fifth: Any) -> list[Any]:
    """The five rows of ``all_types``: typical, lowest, highest, NULL, and an odd value."""
    return [typical, low, high, None, fifth]


# --- MySQL -----------------------------------------------------------------------------------

MYSQL_DATABASE: Final = "retail"

_MYSQL_TYPES: Final = (
    _col("id", "INT", "int", precision=10, nullable=False),
    # numeric data types
    _col("c_bigint", "BIGINT", "bigint", precision=19),
    _col("c_bigint_unsigned", "BIGINT UNSIGNED", "bigint unsigned", precision=20),
    _col("c_bit", "BIT", "bit(10)", precision=10),
    _col("c_decimal_9_2", "DECIMAL", "decimal(9,2)", precision=9, scale=2),
    _col("c_decimal_18_4", "DECIMAL", "decimal(18,4)", precision=18, scale=4),
    _col("c_decimal_38_10", "DECIMAL", "decimal(38,10)", precision=38, scale=10),
    _col("c_decimal_65_30", "DECIMAL", "decimal(65,30)", precision=65, scale=30),
    _col("c_double", "DOUBLE", "double", precision=22),
    _col("c_float", "FLOAT", "float", precision=12),
    _col("c_int", "INT", "int", precision=10),
    _col("c_int_unsigned", "INT UNSIGNED", "int unsigned", precision=10),
    _col("c_mediumint", "MEDIUMINT", "mediumint", precision=7),
    _col("c_mediumint_unsigned", "MEDIUMINT UNSIGNED", "mediumint unsigned", precision=8),
    _col("c_numeric_9_0", "NUMERIC", "decimal(9,0)", precision=9),
    _col("c_numeric_18_0", "NUMERIC", "decimal(18,0)", precision=18),
    _col("c_numeric_30_5", "NUMERIC", "decimal(30,5)", precision=30, scale=5),
    _col("c_numeric_50_10", "NUMERIC", "decimal(50,10)", precision=50, scale=10),
    _col("c_smallint", "SMALLINT", "smallint", precision=5),
    _col("c_smallint_unsigned", "SMALLINT UNSIGNED", "smallint unsigned", precision=5),
    _col("c_tinyint", "TINYINT", "tinyint", precision=3),
    _col("c_tinyint_unsigned", "TINYINT UNSIGNED", "tinyint unsigned", precision=3),
    # string data types
    _col("c_binary", "BINARY", "binary(4)", char_length=4),
    _col("c_blob", "BLOB", "blob", char_length=65535),
    _col("c_char", "CHAR", "char(10)", char_length=10),
    _col("c_enum", "ENUM", "enum('small','medium','large')", char_length=6),
    _col("c_linestring", "LINESTRING", "linestring"),
    _col("c_longblob", "LONGBLOB", "longblob", char_length=4294967295),
    _col("c_longtext", "LONGTEXT", "longtext", char_length=4294967295),
    _col("c_mediumblob", "MEDIUMBLOB", "mediumblob", char_length=16777215),
    _col("c_mediumtext", "MEDIUMTEXT", "mediumtext", char_length=16777215),
    _col("c_multilinestring", "MULTILINESTRING", "multilinestring"),
    _col("c_set", "SET", "set('a','b','c')", char_length=5),
    _col("c_text", "TEXT", "text", char_length=65535),
    _col("c_tinyblob", "TINYBLOB", "tinyblob", char_length=255),
    _col("c_tinytext", "TINYTEXT", "tinytext", char_length=255),
    _col("c_varbinary", "VARBINARY", "varbinary(16)", char_length=16),
    _col("c_varchar", "VARCHAR", "varchar(255)", char_length=255),
    # date and time data types
    _col("c_date", "DATE", "date"),
    _col("c_datetime", "DATETIME", "datetime(6)", datetime_precision=6),
    _col("c_time", "TIME", "time"),
    _col("c_timestamp", "TIMESTAMP", "timestamp(6)", datetime_precision=6),
    _col("c_year", "YEAR", "year"),
    # geometric data types
    _col("c_geometry", "GEOMETRY", "geometry"),
    _col("c_geometrycollection", "GEOMETRYCOLLECTION", "geomcollection"),
    _col("c_multipoint", "MULTIPOINT", "multipoint"),
    _col("c_multipolygon", "MULTIPOLYGON", "multipolygon"),
    _col("c_point", "POINT", "point"),
    _col("c_polygon", "POLYGON", "polygon"),
    # JSON data type
    _col("c_json", "JSON", "json"),
)

_D = Decimal
_MYSQL_VALUES: Final[dict[str, list[Any]]] = {
    "id": [1, 2, 3, 4, 5],
    "c_bigint": _five(42, -(2**63), 2**63 - 1, 0),
    "c_bigint_unsigned": _five(42, 0, UNSIGNED_64_MAX, 2**63),
    "c_bit": _five(b"\x02\x05", b"\x00\x00", b"\x03\xff", b"\x00\x01"),
    "c_decimal_9_2": _five(_D("1234.56"), _D("-9999999.99"), _D("9999999.99"), _D("0.00")),
    "c_decimal_18_4": _five(
        _D("12345678.1234"), _D("-99999999999999.9999"), _D("99999999999999.9999"), _D("0.0000")
    ),
    "c_decimal_38_10": _five(_D("1.5000000000"), DEC38_10_MIN, DEC38_10_MAX, _D("0E-10")),
    "c_decimal_65_30": _five(
        _D("3.141592653589793238462643383279502884"[:32]),
        _D("-" + "9" * 35 + "." + "9" * 30),
        _D("9" * 35 + "." + "9" * 30),
        _D("0." + "0" * 29 + "1"),
    ),
    "c_double": _five(1.5, -1.7976931348623157e308, 1.7976931348623157e308, 5e-324),
    "c_float": _five(1.5, -3.4028234663852886e38, 3.4028234663852886e38, 0.0),
    "c_int": _five(7, -(2**31), 2**31 - 1, 0),
    "c_int_unsigned": _five(7, 0, 2**32 - 1, 2**31),
    "c_mediumint": _five(7, -(2**23), 2**23 - 1, 0),
    "c_mediumint_unsigned": _five(7, 0, 2**24 - 1, 2**23),
    "c_numeric_9_0": _five(_D("123456789"), _D("-999999999"), _D("999999999"), _D("0")),
    "c_numeric_18_0": _five(_D("2147483648"), _D("-" + "9" * 18), _D("9" * 18), _D("0")),
    "c_numeric_30_5": _five(
        _D("9223372036854775808.00000"),
        _D("-" + "9" * 25 + ".99999"),
        _D("9" * 25 + ".99999"),
        _D("0.00001"),
    ),
    "c_numeric_50_10": _five(
        _D("1.0000000000"),
        _D("-" + "9" * 40 + "." + "9" * 10),
        _D("9" * 40 + "." + "9" * 10),
        _D("0E-10"),
    ),
    "c_smallint": _five(7, -(2**15), 2**15 - 1, 0),
    "c_smallint_unsigned": _five(7, 0, 2**16 - 1, 2**15),
    "c_tinyint": _five(7, -128, 127, 0),
    "c_tinyint_unsigned": _five(7, 0, 255, 128),
    "c_binary": _five(b"ab\x00\x00", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xc3\x28\x80\x00"),
    "c_blob": _five(b"\x00\x01blob", b"", b"\xff" * 300, NON_UTF8),
    "c_char": _five("abc", "", "ZZZZZZZZZZ", "na\u00efve \U0001f600"),
    "c_enum": _five("small", "small", "large", "medium"),
    "c_linestring": _five(
        mysql_geometry(_wkb_line((0, 0), (1, 1))),
        mysql_geometry(_wkb_line((-180, -90), (180, 90))),
        mysql_geometry(_wkb_line((1e300, -1e300), (0, 0)), srid=4326),
        mysql_geometry(_wkb_line((0.5, 0.25), (0.75, 0.125))),
    ),
    "c_longblob": _five(b"long\x00blob", b"", bytes(range(256)) * 20, NON_UTF8),
    "c_longtext": _five("long text", "", LONG_TEXT, TEXT_EDGE),
    "c_mediumblob": _five(b"medium", b"", b"\x00" * 1000, NON_UTF8),
    "c_mediumtext": _five("medium text", "", "\u00e9" * 2000, TEXT_EDGE),
    "c_multilinestring": _five(
        mysql_geometry(_wkb_multi(_WKB_MULTILINESTRING, _wkb_line((0, 0), (1, 1)))),
        mysql_geometry(
            _wkb_multi(_WKB_MULTILINESTRING, _wkb_line((0, 0), (1, 1)), _wkb_line((2, 2), (3, 3)))
        ),
        mysql_geometry(_wkb_multi(_WKB_MULTILINESTRING, _wkb_line((-1, -1), (1, 1))), srid=4326),
        mysql_geometry(_wkb_multi(_WKB_MULTILINESTRING, _wkb_line((5, 5), (6, 6)))),
    ),
    "c_set": _five("a,b", "", "a,b,c", "c"),
    "c_text": _five("hello", "", "t" * 65535, TEXT_EDGE),
    "c_tinyblob": _five(b"tiny", b"", b"\xfe" * 255, NON_UTF8),
    "c_tinytext": _five("tiny", "", "T" * 255, "quote \" and ' and \n"),
    "c_varbinary": _five(b"\x01\x02", b"", b"\xff" * 16, b"\x80\x81\x82"),
    "c_varchar": _five("Ada Lovelace", "", "V" * 255, TEXT_EDGE),
    "c_date": _five(date(2024, 2, 29), date(1000, 1, 1), date(9999, 12, 31), date(1970, 1, 1)),
    "c_datetime": _five(_DT_TYPICAL, _DT_MIN, _DT_MAX, _DT_EPOCH),
    "c_time": _five(
        timedelta(hours=12, minutes=34, seconds=56), -_TIME_MAX, _TIME_MAX, timedelta(0)
    ),
    # MySQL TIMESTAMP: 1970-01-01 00:00:01 UTC to 2038-01-19 03:14:07.999999 UTC
    "c_timestamp": _five(
        _DT_TYPICAL.replace(tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC),
        datetime(2000, 1, 1, tzinfo=UTC),
    ),
    "c_year": _five(2024, 1901, 2155, 0),
    "c_geometry": _five(
        mysql_geometry(_wkb_point(1, 2)),
        mysql_geometry(_wkb_polygon(*_SQUARE)),
        mysql_geometry(_wkb_point(-1e308, 1e308), srid=4326),
        mysql_geometry(_wkb_line((0, 0), (0, 1))),
    ),
    "c_geometrycollection": _five(
        mysql_geometry(_wkb_multi(_WKB_COLLECTION, _wkb_point(1, 1), _wkb_line((0, 0), (1, 1)))),
        mysql_geometry(_wkb_multi(_WKB_COLLECTION)),
        mysql_geometry(_wkb_multi(_WKB_COLLECTION, _wkb_polygon(*_SQUARE)), srid=4326),
        mysql_geometry(_wkb_multi(_WKB_COLLECTION, _wkb_point(0, 0))),
    ),
    "c_multipoint": _five(
        mysql_geometry(_wkb_multi(_WKB_MULTIPOINT, _wkb_point(1, 1), _wkb_point(2, 2))),
        mysql_geometry(_wkb_multi(_WKB_MULTIPOINT, _wkb_point(-180, -90))),
        mysql_geometry(_wkb_multi(_WKB_MULTIPOINT, _wkb_point(180, 90)), srid=4326),
        mysql_geometry(_wkb_multi(_WKB_MULTIPOINT, _wkb_point(0, 0))),
    ),
    "c_multipolygon": _five(
        mysql_geometry(_wkb_multi(_WKB_MULTIPOLYGON, _wkb_polygon(*_SQUARE))),
        mysql_geometry(
            _wkb_multi(_WKB_MULTIPOLYGON, _wkb_polygon(*_SQUARE), _wkb_polygon(*_SQUARE))
        ),
        mysql_geometry(_wkb_multi(_WKB_MULTIPOLYGON, _wkb_polygon(*_SQUARE)), srid=4326),
        mysql_geometry(_wkb_multi(_WKB_MULTIPOLYGON, _wkb_polygon(*_SQUARE))),
    ),
    "c_point": _five(
        mysql_geometry(_wkb_point(1.5, -2.25)),
        mysql_geometry(_wkb_point(-180, -90)),
        mysql_geometry(_wkb_point(180, 90), srid=4326),
        mysql_geometry(_wkb_point(0, 0)),
    ),
    "c_polygon": _five(
        mysql_geometry(_wkb_polygon(*_SQUARE)),
        mysql_geometry(_wkb_polygon((0, 0), (0, -1), (-1, -1), (0, 0))),
        mysql_geometry(_wkb_polygon(*_SQUARE), srid=4326),
        mysql_geometry(_wkb_polygon((0, 0), (0, 2), (2, 2), (0, 0))),
    ),
    "c_json": _five(
        '{"a": 1, "b": [true, false, null], "c": "\u00e9\U0001f600"}',
        "{}",
        '[1.5, "x", {"nested": {"deep": [1, 2, 3]}}]',
        '"a string with \\"quotes\\" and \\n"',
    ),
}


def _order_lines(database: str, seed: str, count: int) -> dict[str, list[Any]]:
    """Deterministic order lines: id, sku, quantity, price, ordered_at."""
    rng = random.Random(f"{database}:{seed}")  # nosec B311
    return {
        "id": list(range(1, count + 1)),
        "Sku": [f"SKU-{rng.randrange(10_000):04d}" for _ in range(count)],
        "quantity": [rng.randint(1, 9) for _ in range(count)],
        "unit_price": [Decimal(rng.randrange(100, 100_000)) / 100 for _ in range(count)],
    }


ORDER_LINE_COUNT: Final = 120
"""Rows of the table spread over several batch folders."""

# Spread over three batch folders, with gaps in the partition numbers (as RDS's own example
# shows: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.FileNames.html).
_SPREAD_FILES: Final = ((1, 0), (1, 2), (2, 0), (3, 1), (3, 4))


SKIPPED_COLUMN_NAME: Final = "COLUMN_NAME_NOT_SUPPORTED"
"""The sandbox's reason for a table RDS skips because a column name holds a space.

AWS documents that such tables are skipped (LIMITATIONS_PAGE), not the reason text that
``export_tables_info`` then gives: this string is the sandbox's own."""


# --- PostgreSQL ------------------------------------------------------------------------------

POSTGRES_DATABASE: Final = "shop"
POSTGRES_SCHEMA: Final = "public"

_POSTGRES_TYPES: Final = (
    _col("id", "INTEGER", "integer", precision=32, nullable=False),
    # numeric data types
    _col("c_bigint", "BIGINT", "bigint", precision=64),
    _col("c_bigserial", "BIGSERIAL", "bigserial", precision=64, nullable=False),
    _col("c_decimal", "DECIMAL", "numeric(38,10)", precision=38, scale=10),
    _col("c_numeric", "DECIMAL", "numeric"),
    _col("c_double", "DOUBLE PRECISION", "double precision", precision=53),
    _col("c_integer", "INTEGER", "integer", precision=32),
    _col("c_money", "MONEY", "money"),
    _col("c_real", "REAL", "real", precision=24),
    _col("c_serial", "SERIAL", "serial", precision=32, nullable=False),
    _col("c_smallint", "SMALLINT", "smallint", precision=16),
    _col("c_smallserial", "SMALLSERIAL", "smallserial", precision=16, nullable=False),
    # string and related data types
    _col("c_int_array", "ARRAY", "integer[]"),
    _col("c_text_array", "ARRAY", "text[]"),
    _col("c_bit", "BIT", "bit(4)", char_length=4),
    _col("c_varbit", "BIT VARYING", "bit varying(16)", char_length=16),
    _col("c_bytea", "BYTEA", "bytea"),
    _col("c_char", "CHAR", "character(1)", char_length=1),
    _col("c_char_n", "CHAR(N)", "character(10)", char_length=10),
    _col("c_enum", "ENUM", "mood"),
    _col("c_name", "NAME", "name"),
    _col("c_text", "TEXT", "text"),
    _col("c_tsvector", "TEXT SEARCH", "tsvector"),
    _col("c_varchar", "VARCHAR(N)", "character varying(255)", char_length=255),
    _col("c_xml", "XML", "xml"),
    # date and time data types
    _col("c_date", "DATE", "date"),
    _col("c_interval", "INTERVAL", "interval", datetime_precision=6),
    _col("c_time", "TIME", "time without time zone", datetime_precision=6),
    _col("c_timetz", "TIME WITH TIME ZONE", "time with time zone", datetime_precision=6),
    _col("c_timestamp", "TIMESTAMP", "timestamp without time zone", datetime_precision=6),
    _col(
        "c_timestamptz",
        "TIMESTAMP WITH TIME ZONE",
        "timestamp with time zone",
        datetime_precision=6,
    ),
    # geometric data types
    _col("c_box", "BOX", "box"),
    _col("c_circle", "CIRCLE", "circle"),
    _col("c_line", "LINE", "line"),
    _col("c_lseg", "LINESEGMENT", "lseg"),
    _col("c_path", "PATH", "path"),
    _col("c_point", "POINT", "point"),
    _col("c_polygon", "POLYGON", "polygon"),
    # JSON data types
    _col("c_json", "JSON", "json"),
    _col("c_jsonb", "JSONB", "jsonb"),
    # other data types
    _col("c_boolean", "BOOLEAN", "boolean"),
    _col("c_cidr", "CIDR", "cidr"),
    _col("c_composite", "COMPOSITE", "address"),
    _col("c_domain", "DOMAIN", "positive_int"),
    _col("c_inet", "INET", "inet"),
    _col("c_macaddr", "MACADDR", "macaddr"),
    _col("c_pg_lsn", "PG_LSN", "pg_lsn"),
    _col("c_range", "RANGE", "int4range"),
    _col("c_uuid", "UUID", "uuid"),
)
"""One column per row of AWS's PostgreSQL table, except OBJECT IDENTIFIER: the page gives it no
Parquet type ("N/A"), so what RDS does with an ``oid`` column is undocumented and the fixture
has none."""

# an inet value of the fixture; nothing binds to it
_ANY_IPV4: Final = "0.0.0.0"  # noqa: S104  # nosec B104

_POSTGRES_VALUES: Final[dict[str, list[Any]]] = {
    "id": [1, 2, 3, 4, 5],
    "c_bigint": _five(42, -(2**63), 2**63 - 1, 0),
    "c_bigserial": [1, 1, 2**63 - 1, 4, 5],  # serial columns are NOT NULL
    "c_decimal": _five(_D("1.5000000000"), DEC38_10_MIN, DEC38_10_MAX, _D("NaN")),
    "c_numeric": _five(
        _D("3.14159265358979323846264338327950288419716939937510"),
        _D("-1" + "0" * 100),
        _D("1" + "0" * 100),
        _D("0.000000000000000000000000000001"),
    ),
    "c_double": _five(1.5, -1.7976931348623157e308, 1.7976931348623157e308, float("nan")),
    "c_integer": _five(7, -(2**31), 2**31 - 1, 0),
    "c_money": _five(
        "$1,234.56", "-$92,233,720,368,547,758.08", "$92,233,720,368,547,758.07", "$0.00"
    ),
    "c_real": _five(1.5, -3.4028234663852886e38, 3.4028234663852886e38, float("inf")),
    "c_serial": [1, 1, 2**31 - 1, 4, 5],
    "c_smallint": _five(7, -(2**15), 2**15 - 1, 0),
    "c_smallserial": [1, 1, 2**15 - 1, 4, 5],
    "c_int_array": _five([1, 2, 3], [], [-(2**31), None, 2**31 - 1], [[1, 2], [3, 4]]),
    "c_text_array": _five(["a", "b"], [], ['with "quote"', "with,comma", None], ["", "NULL"]),
    "c_bit": _five("1010", "0000", "1111", "0101"),
    "c_varbit": _five("1", "", "1" * 16, "0"),
    "c_bytea": _five(b"\x00\x01bytea", b"", b"\xff" * 300, NON_UTF8),
    "c_char": _five("a", " ", "\u00e9", '"'),
    "c_char_n": _five("abc       ", "          ", "ZZZZZZZZZZ", "\U0001f600         "),
    "c_enum": _five("ok", "sad", "happy", "ok"),
    "c_name": _five("pg_class", "", "n" * 63, "Mixed Case"),
    "c_text": _five("hello", "", LONG_TEXT, TEXT_EDGE),
    "c_tsvector": _five("'cat':2 'fat':1", "", "'a':1 'b':2 'c':3", "'\u00e9t\u00e9':1"),
    "c_varchar": _five("Ada Lovelace", "", "V" * 255, TEXT_EDGE),
    "c_xml": _five('<a b="1">x</a>', "", "<r>" + "y" * 1000 + "</r>", "<t>\u00e9 &amp; \n</t>"),
    "c_date": _five(date(2024, 2, 29), date(1000, 1, 1), date(9999, 12, 31), date(1970, 1, 1)),
    "c_interval": _five(
        "1 year 2 mons 3 days 04:05:06.789", "-178000000 years", "178000000 years", "00:00:00"
    ),
    "c_time": _five("12:34:56.789012", "00:00:00", "24:00:00", "23:59:59.999999"),
    "c_timetz": _five("12:34:56.789012+02", "00:00:00+15:59", "24:00:00-15:59", "23:59:59+00"),
    "c_timestamp": _five(_DT_TYPICAL, _DT_MIN, _DT_MAX, _DT_EPOCH),
    "c_timestamptz": _five(
        _DT_TYPICAL.replace(tzinfo=UTC),
        _DT_MIN.replace(tzinfo=UTC),
        _DT_MAX.replace(tzinfo=UTC),
        _DT_EPOCH.replace(tzinfo=UTC),
    ),
    "c_box": _five(
        "(1,1),(0,0)", "(0,0),(0,0)", "(1e+300,1e+300),(-1e+300,-1e+300)", "(2,2),(1,1)"
    ),
    "c_circle": _five("<(0,0),1>", "<(-1,-1),0>", "<(1e+300,1e+300),1e+300>", "<(1.5,2.5),3.5>"),
    "c_line": _five("{1,-1,0}", "{0,1,0}", "{1e+300,-1e+300,1}", "{1,0,-2}"),
    "c_lseg": _five("[(0,0),(1,1)]", "[(0,0),(0,0)]", "[(-1e+300,0),(1e+300,0)]", "[(1,2),(3,4)]"),
    "c_path": _five(
        "((0,0),(1,1),(2,0))", "[(0,0),(1,1)]", "((0,0),(1e+300,1e+300))", "[(5,5),(6,6)]"
    ),
    "c_point": _five("(1.5,-2.25)", "(-180,-90)", "(1e+300,-1e+300)", "(0,0)"),
    "c_polygon": _five(
        "((0,0),(1,1),(1,0))", "((0,0))", "((0,0),(1e+300,0),(0,1e+300))", "((1,1),(2,2),(2,1))"
    ),
    "c_json": _five(
        '{"a": 1, "b": [true, false, null]}', "{}", '{"a":1,  "a":2}', '"\u00e9\U0001f600\\n"'
    ),
    "c_jsonb": _five(
        '{"a": 1, "b": [true, false, null]}', "{}", '{"a": 2}', '"\u00e9\U0001f600\\n"'
    ),
    "c_boolean": _five(True, False, True, False),
    "c_cidr": _five(
        "192.168.0.0/24", "0.0.0.0/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "::/0"
    ),
    "c_composite": _five('("1 Main St",12345)', "(,)", '("with \\"quote\\"",99999)', '("",0)'),
    "c_domain": _five(1, 1, 2**31 - 1, 42),
    "c_inet": _five(
        "192.168.0.1",
        _ANY_IPV4,
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::1",
    ),
    "c_macaddr": _five(
        "08:00:2b:01:02:03", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "0a:0b:0c:0d:0e:0f"
    ),
    "c_pg_lsn": _five("16/B374D848", "0/0", "FFFFFFFF/FFFFFFFF", "0/1"),
    "c_range": _five("[1,10)", "empty", "[-2147483648,2147483647)", "(,)"),
    "c_uuid": _five(
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        uuid.UUID(int=0),
        uuid.UUID(int=2**128 - 1),
        uuid.UUID("00000000-0000-4000-8000-000000000001"),
    ),
}


@dataclass(frozen=True)
class _Kinds:
    """An engine's spelling of the few column types the small tables use."""

    integer: tuple[str, str, int]  # doc type, declared type, precision
    smallint: tuple[str, str, int]
    text: tuple[str, str]  # doc type, declared type ({n}: its length, if it has one)
    decimal: tuple[str, str]  # doc type, declared type with {p} and {s}

    def int_col(self, name: str, *, nullable: bool = True) -> FixtureColumn:
        doc, sql, precision = self.integer
        return _col(name, doc, sql, precision=precision, nullable=nullable)

    def small_col(self, name: str) -> FixtureColumn:
        doc, sql, precision = self.smallint
        return _col(name, doc, sql, precision=precision)

    def text_col(self, name: str, length: int) -> FixtureColumn:
        doc, sql = self.text
        sized = "{n}" in sql
        return _col(name, doc, sql.format(n=length), char_length=length if sized else 0)

    def decimal_col(self, name: str, precision: int, scale: int) -> FixtureColumn:
        doc, sql = self.decimal
        return _col(name, doc, sql.format(p=precision, s=scale), precision=precision, scale=scale)


_RESERVED_VALUES: Final[dict[str, list[Any]]] = {
    "id": [1, 2, 3],
    "from": ["here", "", None],
    "Group": [1, None, -1],
    "price$": [Decimal("1.00"), Decimal("-0.01"), None],
    'say"hi"': ['"hi"', "", None],
}


def _tables(
    db: str,
    schema: str,
    *,
    lines_schema: str,
    kinds: _Kinds,
    all_types: FixtureTable,
    awkward_names: tuple[str, ...],
) -> tuple[FixtureTable, ...]:
    """``all_types``, then the tables both engines share: ``Order Lines`` over batch folders,
    the awkward names, an empty table and a table RDS skips."""
    lines_cols = (
        kinds.int_col("id", nullable=False),
        kinds.text_col("Sku", 32),
        kinds.small_col("quantity"),
        kinds.decimal_col("unit_price", 10, 2),
    )
    reserved_cols = (
        kinds.int_col("id", nullable=False),
        kinds.text_col("from", 20),
        kinds.int_col("Group"),
        kinds.decimal_col("price$", 9, 2),
        kinds.text_col('say"hi"', 20),
    )
    reserved_rows = _rows(reserved_cols, _RESERVED_VALUES)
    spaced_cols = (kinds.int_col("id", nullable=False), kinds.decimal_col("unit price", 9, 2))
    lines = _rows(lines_cols, _order_lines(db, "lines", ORDER_LINE_COUNT))
    return (
        all_types,
        FixtureTable(db, lines_schema, "Order Lines", lines_cols, lines, files=_SPREAD_FILES),
        *(FixtureTable(db, schema, name, reserved_cols, reserved_rows) for name in awkward_names),
        FixtureTable(
            db,
            schema,
            "empty_table",
            (kinds.int_col("id", nullable=False), kinds.text_col("note", 10)),
            (),
        ),
        FixtureTable(
            db,
            schema,
            "spaced_columns",
            spaced_cols,
            ((1, Decimal("1.00")),),
            skipped_reason=SKIPPED_COLUMN_NAME,
        ),
    )


_MYSQL_KINDS: Final = _Kinds(
    ("INT", "int", 10), ("SMALLINT", "smallint", 5), ("VARCHAR", "varchar({n})"),
    ("DECIMAL", "decimal({p},{s})"),
)  # fmt: skip
_POSTGRES_KINDS: Final = _Kinds(
    ("INTEGER", "integer", 32), ("SMALLINT", "smallint", 16), ("TEXT", "text"),
    ("DECIMAL", "numeric({p},{s})"),
)  # fmt: skip

MYSQL: Final = FixtureDatabase(
    "mysql",
    MYSQL_DATABASE,
    _tables(
        MYSQL_DATABASE,
        MYSQL_DATABASE,
        lines_schema=MYSQL_DATABASE,
        kinds=_MYSQL_KINDS,
        all_types=FixtureTable(
            MYSQL_DATABASE,
            MYSQL_DATABASE,
            "all_types",
            _MYSQL_TYPES,
            _rows(_MYSQL_TYPES, _MYSQL_VALUES),
            files=((1, 0), (2, 0)),
        ),
        awkward_names=("select", 'Quote"Mark$Table'),
    ),
)
"""The MySQL (and MariaDB) fixture database; its schema is the database (MySQL has no other)."""
POSTGRES: Final = FixtureDatabase(
    "postgres",
    POSTGRES_DATABASE,
    _tables(
        POSTGRES_DATABASE,
        POSTGRES_SCHEMA,
        lines_schema="Sales Dept",
        kinds=_POSTGRES_KINDS,
        all_types=FixtureTable(
            POSTGRES_DATABASE,
            POSTGRES_SCHEMA,
            "all_types",
            _POSTGRES_TYPES,
            _rows(_POSTGRES_TYPES, _POSTGRES_VALUES),
            files=((1, 0), (2, 0)),
        ),
        awkward_names=("select", 'Quote"Mark$Table', "back\\slash`tick"),
    ),
)
"""The PostgreSQL fixture database: schemas ``public`` and ``Sales Dept``."""

FIXTURES: Final[dict[str, FixtureDatabase]] = {"mysql": MYSQL, "postgres": POSTGRES}
