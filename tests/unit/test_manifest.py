"""The manifest builder: pure, so tested on the files the sandbox writes, without a pipeline."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rds_s3_export import manifest as m
from sandbox import export_files as ef
from tests.helpers import write_sample_export

BUCKET = "exports-bucket"
PREFIX = "exports/mydb"
TASK = "mydb-20240102-0300"


def _export(table_outcomes: dict[str, str] | None = None) -> dict[str, Any]:
    """Write a sandbox export into moto and return what build_manifest needs from it."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        snapshot = "arn:aws:rds:us-east-1:123456789012:snapshot:mysnap"
        written = write_sample_export(
            s3, BUCKET, PREFIX, TASK, snapshot, table_outcomes=table_outcomes
        )
    return {
        "export_info": written.export_info,
        "tables_info": written.tables_info,
        "data_keys": written.keys,
    }


def _build(**files: Any) -> dict[str, Any]:
    return m.build_manifest(
        bucket=BUCKET,
        s3_prefix=PREFIX,
        export_task_id=TASK,
        database={"kind": "instance", "id": "mydb"},
        snapshot={"id": "mysnap", "arn": "arn:aws:rds:::snapshot:mysnap", "time": "2024-01-02"},
        execution="arn:aws:states:us-east-1:123456789012:execution:rds-s3-export:night-1",
        written_at="2024-01-02T04:00:00+00:00",
        **files,
    )


def test_manifest_key_is_a_top_level_underscore_file() -> None:
    assert m.manifest_key("exports/mydb") == "exports/mydb/_manifest.json"
    assert m.manifest_key("exports/mydb/") == "exports/mydb/_manifest.json"
    assert m.MANIFEST_NAME.startswith("_")  # no RDS export task id starts with "_"


def test_table_folder_replaces_the_first_dot_only() -> None:
    assert m.table_folder("shop.public.orders") == "shop/public.orders"
    assert m.table_folder("shop.My Schema.a.b") == "shop/My Schema.a.b"
    assert m.table_folder("shop.orders") == "shop/orders"  # MySQL's database.table
    with pytest.raises(ValueError, match="not <database>"):
        m.table_folder("orders")


def test_manifest_of_a_sandbox_export() -> None:
    manifest = _build(**_export())

    assert manifest["manifest_version"] == 1
    assert manifest["export_folder"] == f"{PREFIX}/{TASK}/"
    assert manifest["s3_uri"] == f"s3://{BUCKET}/{PREFIX}/{TASK}/"
    assert manifest["export_task_id"] == TASK
    assert manifest["database"] == {"kind": "instance", "id": "mydb"}
    assert manifest["snapshot"]["id"] == "mysnap"
    by_target = {t["target"]: t for t in manifest["tables"]}
    assert list(by_target) == [ref.target for ref in ef.SAMPLE_TABLES]
    orders = by_target["shop.public.orders"]
    assert orders["status"] == "COMPLETE"
    assert orders["folder"] == f"{PREFIX}/{TASK}/shop/public.orders/"
    assert orders["file_count"] == 2
    assert all(f.startswith("shop/public.orders/1/part-") for f in orders["files"])
    # every data file of the export is listed, once, under its own table
    listed = {f"{PREFIX}/{TASK}/{f}" for t in manifest["tables"] for f in t["files"]}
    assert listed == {k for k in _export()["data_keys"] if k.endswith(".parquet")}
    total = next(c for c in orders["columns"] if c["name"] == "total")
    assert total == {
        "name": "total",
        "original_type": "numeric",
        # PostgreSQL numeric is exported as a UTF-8 string (AWS's PostgreSQL conversion table,
        # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html),
        # so the exported type carries no scale
        "exported_type": "binary (UTF8)",
        "precision": 12,
        "scale": None,
        "char_length": None,
        "datetime_precision": None,
    }
    ordered_at = next(c for c in orders["columns"] if c["name"] == "ordered_at")
    assert ordered_at["datetime_precision"] == 6
    status = next(c for c in orders["columns"] if c["name"] == "status")
    assert status["char_length"] == 20
    # JSON-safe, and round-trips
    assert json.loads(m.dumps(manifest)) == manifest


def test_skipped_and_failed_tables_are_listed_without_files() -> None:
    outcomes = {"shop.public.customers": "SKIPPED", "shop.public.order_items": "FAILED"}
    by_target = {t["target"]: t for t in _build(**_export(outcomes))["tables"]}

    assert by_target["shop.public.customers"]["status"] == "SKIPPED"
    assert by_target["shop.public.customers"]["files"] == []
    assert by_target["shop.public.customers"]["file_count"] == 0
    assert by_target["shop.public.customers"]["warning"] == "PERMISSIONS_DO_NOT_EXIST"
    assert by_target["shop.public.order_items"]["status"] == "FAILED"
    assert "failure_cause" in by_target["shop.public.order_items"]
    assert by_target["shop.public.orders"]["file_count"] == 2


def test_files_of_a_neighbouring_table_are_not_taken() -> None:
    base = f"{PREFIX}/{TASK}/"
    tables_info = [
        {"target": "db.s.t", "status": "COMPLETE"},
        {"target": "db.s.t2", "status": "COMPLETE"},
    ]
    keys = [
        f"{base}db/s.t/1/part-00000-a.gz.parquet",
        f"{base}db/s.t2/1/part-00000-b.gz.parquet",
        f"{base}export_info_{TASK}.json",
        f"{PREFIX}/older-task/db/s.t/1/part-00000-c.gz.parquet",  # another export folder
    ]
    manifest = _build(export_info={}, tables_info=tables_info, data_keys=keys)
    assert [t["files"] for t in manifest["tables"]] == [
        ["db/s.t/1/part-00000-a.gz.parquet"],
        ["db/s.t2/1/part-00000-b.gz.parquet"],
    ]


def test_a_table_with_too_many_files_keeps_only_folder_and_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(m, "MAX_FILES_LISTED", 3)
    base = f"{PREFIX}/{TASK}/"
    keys = [f"{base}db/s.big/1/part-{i:05d}-x.gz.parquet" for i in range(4)]
    keys += [f"{base}db/s.small/1/part-00000-x.gz.parquet"]
    tables_info = [{"target": "db.s.big", "status": "COMPLETE"}]
    tables_info += [{"target": "db.s.small", "status": "COMPLETE"}]

    big, small = _build(export_info={}, tables_info=tables_info, data_keys=keys)["tables"]

    assert big["files_omitted"] is True
    assert "files" not in big
    assert big["file_count"] == 4
    assert big["folder"] == f"{base}db/s.big/"
    assert small["files"] == ["db/s.small/1/part-00000-x.gz.parquet"]
    assert "files_omitted" not in small


def test_a_manifest_above_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(m.ManifestTooLarge, match="above the 100-byte cap"):
        _build(**_export())


def test_export_info_for_another_task_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'mydb-20240102-0300'"):
        _build(export_info={"exportTaskIdentifier": "other"}, tables_info=[], data_keys=[])
