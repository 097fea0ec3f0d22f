"""Manifest columns -> Snowflake types (snowflake_sql.types): Parquet type first, refined by
RDS's original type. The Parquet types are AWS's, transcribed from
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html."""

from __future__ import annotations

from typing import Any

import pytest

from snowflake_sql.types import snowflake_type

STRING = {"physical": "BYTE_ARRAY", "logical": "STRING"}
BINARY = {"physical": "BYTE_ARRAY", "logical": None}
TS_MICROS = {"physical": "INT64", "logical": "TIMESTAMP", "unit": "MICROS", "utc": True}


def _dec(precision: int, scale: int, physical: str = "INT64") -> dict[str, Any]:
    return {"physical": physical, "logical": "DECIMAL", "precision": precision, "scale": scale}


CASES: list[tuple[str, dict[str, Any] | None, str]] = [
    # MySQL / MariaDB
    ("bigint", {"physical": "INT64", "logical": None}, "NUMBER(19,0)"),
    ("bigint unsigned", _dec(20, 0, "FIXED_LEN_BYTE_ARRAY"), "NUMBER(20,0)"),
    ("bit(10)", BINARY, "BINARY"),
    ("decimal(9,2)", _dec(9, 2, "INT32"), "NUMBER(9,2)"),
    ("decimal(38,10)", _dec(38, 10, "FIXED_LEN_BYTE_ARRAY"), "NUMBER(38,10)"),
    ("decimal(65,30)", STRING, "VARCHAR"),  # above 38 digits: a string
    ("double", {"physical": "DOUBLE", "logical": None}, "FLOAT"),
    ("float", {"physical": "DOUBLE", "logical": None}, "FLOAT"),
    ("int", {"physical": "INT32", "logical": None}, "NUMBER(10,0)"),
    ("int unsigned", {"physical": "INT64", "logical": None}, "NUMBER(19,0)"),
    (
        "mediumint",
        {"physical": "INT64", "logical": None},
        "NUMBER(19,0)",
    ),  # DATA_TYPE of an UNSIGNED
    ("char", BINARY, "VARCHAR"),  # MySQL CHAR: bytes without STRING, decoded as UTF-8
    ("mediumint", {"physical": "INT32", "logical": None}, "NUMBER(7,0)"),
    ("smallint", {"physical": "INT32", "logical": None}, "NUMBER(5,0)"),
    ("tinyint unsigned", {"physical": "INT32", "logical": None}, "NUMBER(3,0)"),
    ("year", {"physical": "INT32", "logical": None}, "NUMBER(4,0)"),
    ("varchar(255)", STRING, "VARCHAR"),
    ("longblob", BINARY, "BINARY"),
    ("geometry", BINARY, "BINARY"),
    ("date", STRING, "VARCHAR"),  # MySQL zero dates
    ("time", STRING, "VARCHAR"),  # a duration up to 838:59:59
    ("datetime(6)", TS_MICROS, "TIMESTAMP_NTZ(6)"),  # same Parquet type as TIMESTAMP...
    ("timestamp(6)", TS_MICROS, "TIMESTAMP_TZ(6)"),  # ...different meaning
    ("json", STRING, "VARCHAR"),
    # PostgreSQL
    ("numeric(38,10)", STRING, "VARCHAR"),  # NaN
    ("timestamp with time zone", STRING, "VARCHAR"),  # infinity
    ("time without time zone", STRING, "VARCHAR"),  # 24:00:00
    ("bytea", BINARY, "BINARY"),
    ("boolean", {"physical": "BOOLEAN", "logical": None}, "BOOLEAN"),
    ("real", {"physical": "FLOAT", "logical": None}, "FLOAT"),
    (
        "smallint",
        {"physical": "INT32", "logical": "INT", "bit_width": 16, "signed": True},
        "NUMBER(5,0)",
    ),
    ("jsonb", STRING, "VARIANT"),
    ("uuid", STRING, "VARCHAR"),
    # no files: from the original type
    ("bigint", None, "NUMBER(19,0)"),
    ("bytea", None, "BINARY"),
    ("text", None, "VARCHAR"),
]


@pytest.mark.parametrize(("original", "parquet", "expected"), CASES)
def test_mapping(original: str, parquet: dict[str, Any] | None, expected: str) -> None:
    assert snowflake_type({"original_type": original, "parquet": parquet}).sql == expected


def test_jsonb_is_staged_as_text_and_parsed() -> None:
    mapped = snowflake_type({"original_type": "jsonb", "parquet": STRING})
    assert mapped.staging_sql == "VARCHAR"
    assert mapped.convert.format('"DOC"') == 'PARSE_JSON("DOC")'


def test_kept_strings_say_why() -> None:
    mapped = snowflake_type({"original_type": "time", "parquet": STRING})
    assert mapped.comment is not None and "838:59:59" in mapped.comment


def test_unsigned_parquet_integers_widen() -> None:
    column = {
        "original_type": "x",
        "parquet": {"physical": "INT64", "logical": "INT", "bit_width": 64, "signed": False},
    }
    assert snowflake_type(column).sql == "NUMBER(20,0)"
