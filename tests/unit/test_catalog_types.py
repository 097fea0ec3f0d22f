"""The Glue/Athena types of the catalog (rds_s3_export.catalog) for every row of AWS's conversion
tables (tests/fixtures/aws_docs/rds_export_data_types.json, from
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html),
checked two ways: Athena can read the Parquet type the row documents as that type (Athena,
"Data types in Amazon Athena", https://docs.aws.amazon.com/athena/latest/ug/data-types.html),
and the Snowflake side (snowflake_sql.types) classifies the same row the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rds_s3_export import catalog
from snowflake_sql.types import snowflake_type
from tests.snowflake.test_snowflake_doc_types import TABLES, _parquet

ROWS = [
    (engine, row)
    for engine in ("mysql_mariadb", "postgresql")
    for row in TABLES[engine]
    if row["parquet_primitive_type"] != "N/A"  # OBJECT IDENTIFIER: not exported
]

# What Athena reads each documented Parquet primitive type as (the Glue type must be one of
# these): integers by their annotated width, decimals as decimal, byte arrays as string or
# binary, timestamps from INT64.
READABLE = {
    "BOOLEAN": re.compile(r"boolean"),
    "INT32": re.compile(r"tinyint|smallint|int|decimal\(\d,\d\)|date"),
    "INT64": re.compile(r"bigint|timestamp|decimal\(1?\d,\d+\)"),
    "FLOAT": re.compile(r"float"),
    "DOUBLE": re.compile(r"double"),
    "BYTE_ARRAY": re.compile(r"string|binary|decimal\(\d+,\d+\)"),
    "FIXED_LEN_BYTE_ARRAY": re.compile(r"decimal\(\d+,\d+\)|binary"),
}

# A Snowflake type family -> the Glue types of the same meaning
SAME_MEANING = {
    "NUMBER": re.compile(r"tinyint|smallint|int|bigint|decimal\(\d+,\d+\)"),
    "FLOAT": re.compile(r"float|double"),
    "TEXT": re.compile(r"string"),
    "VARIANT": re.compile(r"string"),  # JSON, parsed by Snowflake; Athena: json_parse(...)
    "BINARY": re.compile(r"binary"),
    "BOOLEAN": re.compile(r"boolean"),
    "DATE": re.compile(r"date"),
    "TIMESTAMP_NTZ": re.compile(r"timestamp"),
    "TIMESTAMP_TZ": re.compile(r"timestamp"),
}


def _column(row: dict[str, Any]) -> dict[str, Any]:
    return {"original_type": row["source_type"].lower(), "parquet": _parquet(row)}


def _id(row: tuple[str, dict[str, Any]]) -> str:
    return f"{row[0]}:{row[1]['source_type']}"


def test_every_documented_row_is_read_here() -> None:
    assert len(ROWS) == len(TABLES["mysql_mariadb"]) + len(TABLES["postgresql"]) - 1


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_athena_reads_the_documented_parquet_type_as_the_glue_type(
    row: tuple[str, dict[str, Any]],
) -> None:
    column = _column(row[1])
    physical = column["parquet"]["physical"]
    assert READABLE[physical].fullmatch(catalog.glue_type(column)), column


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_the_glue_type_means_what_the_snowflake_type_means(
    row: tuple[str, dict[str, Any]],
) -> None:
    column = _column(row[1])
    glue, snow = catalog.glue_type(column), snowflake_type(column)
    assert SAME_MEANING[snow.family].fullmatch(glue), (column, glue, snow.sql)
    if snow.digits and glue.startswith("decimal"):  # the same precision and scale
        assert glue == f"decimal({snow.digits[0]},{snow.digits[1]})"


@pytest.mark.parametrize(
    ("parquet", "expected"),
    [
        ({"physical": "INT32", "logical": "INT", "bit_width": 16, "signed": True}, "smallint"),
        ({"physical": "INT32", "logical": "INT", "bit_width": 8, "signed": True}, "tinyint"),
        ({"physical": "INT64", "logical": None}, "bigint"),
        (
            {"physical": "FIXED_LEN_BYTE_ARRAY", "logical": "DECIMAL", "precision": 20},
            "decimal(20,0)",
        ),
        ({"physical": "INT64", "logical": "DECIMAL", "precision": 12, "scale": 2}, "decimal(12,2)"),
        ({"physical": "INT64", "logical": "TIMESTAMP", "unit": "MICROS"}, "timestamp"),
        ({"physical": "INT96", "logical": None}, "timestamp"),
        ({"physical": "INT32", "logical": "DATE"}, "date"),
        ({"physical": "BYTE_ARRAY", "logical": "STRING"}, "string"),
        ({"physical": "BYTE_ARRAY", "logical": None}, "binary"),
    ],
)
def test_parquet_annotations(parquet: dict[str, Any], expected: str) -> None:
    assert catalog.glue_type({"original_type": "x", "parquet": parquet}) == expected


def test_mysql_char_written_as_bytes_is_a_string() -> None:
    # AWS: MySQL CHAR is BYTE_ARRAY without an annotation; its bytes are text
    column = {"original_type": "char(10)", "parquet": {"physical": "BYTE_ARRAY", "logical": None}}
    assert catalog.glue_type(column) == "string"


def test_a_table_without_files_is_typed_from_the_source() -> None:
    assert catalog.glue_type({"original_type": "integer", "parquet": None}) == "int"
    assert (
        catalog.glue_type(
            {"original_type": "decimal(9,2)", "parquet": None, "precision": 9, "scale": 2}
        )
        == "decimal(9,2)"
    )
    assert catalog.glue_type({"original_type": "text", "parquet": None}) == "string"


# --- names ------------------------------------------------------------------------------------


def test_table_names_are_lower_case_letters_digits_and_underscores() -> None:
    # the fixture databases' awkward names (sandbox/fixture_db.py)
    assert catalog.table_name("shop.Sales Dept.Order Lines") == "shop_sales_dept_order_lines"
    assert catalog.table_name('shop.public.Quote"Mark$Table') == "shop_public_quote_mark_table"
    assert catalog.table_name("shop.public.back\\slash`tick") == "shop_public_back_slash_tick"
    assert catalog.table_name("shop.shop.select") == "shop_shop_select"


def test_a_long_name_is_cut_and_keeps_a_hash_of_the_target() -> None:
    long_a, long_b = "db.s." + "a" * 300, "db.s." + "a" * 299 + "b"
    name_a, name_b = catalog.table_name(long_a), catalog.table_name(long_b)
    assert len(name_a.encode()) == catalog.NAME_MAX_BYTES
    assert name_a != name_b and re.fullmatch(r"[a-z0-9_]+_[0-9a-f]{8}", name_a)


def _manifest(*tables: dict[str, Any]) -> dict[str, Any]:
    return {"bucket": "b", "s3_prefix": "p", "export_task_id": "e1", "tables": list(tables)}


def _table(target: str, columns: list[str], status: str = "COMPLETE") -> dict[str, Any]:
    return {
        "target": target,
        "status": status,
        "folder": f"p/e1/{target}/",
        "columns": [
            {
                "name": c,
                "original_type": "text",
                "parquet": {"physical": "BYTE_ARRAY", "logical": "STRING"},
            }
            for c in columns
        ],
    }


def test_two_targets_with_one_name_are_both_left_out() -> None:
    plan = catalog.plan(
        _manifest(_table("db.s.a b", ["x"]), _table("db.s.a_b", ["x"]), _table("db.s.c", ["x"])),
        "pipe",
    )
    assert list(plan.tables) == ["db_s_c"]
    (why,) = plan.left_out
    assert "db.s.a b" in why and "db.s.a_b" in why and "db_s_a_b" in why


def test_columns_equal_but_for_case_leave_the_table_out() -> None:
    plan = catalog.plan(_manifest(_table("db.s.t", ["Group", "group"])), "pipe")
    assert plan.tables == {} and "group" in plan.left_out[0]


def test_a_skipped_table_is_left_out() -> None:
    plan = catalog.plan(_manifest(_table("db.s.t", ["x"], status="SKIPPED")), "pipe")
    assert plan.tables == {} and "SKIPPED" in plan.left_out[0]


def test_columns_keep_their_names_in_lower_case() -> None:
    # Athena finds a Parquet column by its (lower-cased) name: a renamed column reads as NULL
    plan = catalog.plan(_manifest(_table("db.s.t", ['say"hi"', "price$", "From"])), "pipe")
    columns = plan.tables["db_s_t"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == ['say"hi"', "price$", "from"]


def test_only_the_pipelines_own_tables_of_its_prefix_are_its_own() -> None:
    mine = {"Parameters": {catalog.OWNER_KEY: "pipe", catalog.PREFIX_KEY: "p"}}
    assert catalog.owned(mine, "pipe", "p/")
    assert not catalog.owned(mine, "other", "p")
    assert not catalog.owned(mine, "pipe", "q")
    assert not catalog.owned({"Parameters": {}}, "pipe", "p")
    assert not catalog.owned({}, "pipe", "p")


def test_folders_named_reads_the_export_folder_of_each_own_table() -> None:
    tables = [
        {
            "Name": "t1",
            "Parameters": {catalog.OWNER_KEY: "pipe", catalog.PREFIX_KEY: "p"},
            "StorageDescriptor": {"Location": "s3://b/p/e1/db/s.t1/"},
        },
        {  # a user's table in the same place is not the pipeline's to keep or drop
            "Name": "t2",
            "Parameters": {},
            "StorageDescriptor": {"Location": "s3://b/p/e0/db/s.t2/"},
        },
    ]
    assert catalog.folders_named(tables, "b", "p", "pipe") == {"e1": ["t1"]}


# AWS's documented layout (tests/fixtures/aws_docs/rds_export_layout.json, from
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.FileNames.html):
# a table's files sit under `export_identifier/database_name/schema_name.table_name/`, in batch
# folders (`1/`, and for Aurora alphanumeric ones such as `a/`) or directly (older convention).
LAYOUT = json.loads(
    (Path(__file__).parents[1] / "fixtures/aws_docs/rds_export_layout.json").read_text()
)


def test_a_documented_table_folder_is_the_glue_location_and_the_purge_reads_it_back() -> None:
    naming = LAYOUT["file_naming"]
    parts = naming["base_prefix_example_parts"]
    base = naming["base_prefix_example"]
    manifest = {
        "bucket": "acme-exports",
        "s3_prefix": "exports/rdststdb",
        "export_task_id": parts["export_identifier"],
        "tables": [
            {
                "target": f"{parts['database_name']}.{parts['schema_name']}.{parts['table_name']}",
                "status": "COMPLETE",
                "folder": f"exports/rdststdb/{base}",
                "columns": [
                    {"name": "ID", "original_type": "int", "parquet": {"physical": "INT32"}}
                ],
            }
        ],
    }
    planned = catalog.plan(manifest, "pipe")
    assert planned.left_out == []
    ((name, table),) = planned.tables.items()
    assert name == "rdststdb_rdststdb_datainsert_7adb5d19965123a2"
    location = table["StorageDescriptor"]["Location"]
    # the table's base prefix, never one batch folder: Athena reads every file below LOCATION,
    # subfolders included (https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html)
    assert location == f"s3://acme-exports/exports/rdststdb/{base}"
    for example in [
        *LAYOUT["aurora_file_naming"]["examples"],
        *naming["older_convention_examples"],
    ]:
        assert f"s3://acme-exports/exports/rdststdb/{base}{example}".startswith(location)
    assert table["StorageDescriptor"]["Columns"] == [{"Name": "id", "Type": "int"}]
    # what the purge keeps while this table points there: the documented export identifier
    glue_table = {"Name": name, **table}
    assert catalog.folders_named([glue_table], "acme-exports", "exports/rdststdb", "pipe") == {
        parts["export_identifier"]: [name]
    }
