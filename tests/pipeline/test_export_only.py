"""`export_only`: the list is checked up front, reaches StartExportTask as ExportOnly, and the
(simulated) export writes only the selected tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.runtime import Sandbox, Settings

PREFIX = "exports/mydb"


@pytest.fixture
def settings() -> Settings:
    """A stack that lets a run started by hand choose its own export_only."""
    return Settings(allow_export_only_override=True)


def _table_folders(sandbox: Sandbox, prefix: str, task_id: str) -> set[str]:
    """`database/schema.table` of every table with Parquet data in that export folder."""
    keys = sandbox.listing(f"{prefix}/{task_id}/")
    return {"/".join(k.split("/")[-4:-2]) for k in keys if k.endswith(".gz.parquet")}


def _json(sandbox: Sandbox, key: str) -> Any:
    body = sandbox.client("s3").get_object(Bucket=sandbox.settings.bucket, Key=key)["Body"]
    return json.loads(body.read())


@pytest.mark.parametrize(
    ("export_only", "tables"),
    [
        # PostgreSQL form database.schema.table
        (
            ["shop.public.orders", "shop.public.customers"],
            {"shop/public.orders", "shop/public.customers"},
        ),
        # MySQL / MariaDB form database.table
        (["shop.order_items"], {"shop/public.order_items"}),
    ],
    ids=["database.schema.table", "database.table"],
)
def test_export_only_reaches_rds_and_only_those_tables_are_exported(
    sandbox: Sandbox, export_only: list[str], tables: set[str]
) -> None:
    # Given the sample database of three tables
    # When the pipeline runs with an export_only list
    result = sandbox.run({"export_only": export_only})

    # Then StartExportTask was given exactly that list as ExportOnly
    assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
    out = result.output
    assert out is not None
    task_id = out["export"]["task_id"]
    task = sandbox.client("rds").describe_export_tasks(ExportTaskIdentifier=task_id)
    assert task["ExportTasks"][0]["ExportOnly"] == export_only
    # And the export holds data of the selected tables only
    assert sandbox.export_folders(PREFIX) == [task_id]
    assert _table_folders(sandbox, PREFIX, task_id) == tables
    info = _json(sandbox, f"{PREFIX}/{task_id}/export_info_{task_id}.json")
    assert info["exportOnly"] == export_only
    # And the purge's verification counted only those tables, all complete
    assert out["purge"]["verification"]["tables"] == len(tables)
    assert out["purge"]["verification"]["tables_complete"] == len(tables)


BAD_EXPORT_ONLY: list[tuple[str, Any]] = [
    ("four parts", ["shop.public.orders.id"]),
    ("a.b.c.d", ["a.b.c.d"]),
    ("slash", ["db/x"]),
    ("space inside", ["shop.public.order items"]),
    ("space around a dot", ["shop. public"]),
    ("leading space", [" shop"]),
    ("empty name", [""]),
    ("empty part", ["shop..orders"]),
    ("not a list", "shop.public.orders"),
    ("not a string", [42]),
    # 8,500 names of 23 characters: about 220 KB, over the input's 64 KB (and under the 256 KB
    # Step Functions allows as input, so it is the pipeline that must say no)
    ("over 64 KB", [f"shop.public.table_{i:05d}" for i in range(8500)]),
]


def test_bad_export_only_lists_are_refused_before_anything_is_created(sandbox: Sandbox) -> None:
    # Given a database and an empty bucket
    before = sandbox.snapshots("mydb")
    for label, export_only in BAD_EXPORT_ONLY:
        # When the pipeline runs with a malformed export_only
        result = sandbox.run({"export_only": export_only})

        # Then it fails InvalidInput in ValidateInput, the Cause naming the key
        assert result.status == "FAILED", label
        assert result.error == "InvalidInput", f"{label}: {result.error}: {result.cause}"
        assert result.cause is not None
        assert "export_only" in result.cause, label
        if label == "over 64 KB":
            assert "65536 bytes" in result.cause
        assert result.visits("CreateSnapshot") == 0, label

    # And no snapshot was taken and nothing was written
    assert sandbox.snapshots("mydb") == before
    assert sandbox.listing() == {}


def test_export_only_matching_no_table_keeps_the_previous_export(sandbox: Sandbox) -> None:
    # Given a complete export of the whole database from a previous night
    first = sandbox.run({})
    assert first.status == "SUCCEEDED", first.cause
    assert first.output is not None
    previous = first.output["export"]["task_id"]
    previous_keys = sandbox.listing(f"{PREFIX}/{previous}/")

    # When tonight's export_only names a table that does not exist (a typo)
    result = sandbox.run({"export_only": ["shop.public.ordres"]})

    # Then the export itself completes with no table in it, but the run refuses to purge
    assert result.status == "FAILED"
    assert result.error == "PurgeRefused", result.cause
    assert result.cause is not None
    assert "export_tables_info" in result.cause
    assert "nothing was deleted" in result.cause
    # And the previous export is still there, byte for byte, next to the empty new one
    after = sandbox.listing(PREFIX)
    assert {k: v for k, v in after.items() if f"/{previous}/" in k} == previous_keys
    folders = sandbox.export_folders(PREFIX)
    assert len(folders) == 2
    assert previous in folders
    new = next(f for f in folders if f != previous)
    assert _table_folders(sandbox, PREFIX, new) == set()
