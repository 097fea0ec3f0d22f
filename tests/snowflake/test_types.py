"""Source column types -> Snowflake types (snowflake_sql.types)."""

from __future__ import annotations

from typing import Any

import pytest

from snowflake_sql.types import snowflake_type

CASES: list[tuple[dict[str, Any], str]] = [
    ({"original_type": "numeric", "precision": 12, "scale": 2}, "NUMBER(12,2)"),
    ({"original_type": "numeric", "precision": 60, "scale": 10}, "NUMBER(38,10)"),
    ({"original_type": "decimal(10,4)"}, "NUMBER(10,4)"),  # MySQL spells it out
    ({"original_type": "numeric"}, "VARCHAR"),  # unbounded: kept as exact text
    ({"original_type": "timestamp without time zone", "datetime_precision": 6}, "TIMESTAMP_NTZ(6)"),
    ({"original_type": "timestamp with time zone", "datetime_precision": 3}, "TIMESTAMP_TZ(3)"),
    ({"original_type": "timestamptz"}, "TIMESTAMP_TZ(6)"),
    ({"original_type": "datetime", "datetime_precision": 0}, "TIMESTAMP_NTZ(0)"),
    ({"original_type": "jsonb"}, "VARIANT"),
    ({"original_type": "json"}, "VARIANT"),
    ({"original_type": "bigint unsigned"}, "NUMBER(20,0)"),
    ({"original_type": "bigint"}, "NUMBER(19,0)"),
    ({"original_type": "integer"}, "NUMBER(10,0)"),
    ({"original_type": "smallint"}, "NUMBER(5,0)"),
    ({"original_type": "double precision"}, "FLOAT"),
    ({"original_type": "real"}, "FLOAT"),
    ({"original_type": "boolean"}, "BOOLEAN"),
    ({"original_type": "date"}, "DATE"),
    ({"original_type": "time without time zone", "datetime_precision": 6}, "TIME(6)"),
    ({"original_type": "character varying", "char_length": 100}, "VARCHAR(100)"),
    ({"original_type": "text"}, "VARCHAR"),
    ({"original_type": "bytea"}, "BINARY"),
    ({"original_type": "longblob"}, "BINARY"),
    ({"original_type": "uuid"}, "VARCHAR(36)"),
]


@pytest.mark.parametrize(("column", "expected"), CASES, ids=[c[0]["original_type"] for c in CASES])
def test_mapping(column: dict[str, Any], expected: str) -> None:
    assert snowflake_type(column).sql == expected


def test_json_is_staged_as_text_and_parsed() -> None:
    mapped = snowflake_type({"original_type": "jsonb"})
    assert mapped.staging_sql == "VARCHAR"
    assert mapped.convert.format('"DOC"') == 'PARSE_JSON("DOC")'


def test_unknown_type_is_text_with_a_comment() -> None:
    mapped = snowflake_type({"original_type": "tsvector"})
    assert mapped.sql == "VARCHAR"
    assert mapped.comment is not None and "'tsvector' not recognised" in mapped.comment


def test_capped_precision_is_commented() -> None:
    mapped = snowflake_type({"original_type": "numeric", "precision": 60, "scale": 2})
    assert mapped.comment is not None and "capped" in mapped.comment
