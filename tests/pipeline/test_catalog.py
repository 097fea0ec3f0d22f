"""The Glue catalog (-c glue_database): it follows the export night after night on moto's Glue,
and a failure to update it is a warning that keeps the previous export (never a folder a table
still points at is deleted)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rds_s3_export import catalog
from sandbox.export_files import sample_database
from sandbox.fixture_db import FixtureColumn, FixtureDatabase
from sandbox.runtime import RunResult, Sandbox, Settings
from tests.helpers import seed_objects

PREFIX = "exports/mydb"
DATABASE = "shop_exports"


@pytest.fixture
def settings() -> Settings:
    return Settings(glue_database=DATABASE)


def _ok(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    return result.output


def _columns(table: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


def _with_new_column() -> FixtureDatabase:
    """The sample, with a column added to customers (night 2)."""
    source = sample_database()
    column = FixtureColumn("Loyalty Tier", "TEXT", "text")
    tables = tuple(
        dataclasses.replace(
            table,
            columns=(*table.columns, column),
            rows=tuple((*row, "gold") for row in table.rows),
        )
        if table.name == "customers"
        else table
        for table in source.tables
    )
    return dataclasses.replace(source, tables=tables)


def _without(name: str, source: FixtureDatabase) -> FixtureDatabase:
    return dataclasses.replace(source, tables=tuple(t for t in source.tables if t.name != name))


def test_the_catalog_follows_the_export_night_after_night(sandbox: Sandbox) -> None:
    bucket = sandbox.settings.bucket
    # night 1: one table per exported table, at its folder in the new export
    out = _ok(sandbox.run({}))
    first = out["export"]["task_id"]
    manifest = sandbox.manifest()
    assert manifest is not None
    assert out["catalog"]["status"] == "updated"
    assert sorted(out["catalog"]["created"]) == [
        "shop_public_customers",
        "shop_public_order_items",
        "shop_public_orders",
    ]
    tables = sandbox.catalog()
    assert sorted(tables) == sorted(out["catalog"]["created"])
    for entry in manifest["tables"]:
        table = tables[catalog.table_name(entry["target"])]
        location = table["StorageDescriptor"]["Location"]
        assert location == f"s3://{bucket}/{entry['folder']}"
        assert location.startswith(f"s3://{bucket}/{PREFIX}/{first}/")
        # every data file lies under the location (in its batch subfolder)
        assert all(
            f"s3://{bucket}/{entry['folder']}{f['path']}".startswith(location)
            for f in entry["files"]
        )
        assert [n for n, _ in _columns(table)] == [c["name"].lower() for c in entry["columns"]]
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert table["Parameters"]["classification"] == "parquet"
        assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == catalog.SERDE

    # night 2: a column added -> the table is updated, and points at the new export
    sandbox.rds.database = _with_new_column()
    out = _ok(sandbox.run({}))
    second = out["export"]["task_id"]
    assert sorted(out["catalog"]["updated"]) == sorted(tables)
    customers = sandbox.catalog()["shop_public_customers"]
    assert _columns(customers)[-1] == ("loyalty tier", "string")
    assert customers["StorageDescriptor"]["Location"].startswith(
        f"s3://{bucket}/{PREFIX}/{second}/"
    )
    assert sandbox.export_folders(PREFIX) == [second]  # the previous export went, as always

    # night 3: a table removed -> its Glue table is deleted; a user's table is never touched
    sandbox.client("glue").create_table(
        DatabaseName=DATABASE, TableInput={"Name": "users_own_table", "Parameters": {}}
    )
    sandbox.rds.database = _without("order_items", _with_new_column())
    out = _ok(sandbox.run({}))
    third = out["export"]["task_id"]
    assert out["catalog"]["deleted"] == ["shop_public_order_items"]
    now = sandbox.catalog()
    assert sorted(now) == ["shop_public_customers", "shop_public_orders", "users_own_table"]
    assert all(
        now[n]["StorageDescriptor"]["Location"].startswith(f"s3://{bucket}/{PREFIX}/{third}/")
        for n in ("shop_public_customers", "shop_public_orders")
    )
    assert sandbox.export_folders(PREFIX) == [third]


def test_a_catalog_failure_is_a_warning_and_keeps_the_previous_export(sandbox: Sandbox) -> None:
    bucket = sandbox.settings.bucket
    first = _ok(sandbox.run({}))["export"]["task_id"]

    # night 2: Glue refuses every UpdateTable; the run succeeds, names the cause, keeps night 1
    sandbox.faults.api("glue", "UpdateTable", "AccessDeniedException", times=None)
    out = _ok(sandbox.run({}))
    second = out["export"]["task_id"]
    assert out["catalog"]["status"] == "failed"
    assert out["catalog"]["previous_export_may_go"] is False
    (warning,) = out["catalog"]["warnings"]
    assert "glue:UpdateTable" in warning and "AccessDeniedException" in warning
    assert sandbox.manifest()["export_task_id"] == second  # type: ignore[index]
    assert sandbox.export_folders(PREFIX) == sorted([first, second])
    locations = {t["StorageDescriptor"]["Location"] for t in sandbox.catalog().values()}
    # the tables still point at night 1's folders, which are all still there
    assert all(loc.startswith(f"s3://{bucket}/{PREFIX}/{first}/") for loc in locations)
    listed = sandbox.listing(f"{PREFIX}/{first}/")
    assert all(
        any(k.startswith(loc.removeprefix(f"s3://{bucket}/")) for k in listed) for loc in locations
    )

    # night 3: Glue works again: the catalog is repaired and night 2's export goes; night 1's
    # folder, which the catalog named when the purge began, is kept (with a warning) ...
    sandbox.faults.clear()
    out = _ok(sandbox.run({}))
    third = out["export"]["task_id"]
    assert out["catalog"]["status"] == "updated"
    assert all(
        t["StorageDescriptor"]["Location"].startswith(f"s3://{bucket}/{PREFIX}/{third}/")
        for t in sandbox.catalog().values()
    )
    assert any(first in w and "Glue catalog" in w for w in out["purge"]["warnings"])
    assert sandbox.export_folders(PREFIX) == sorted([first, third])

    # ... and goes on night 4, once no table points at it
    fourth = _ok(sandbox.run({}))["export"]["task_id"]
    assert sandbox.export_folders(PREFIX) == [fourth]


def test_an_unreadable_catalog_keeps_every_old_export(sandbox: Sandbox) -> None:
    # an old export folder that no manifest names (the purge would delete it on any night)
    old = "oldexport"
    seed_objects(
        sandbox.settings.bucket,
        [f"{PREFIX}/{old}/export_info_{old}.json", f"{PREFIX}/{old}/shop/public.t/1/part.parquet"],
    )
    # the purge cannot read the catalog: any old folder may be one a table points at
    sandbox.faults.api(
        "glue", "GetTables", "AccessDeniedException", times=None, module="purge_prefix"
    )
    out = _ok(sandbox.run({}))
    assert old in sandbox.export_folders(PREFIX)
    assert any("glue:GetTables" in w and "AccessDenied" in w for w in out["purge"]["warnings"])
    assert out["catalog"]["status"] == "updated"  # UpdateCatalog itself could read it
    # readable again, the catalog names no table in that folder: it goes
    sandbox.faults.clear()
    out = _ok(sandbox.run({}))
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]


def test_without_glue_database_the_step_does_nothing() -> None:
    with Sandbox(Settings()) as sb:
        sb.add_instance("mydb")
        out = _ok(sb.run({}))
        assert out["catalog"]["status"] == "not-configured"
        assert out["catalog"]["previous_export_may_go"] is True
        assert out["catalog"]["created"] == out["catalog"]["warnings"] == []
        # the previous export went as on any night (the catalog holds nothing back)
        second = _ok(sb.run({}))
        assert sb.export_folders(PREFIX) == [second["export"]["task_id"]]
