"""The fixture databases hold what they claim: values within their declared types, NULLs where
allowed, and the text the sandbox writes for values RDS converts to strings."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox import fixture_db
from sandbox.fixture_db import FixtureColumn
from sandbox.parquet_types import export_text

ALL = [(db, t) for db in fixture_db.FIXTURES.values() for t in db.tables]


@pytest.mark.parametrize(("db", "table"), ALL, ids=[f"{d.engine}-{t.name}" for d, t in ALL])
def test_rows_fit_their_columns(
    db: fixture_db.FixtureDatabase, table: fixture_db.FixtureTable
) -> None:
    for row in table.rows:
        assert len(row) == len(table.columns)
        for column, value in zip(table.columns, row, strict=True):
            if value is None:
                assert column.nullable, f"{table.name}.{column.name} is NOT NULL"
            elif isinstance(value, Decimal) and value.is_finite() and column.precision:
                digits, exponent = value.as_tuple().digits, int(value.as_tuple().exponent)
                # DECIMAL(p,s): at most p-s digits before the point, at most s after
                assert -exponent <= column.scale, f"{column.name}: {value} has too many decimals"
                assert len(digits) + exponent <= column.precision - column.scale, (
                    f"{column.name}: {value} does not fit ({column.precision},{column.scale})"
                )


def test_all_types_has_a_null_row_and_edge_values() -> None:
    mysql = fixture_db.MYSQL.table("all_types").as_dicts()
    nulls = mysql[3]
    assert all(v is None for k, v in nulls.items() if k != "id")
    assert max(r["c_bigint_unsigned"] or 0 for r in mysql) == 2**64 - 1
    assert {r["c_time"] for r in mysql} >= {
        timedelta(hours=838, minutes=59, seconds=59),
        -timedelta(hours=838, minutes=59, seconds=59),
    }
    assert {r["c_date"] for r in mysql} >= {date(1000, 1, 1), date(9999, 12, 31)}
    assert {r["c_decimal_38_10"] for r in mysql} >= {
        fixture_db.DEC38_10_MAX,
        fixture_db.DEC38_10_MIN,
    }
    pg = fixture_db.POSTGRES.table("all_types").as_dicts()
    assert "24:00:00" in {r["c_time"] for r in pg}
    assert fixture_db.NON_UTF8 in {r["c_bytea"] for r in pg}
    assert any(r["c_text"] == "" for r in pg)


def col(sql_type: str, doc_type: str, precision: int = 0, scale: int = 0) -> FixtureColumn:
    return FixtureColumn("c", doc_type, sql_type, precision=precision, scale=scale)


@pytest.mark.parametrize(
    ("engine", "column", "value", "text"),
    [
        # PostgreSQL array output: items quoted when empty, NULL-like, or holding a space, comma,
        # brace, quote or backslash; NULL unquoted (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO)
        (
            "postgres",
            col("text[]", "ARRAY"),
            ["a", "", "NULL", None, 'q"', "b\\c", "x y"],
            '{a,"","NULL",NULL,"q\\"","b\\\\c","x y"}',
        ),
        ("postgres", col("integer[]", "ARRAY"), [[1, 2], [3, None]], "{{1,2},{3,NULL}}"),
        # DateStyle ISO: fractional seconds without trailing zeros; +00 in TimeZone UTC
        (
            "postgres",
            col("timestamp", "TIMESTAMP"),
            datetime(2024, 1, 2, 3, 4, 5, 500000),
            "2024-01-02 03:04:05.5",
        ),
        ("postgres", col("numeric(5,2)", "DECIMAL", 5, 2), Decimal("1.5"), "1.50"),
        ("postgres", col("numeric", "DECIMAL"), Decimal("NaN"), "NaN"),
        ("postgres", col("date", "DATE"), date(1000, 1, 1), "1000-01-01"),
        # MySQL TIME: [-]HH:MM:SS, hours up to 838 (https://dev.mysql.com/doc/refman/8.0/en/time.html)
        ("mysql", col("time", "TIME"), -timedelta(hours=838, minutes=59, seconds=59), "-838:59:59"),
        ("mysql", col("time", "TIME"), timedelta(seconds=1), "00:00:01"),
        ("mysql", col("decimal(65,30)", "DECIMAL", 65, 30), Decimal("1"), "1." + "0" * 30),
        ("mysql", col("date", "DATE"), date(9999, 12, 31), "9999-12-31"),
    ],
)
def test_export_text(
    engine: fixture_db.Engine, column: FixtureColumn, value: object, text: str
) -> None:
    assert export_text(engine, column, value) == text
    assert export_text(engine, column, None) is None


def test_tables_rds_skips_are_exactly_those_with_unsupported_column_names() -> None:
    """AWS skips a table whose column names hold any of its listed characters
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html)."""
    layout = json.loads(
        (Path(__file__).parents[1] / "fixtures" / "aws_docs" / "rds_export_layout.json").read_text()
    )
    unsupported = layout["limitations"]["column_name_characters_that_skip_the_table"]
    for _, table in ALL:
        bad = any(char in column.name for column in table.columns for char in unsupported)
        assert bad == (not table.exported), table.target
