"""The fixture databases as the sandbox exports them: layout, values read back, metadata.

The layout's expectations come from AWS's pages, transcribed in
``tests/fixtures/aws_docs/rds_export_layout.json`` (file naming:
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.FileNames.html;
path characters and skipped tables:
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html). Values are
read back with pyarrow's Parquet reader and compared with the source values of
``sandbox.fixture_db``.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from sandbox import fixture_db
from sandbox.export_files import ExportResult, write_export
from sandbox.fixture_db import FixtureDatabase, FixtureTable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LAYOUT = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "aws_docs" / "rds_export_layout.json").read_text()
)
BUCKET = "fixture-exports"
PREFIX = "exports/fixture"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# the current convention: batch_index/part-partition_index-random_uuid.format-based_extension,
# with AWS's examples' "-c000" and ".gz.parquet"
FILE = re.compile(rf"^(?P<batch>\w+)/part-(?P<partition>\d{{5}})-{UUID}-c000\.gz\.parquet$")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Client]:
    with mock_aws():
        client = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        client.create_bucket(Bucket=BUCKET)
        yield client


def export(s3: S3Client, database: FixtureDatabase, task: str, **options: Any) -> ExportResult:
    return write_export(
        s3,
        bucket=BUCKET,
        s3_prefix=PREFIX,
        export_task_id=task,
        source_arn="arn:aws:rds:us-east-1:123456789012:snapshot:fixture",
        database=database,
        **options,
    )


def files_by_folder(result: ExportResult) -> dict[str, list[str]]:
    """Table folder (relative to the export folder) -> its files (relative to the folder)."""
    out: dict[str, list[str]] = {}
    for key in result.keys:
        rel = key.removeprefix(result.folder)
        if rel.endswith(".parquet"):
            database, table, rest = rel.split("/", 2)
            out.setdefault(f"{database}/{table}", []).append(rest)
    return out


def substituted(name: str) -> str:
    """AWS's rule, from the transcription: each listed character becomes ``_``."""
    for char in LAYOUT["limitations"]["path_characters_replaced_by_underscore"]:
        name = name.replace(char, "_")
    return name


def tables_info(s3: S3Client, result: ExportResult) -> list[dict[str, Any]]:
    (key,) = [k for k in result.keys if "/export_tables_info_" in k]
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["perTableStatus"]


# --- layout --------------------------------------------------------------------------------


def test_mysql_folders_are_database_then_database_dot_table(s3: S3Client) -> None:
    result = export(s3, fixture_db.MYSQL, "layout-mysql")
    folders = set(files_by_folder(result))
    # AWS's example: rdststdb/rdststdb.DataInsert_7ADB5D19965123A2/ (schema = database)
    example = LAYOUT["file_naming"]["base_prefix_example_parts"]
    assert example["database_name"] == example["schema_name"]
    assert "retail/retail.all_types" in folders
    assert "retail/retail.Order_Lines" in folders  # "Order Lines": the space became _
    assert "retail/retail.Quote_Mark$Table" in folders  # '"' became _, '$' kept
    assert "retail/retail.select" in folders
    assert all(folder.startswith("retail/retail.") for folder in folders)


def test_postgres_folders_substitute_space_quote_backslash_backtick(s3: S3Client) -> None:
    result = export(s3, fixture_db.POSTGRES, "layout-pg")
    folders = set(files_by_folder(result))
    expected = {
        f"{substituted(t.database)}/{substituted(t.schema)}.{substituted(t.name)}"
        for t in fixture_db.POSTGRES.tables
        if t.exported and t.rows
    }
    assert folders == expected
    assert "shop/Sales_Dept.Order_Lines" in folders
    assert "shop/public.back_slash_tick" in folders
    assert "shop/public.Quote_Mark$Table" in folders


def test_a_table_spans_batch_folders_with_gaps_in_partition_numbers(s3: S3Client) -> None:
    result = export(s3, fixture_db.POSTGRES, "batches-pg")
    files = files_by_folder(result)["shop/Sales_Dept.Order_Lines"]
    parsed = sorted((m["batch"], m["partition"]) for f in files if (m := FILE.match(f)))
    assert len(parsed) == len(files)  # every file follows the documented convention
    assert parsed == [
        ("1", "00000"),
        ("1", "00002"),
        ("2", "00000"),
        ("3", "00001"),
        ("3", "00004"),
    ]
    rows = 0
    for name in files:
        key = f"{result.folder}shop/Sales_Dept.Order_Lines/{name}"
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        rows += pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
    assert rows == fixture_db.ORDER_LINE_COUNT


def test_skipped_and_empty_tables(s3: S3Client) -> None:
    result = export(s3, fixture_db.MYSQL, "skips-mysql")
    folders = set(files_by_folder(result))
    entries = {e["target"]: e for e in tables_info(s3, result)}
    # a column name with a space: AWS skips the table (no data, listed as SKIPPED)
    assert " " in LAYOUT["limitations"]["column_name_characters_that_skip_the_table"]
    assert entries["retail.spaced_columns"]["status"] == "SKIPPED"
    assert not any("spaced_columns" in f for f in folders)
    # an empty table: COMPLETE, and (by default) no data file, as for an empty partition
    assert entries["retail.empty_table"]["status"] == "COMPLETE"
    assert not any("empty_table" in f for f in folders)

    one = export(s3, fixture_db.MYSQL, "skips-mysql-2", empty_table_files="one_empty_file")
    (empty,) = files_by_folder(one)["retail/retail.empty_table"]
    body = s3.get_object(Bucket=BUCKET, Key=f"{one.folder}retail/retail.empty_table/{empty}")
    assert pq.ParquetFile(io.BytesIO(body["Body"].read())).metadata.num_rows == 0


@pytest.mark.parametrize(
    ("form", "target"), [("db.table", "retail.select"), ("db.db.table", "retail.retail.select")]
)
def test_mysql_target_spelling_is_a_choice(s3: S3Client, form: Any, target: str) -> None:
    result = export(s3, fixture_db.MYSQL, f"targets-{form}", mysql_target=form)
    assert target in {e["target"] for e in tables_info(s3, result)}
    assert "retail/retail.select" in files_by_folder(result)  # the folder does not change


def test_mysql_original_type_spelling_is_a_choice(s3: S3Client) -> None:
    def unsigned(task: str, spelling: Any) -> str:
        result = export(s3, fixture_db.MYSQL, task, type_spelling=spelling)
        entry = next(e for e in tables_info(s3, result) if e["target"] == "retail.all_types")
        mappings = entry["schemaMetadata"]["originalTypeMappings"]
        return next(m for m in mappings if m["columnName"] == "c_bigint_unsigned")["originalType"]

    assert unsigned("spelling-data-type", "data_type") == "bigint"
    assert unsigned("spelling-column-type", "column_type") == "bigint unsigned"


# --- values --------------------------------------------------------------------------------


def read_rows(s3: S3Client, result: ExportResult, table: FixtureTable) -> list[dict[str, Any]]:
    folder = f"{substituted(table.database)}/{substituted(table.schema)}.{substituted(table.name)}"
    files = sorted(files_by_folder(result)[folder], key=lambda f: FILE.match(f).groups())  # type: ignore[union-attr]
    tables = [
        pq.read_table(
            io.BytesIO(
                s3.get_object(Bucket=BUCKET, Key=f"{result.folder}{folder}/{f}")["Body"].read()
            )
        )
        for f in files
    ]
    return pa.concat_tables(tables).to_pylist()


def same(source: Any, read: Any) -> bool:
    if isinstance(source, float) and math.isnan(source):
        return isinstance(read, float) and math.isnan(read)
    if isinstance(source, datetime):
        aware = source if source.tzinfo else source.replace(tzinfo=UTC)  # DATETIME taken as UTC
        return bool(read == aware)
    if isinstance(source, int) and isinstance(read, Decimal):  # BIGINT UNSIGNED
        return Decimal(source) == read
    if isinstance(source, str) and isinstance(read, bytes):  # MySQL CHAR: BYTE_ARRAY, no STRING
        return source.encode() == read
    return bool(source == read)


@pytest.mark.parametrize(
    "database", [fixture_db.MYSQL, fixture_db.POSTGRES], ids=["mysql", "postgres"]
)
def test_values_read_back_equal_the_source_values(s3: S3Client, database: FixtureDatabase) -> None:
    result = export(s3, database, f"values-{database.engine}")
    compared = 0
    for table in database.tables:
        if not table.exported or not table.rows:
            continue
        read = read_rows(s3, result, table)
        assert len(read) == len(table.rows)
        for source_row, read_row in zip(table.as_dicts(), read, strict=True):
            for name, value in source_row.items():
                got = read_row[name]
                if value is None:
                    assert got is None, f"{table.name}.{name}: NULL read as {got!r}"
                    continue
                if isinstance(got, str) and not isinstance(value, str):
                    continue  # a type RDS exports as text: its spelling is the sandbox's guess
                assert same(value, got), f"{table.name}.{name}: {value!r} read as {got!r}"
                compared += 1
    print(f"{database.engine}: {compared} non-NULL values read back equal")
    assert compared > 100
