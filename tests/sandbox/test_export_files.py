"""The sandbox writes the files of an RDS export: layout, Parquet content, metadata, outcomes."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from sandbox.export_files import (
    ORDERS,
    SAMPLE_SCHEMA,
    SAMPLE_TABLES,
    SKIPPED_REASON,
    ExportResult,
    export_folder,
    export_info_key,
    export_tables_info_key,
    export_tables_info_prefix,
    sample_table,
    select_tables,
    write_export,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "export-bucket"
PREFIX = "exports/daily"
TASK = "mysnapshot-2024-05-01-03-00-a1b2"
SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:snapshot:mysnapshot-2024-05-01-03-00"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SNAPSHOT_TIME = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
START_TIME = datetime(2024, 5, 1, 3, 5, tzinfo=UTC)
END_TIME = datetime(2024, 5, 1, 3, 20, tzinfo=UTC)
DATA_KEY = re.compile(  # relative to the export folder
    r"^shop/public\.(?P<table>\w+)/1/"
    r"part-(?P<partition>\d{5})-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"-c000\.gz\.parquet$"
)
CUSTOMERS_T, ORDERS_T, ITEMS_T = (ref.target for ref in SAMPLE_TABLES)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def export(s3: S3Client, *, export_task_id: str = TASK, **kwargs: Any) -> ExportResult:
    """The export under test, at fixed times so that its files are reproducible."""
    return write_export(
        s3,
        bucket=BUCKET,
        s3_prefix=PREFIX,
        export_task_id=export_task_id,
        source_arn=SOURCE_ARN,
        snapshot_time=SNAPSHOT_TIME,
        task_start_time=START_TIME,
        task_end_time=END_TIME,
        **kwargs,
    )


def listed_keys(s3: S3Client, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def body(s3: S3Client, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def read_json(s3: S3Client, key: str) -> Any:
    return json.loads(body(s3, key))


def data_keys(result: ExportResult) -> dict[str, list[str]]:
    """Data keys of an export by table name, in the order written."""
    tables: dict[str, list[str]] = {}
    for key in result.keys:
        match = DATA_KEY.match(key.removeprefix(result.folder))
        if match:
            tables.setdefault(match["table"], []).append(key)
    return tables


def read_table(s3: S3Client, keys: list[str]) -> Any:
    return pa.concat_tables(pq.read_table(io.BytesIO(body(s3, key))) for key in keys)


# --- select_tables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("export_only", "expected"),
    [
        ([], ["customers", "orders", "order_items"]),
        (["shop"], ["customers", "orders", "order_items"]),
        (["shop.public"], ["customers", "orders", "order_items"]),
        (["shop.public.orders"], ["orders"]),
        (["shop.orders"], ["orders"]),  # MySQL form database.table
        (["shop.public.order_items", "shop.customers"], ["customers", "order_items"]),
        (["shop.public.orders", "shop.orders", "shop.public.orders"], ["orders"]),
        (["other"], []),
        (["shop.private"], []),
        (["shop.public.nope"], []),
        (["shop.public.orders.extra"], []),
        (["Shop.public.orders"], []),  # names match exactly
        (["", "."], []),
    ],
)
def test_select_tables_applies_export_only(export_only: list[str], expected: list[str]) -> None:
    assert [ref.table for ref in select_tables(export_only)] == expected


NAME_PARTS = st.sampled_from(["shop", "public", "orders", "customers", "order_items", "x", ""])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(NAME_PARTS, min_size=1, max_size=4).map(".".join), max_size=4))
def test_select_tables_only_returns_sample_tables_each_matched_alone(names: list[str]) -> None:
    selected = select_tables(names)
    assert selected == [ref for ref in SAMPLE_TABLES if ref in selected]  # schema order, no dups
    if names:
        # selecting by all names at once is the union of selecting by each name
        union = {ref for name in names for ref in select_tables([name])}
        assert set(selected) == union


# --- key helpers ---------------------------------------------------------------------------


def test_key_helpers_name_the_files_rds_writes() -> None:
    assert export_folder("exports/daily/", TASK) == f"exports/daily/{TASK}/"
    assert export_folder("", TASK) == f"{TASK}/"
    assert export_info_key("exports/daily", TASK) == f"exports/daily/{TASK}/export_info_{TASK}.json"
    assert (
        export_tables_info_prefix("exports/daily", TASK)
        == f"exports/daily/{TASK}/export_tables_info_{TASK}_from_"
    )
    assert (
        export_tables_info_key("exports/daily", TASK, 1, 3)
        == f"exports/daily/{TASK}/export_tables_info_{TASK}_from_1_to_3.json"
    )
    with pytest.raises(ValueError, match="':'"):
        export_folder("bad:prefix", TASK)


# --- layout --------------------------------------------------------------------------------


def test_full_export_writes_rds_layout(s3: S3Client) -> None:
    result = export(s3)

    folder = f"{PREFIX}/{TASK}/"
    assert result.folder == folder
    assert listed_keys(s3) == set(result.keys)
    assert all(key.startswith(folder) for key in result.keys)
    info_key = export_info_key(PREFIX, TASK)
    tables_key = f"{folder}export_tables_info_{TASK}_from_1_to_3.json"
    assert result.keys[-1] == info_key  # written last: its presence means complete
    assert result.keys[-2] == tables_key
    assert tables_key.startswith(export_tables_info_prefix(PREFIX, TASK))

    by_table = data_keys(result)
    assert len(result.keys) == 2 + sum(len(keys) for keys in by_table.values())
    assert sorted(by_table) == ["customers", "order_items", "orders"]
    partitions = {
        table: [key.rsplit("/part-", 1)[1][:5] for key in keys] for table, keys in by_table.items()
    }
    assert partitions == {
        "customers": ["00000"],
        "orders": ["00000", "00002"],
        "order_items": ["00000"],
    }
    assert result.table_status == dict.fromkeys([CUSTOMERS_T, ORDERS_T, ITEMS_T], "COMPLETE")
    sizes = [s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] for key in result.keys]
    assert result.total_bytes == sum(sizes)
    data_sizes = [
        s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        for keys in by_table.values()
        for key in keys
    ]
    assert result.data_bytes == sum(data_sizes)


def test_parquet_files_read_back_with_schema_columns_and_rows(s3: S3Client) -> None:
    result = export(s3, seed=7)

    by_table = data_keys(result)
    for spec in SAMPLE_SCHEMA:
        keys = by_table[spec.ref.table]
        table = read_table(s3, keys)
        assert table.column_names == [column.name for column in spec.columns]
        assert table.num_rows == spec.row_count
        # PostgreSQL numeric and timestamp arrive as strings (AWS's PostgreSQL table)
        types = dict(zip(table.column_names, table.schema.types, strict=True))
        assert all(
            types[c.name] == pa.string()
            for c in spec.columns
            if c.doc_type in {"DECIMAL", "TIMESTAMP"}
        )
        assert table.equals(sample_table(spec.ref, seed=7))
        for key in keys:
            metadata = pq.ParquetFile(io.BytesIO(body(s3, key))).metadata
            assert metadata.num_rows > 0
            assert metadata.row_group(0).column(0).compression == "GZIP"


def test_sample_rows_are_consistent() -> None:
    customers, orders, items = (sample_table(ref, seed=3).to_pydict() for ref in SAMPLE_TABLES)
    assert len(set(customers["id"])) == len(customers["id"])
    assert len(set(customers["email"])) == len(customers["email"])
    assert set(orders["customer_id"]) <= set(customers["id"])
    assert set(items["order_id"]) <= set(orders["id"])
    lines = list(zip(items["order_id"], items["line"], strict=True))
    assert len(set(lines)) == len(lines)  # (order_id, line) is a key


# --- metadata ------------------------------------------------------------------------------


def test_export_info_summarises_the_export(s3: S3Client) -> None:
    result = export(s3, export_only=["shop"], iam_role_arn="arn:aws:iam::123456789012:role/x")

    info = read_json(s3, export_info_key(PREFIX, TASK))
    assert info["exportTaskIdentifier"] == TASK
    assert info["sourceArn"] == SOURCE_ARN
    assert info["exportOnly"] == ["shop"]
    assert info["s3Bucket"] == BUCKET
    assert info["s3Prefix"] == PREFIX
    assert info["exportedFilesPath"] == f"{PREFIX}/{TASK}"
    assert info["iamRoleArn"] == "arn:aws:iam::123456789012:role/x"
    assert "kmsKeyId" not in info
    assert info["status"] == "COMPLETE"
    assert info["percentProgress"] == 100
    assert info["snapshotTime"] == "2024-05-01T03:00:00+00:00"
    assert info["taskStartTime"] == "2024-05-01T03:05:00+00:00"
    assert info["taskEndTime"] == "2024-05-01T03:20:00+00:00"
    assert info["totalExportedDataInGB"] == pytest.approx(result.data_bytes / 1024**3)
    assert "warningMessage" not in info
    assert info["sandbox"]["tableCount"] == 3
    assert info["sandbox"]["statusCounts"] == {"COMPLETE": 3, "FAILED": 0, "SKIPPED": 0}
    assert info["sandbox"]["totalExportedBytes"] == result.data_bytes


def test_export_tables_info_describes_each_table(s3: S3Client) -> None:
    result = export(s3)

    info = read_json(s3, export_tables_info_key(PREFIX, TASK, 1, 3))
    entries = info["perTableStatus"]
    assert [entry["target"] for entry in entries] == [CUSTOMERS_T, ORDERS_T, ITEMS_T]
    by_table = data_keys(result)
    for entry, spec in zip(entries, SAMPLE_SCHEMA, strict=True):
        assert entry["status"] == "COMPLETE"
        mappings = entry["schemaMetadata"]["originalTypeMappings"]
        assert [m["columnName"] for m in mappings] == [c.name for c in spec.columns]
        assert {m["expectedExportedType"] for m in mappings} >= {"int64"}
        assert set(mappings[0]) == {
            "columnName",
            "originalType",
            "expectedExportedType",
            "originalCharMaxLength",
            "originalNumPrecision",
            "originalDateTimePrecision",
        }
        partitioning = entry["tableStatistics"]["partitioningInfo"]
        assert partitioning["numberOfPartitions"] == len(spec.partitions)
        assert partitioning["numberOfCompletedPartitions"] == len(spec.partitions)
        sizes = sum(
            s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
            for key in by_table[spec.ref.table]
        )
        assert entry["sizeGB"] == pytest.approx(sizes / 1024**3)


# --- ExportOnly ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shop.public.orders", "shop.orders"])
def test_export_only_writes_only_the_chosen_table(s3: S3Client, name: str) -> None:
    result = export(s3, export_only=[name])

    assert sorted(data_keys(result)) == ["orders"]
    assert result.table_status == {ORDERS_T: "COMPLETE"}
    tables_key = export_tables_info_key(PREFIX, TASK, 1, 1)
    assert listed_keys(s3, export_tables_info_prefix(PREFIX, TASK)) == {tables_key}
    assert [e["target"] for e in read_json(s3, tables_key)["perTableStatus"]] == [ORDERS_T]
    assert read_json(s3, export_info_key(PREFIX, TASK))["exportOnly"] == [name]


def test_export_only_matching_nothing_writes_only_export_info(s3: S3Client) -> None:
    result = export(s3, export_only=["warehouse"])

    assert result.keys == [export_info_key(PREFIX, TASK)]
    assert result.table_status == {}
    assert result.data_bytes == 0
    info = read_json(s3, export_info_key(PREFIX, TASK))
    assert info["status"] == "COMPLETE"
    assert info["sandbox"]["tableCount"] == 0
    assert info["totalExportedDataInGB"] == 0


# --- outcomes ------------------------------------------------------------------------------


def test_failed_and_skipped_tables_are_listed_without_data(s3: S3Client) -> None:
    result = export(s3, table_outcomes={ORDERS_T: "FAILED", CUSTOMERS_T: "SKIPPED"})

    assert sorted(data_keys(result)) == ["order_items"]
    assert listed_keys(s3, f"{PREFIX}/{TASK}/shop/public.orders/") == set()
    assert listed_keys(s3, f"{PREFIX}/{TASK}/shop/public.customers/") == set()
    assert result.table_status == {CUSTOMERS_T: "SKIPPED", ORDERS_T: "FAILED", ITEMS_T: "COMPLETE"}

    entries = {
        e["target"]: e
        for e in read_json(s3, export_tables_info_key(PREFIX, TASK, 1, 3))["perTableStatus"]
    }
    assert entries[CUSTOMERS_T]["status"] == "SKIPPED"
    assert entries[CUSTOMERS_T]["warningMessage"] == SKIPPED_REASON
    assert entries[CUSTOMERS_T]["sizeGB"] == 0
    assert entries[ORDERS_T]["status"] == "FAILED"
    assert ORDERS_T in entries[ORDERS_T]["failureCause"]
    assert "schemaMetadata" not in entries[ORDERS_T]
    assert entries[ITEMS_T]["status"] == "COMPLETE"

    info = read_json(s3, export_info_key(PREFIX, TASK))
    assert info["status"] == "COMPLETE"  # a skipped table does not fail the task
    assert info["sandbox"]["statusCounts"] == {"COMPLETE": 1, "FAILED": 1, "SKIPPED": 1}
    assert CUSTOMERS_T in info["warningMessage"]
    assert ORDERS_T in info["warningMessage"]


def test_outcome_of_a_table_left_out_by_export_only_is_ignored(s3: S3Client) -> None:
    result = export(s3, export_only=["shop.public.customers"], table_outcomes={ORDERS_T: "FAILED"})

    assert result.table_status == {CUSTOMERS_T: "COMPLETE"}


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ({"shop.public.payments": "FAILED"}, "not a sample table"),
        ({"shop.orders": "FAILED"}, "not a sample table"),
        ({ORDERS_T: "failed"}, "not one of"),
    ],
)
def test_bad_outcomes_are_refused_before_writing(
    s3: S3Client, outcomes: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        export(s3, table_outcomes=outcomes)
    assert listed_keys(s3) == set()


# --- encryption ----------------------------------------------------------------------------


def test_kms_key_encrypts_every_object(s3: S3Client) -> None:
    result = export(s3, kms_key_id=KMS_KEY)

    for key in result.keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == KMS_KEY
    assert read_json(s3, export_info_key(PREFIX, TASK))["kmsKeyId"] == KMS_KEY


def test_without_kms_key_objects_are_not_kms_encrypted(s3: S3Client) -> None:
    result = export(s3)

    for key in result.keys:
        assert s3.head_object(Bucket=BUCKET, Key=key).get("ServerSideEncryption") != "aws:kms"


# --- determinism ---------------------------------------------------------------------------


def contents(s3: S3Client, result: ExportResult) -> dict[str, bytes]:
    return {key.removeprefix(result.folder): body(s3, key) for key in result.keys}


def test_same_seed_writes_identical_files(s3: S3Client) -> None:
    first = export(s3, seed=42)
    first_contents = contents(s3, first)
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in first.keys]})

    second = export(s3, seed=42)

    assert second.keys == first.keys
    assert contents(s3, second) == first_contents


def test_other_seed_writes_other_rows_and_file_names(s3: S3Client) -> None:
    def names(result: ExportResult) -> set[str]:
        return {key.rsplit("/", 1)[1] for keys in data_keys(result).values() for key in keys}

    first = export(s3, seed=1)
    first_names, first_orders = names(first), read_table(s3, data_keys(first)["orders"])
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in first.keys]})

    second = export(s3, seed=2)

    assert first_names.isdisjoint(names(second))
    second_orders = read_table(s3, data_keys(second)["orders"])
    assert first_orders.num_rows == second_orders.num_rows == ORDERS.row_count
    assert not first_orders.equals(second_orders)
