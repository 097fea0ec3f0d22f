"""The generated table DDL and load SQL, executed on fakesnow over the sandbox's Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowflake_sql.generate import quote, table_name
from tests.snowflake.conftest import Night, Snow, sections

TABLES = {
    "shop.public.customers": "PUBLIC_CUSTOMERS",
    "shop.public.orders": "PUBLIC_ORDERS",
    "shop.public.order_items": "PUBLIC_ORDER_ITEMS",
}
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _parquet(files: list[Path]) -> Any:
    return pa.concat_tables([pq.read_table(f) for f in files])


def _count(snow: Snow, name: str) -> int:
    return int(snow.one(f'SELECT COUNT(*) FROM "RAW"."MYDB".{quote(name)}'))


def _totals(snow: Snow) -> list[Any]:
    sql = 'SELECT "TOTAL" FROM "RAW"."MYDB"."PUBLIC_ORDERS" ORDER BY "ID"'
    return [row[0] for row in snow.rows(sql)]


def _loads(snow: Snow) -> list[tuple[Any, ...]]:
    return snow.rows(
        'SELECT EXPORT_TASK_ID, TABLES_LOADED, TABLES_KEPT FROM "RAW"."MYDB"."_RDS_EXPORT_LOADS" '
        "ORDER BY LOADED_AT"
    )


def test_tables_have_the_mapped_column_types(snow: Snow) -> None:
    described = {
        name: {row[0]: row[1] for row in snow.rows(f'DESCRIBE TABLE "RAW"."MYDB"."{name}"')}
        for name in TABLES.values()
    }
    assert described["PUBLIC_ORDERS"]["ID"] == "NUMBER(19,0)"
    # PostgreSQL numeric arrives as a Parquet STRING (AWS's PostgreSQL conversion table,
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html)
    # and its scale is not in export_tables_info: the generator keeps the text
    assert described["PUBLIC_ORDERS"]["TOTAL"] == "VARCHAR(16777216)"
    assert described["PUBLIC_ORDERS"]["STATUS"] == "VARCHAR(20)"
    # fakesnow reports every timestamp as TIMESTAMP_NTZ(9); the family is what it can check
    assert described["PUBLIC_ORDERS"]["ORDERED_AT"].startswith("TIMESTAMP_NTZ")
    assert described["PUBLIC_ORDER_ITEMS"]["LINE"] == "NUMBER(10,0)"
    assert described["PUBLIC_ORDER_ITEMS"]["PRICE"] == "VARCHAR(16777216)"
    assert described["PUBLIC_CUSTOMERS"]["EMAIL"] == "VARCHAR(255)"
    assert list(described["PUBLIC_CUSTOMERS"]) == ["ID", "NAME", "EMAIL", "CREATED_AT"]


def test_load_matches_the_parquet_files(snow: Snow, nights: tuple[Path, Night, Night]) -> None:
    _, first, _ = nights
    snow.run(sections(first.manifest)["load"])

    for target, name in TABLES.items():
        assert table_name(target) == name
        expected = _parquet(first.parquet[target])
        assert _count(snow, name) == expected.num_rows, target
    # the values too: exact decimals, row for row
    assert _totals(snow) == _parquet(first.parquet["shop.public.orders"])["total"].to_pylist()
    assert _loads(snow) == [(first.task_id, 3, 0)]
    # the staging tables are gone
    assert not snow.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_RDS_STAGE_%'"
    )


def test_same_manifest_twice_does_not_double(snow: Snow, nights: tuple[Path, Night, Night]) -> None:
    _, first, _ = nights
    load = sections(first.manifest)["load"]
    snow.run(load)
    counts = {name: _count(snow, name) for name in TABLES.values()}
    snow.run(load)
    assert {name: _count(snow, name) for name in TABLES.values()} == counts
    assert _loads(snow) == [(first.task_id, 3, 0)]


def test_next_night_replaces_rows_and_keeps_a_skipped_table(
    snow: Snow, nights: tuple[Path, Night, Night]
) -> None:
    _, first, second = nights
    snow.run(sections(first.manifest)["load"])
    customers_before = snow.rows('SELECT * FROM "RAW"."MYDB"."PUBLIC_CUSTOMERS" ORDER BY "ID"')

    second_sql = sections(second.manifest)
    snow.run(second_sql["tables"])  # re-running the DDL is harmless: IF NOT EXISTS
    snow.run(second_sql["load"])

    for target in ("shop.public.orders", "shop.public.order_items"):
        name = TABLES[target]
        expected = _parquet(second.parquet[target])
        assert _count(snow, name) == expected.num_rows  # replaced, not doubled
    # the rows are night 2's (other seed), not night 1's, although both exports are staged
    second_totals = _parquet(second.parquet["shop.public.orders"])["total"].to_pylist()
    assert _totals(snow) == second_totals
    assert second_totals != _parquet(first.parquet["shop.public.orders"])["total"].to_pylist()
    # customers was SKIPPED on night 2: night 1's rows stay, untouched
    assert snow.rows('SELECT * FROM "RAW"."MYDB"."PUBLIC_CUSTOMERS" ORDER BY "ID"') == (
        customers_before
    )
    assert "shop.public.customers: SKIPPED" in "\n".join(second_sql["load"])
    assert _loads(snow) == [(first.task_id, 3, 0), (second.task_id, 2, 1)]


def test_odd_names_survive_quoting(snow: Snow) -> None:
    manifest = {
        "manifest_version": 1,
        "bucket": "b",
        "s3_prefix": "p",
        "export_folder": "p/task-1/",
        "export_task_id": "task-1",
        "tables": [
            {
                "target": "shop.Sales.Order.Items",
                "status": "COMPLETE",
                "folder": "p/task-1/shop/Sales.Order.Items/",
                "files": [],
                "columns": [
                    {"name": "select", "original_type": "integer"},
                    {"name": 'Mixed"Quote', "original_type": "text"},
                    {"name": "a.b", "original_type": "jsonb"},
                    {"name": "CamelCase", "original_type": "numeric", "precision": 50, "scale": 4},
                ],
            }
        ],
    }
    snow.run(sections(manifest)["tables"])
    described = {
        row[0]: row[1] for row in snow.rows('DESCRIBE TABLE "RAW"."MYDB"."Sales_Order.Items"')
    }
    assert described == {
        "SELECT": "NUMBER(10,0)",
        'Mixed"Quote': "VARCHAR(16777216)",
        "a.b": "VARIANT",
        "CamelCase": "NUMBER(38,4)",
    }
