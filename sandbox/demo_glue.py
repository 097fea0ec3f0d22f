"""`python -m sandbox.demo_glue` (`make demo-glue`): the Glue catalog following the export.

The stack's `-c glue_database=shop_exports`, on moto's Glue, four nights in a row:

1. the first export: one Glue table per exported table, at its folder in the export;
2. a column is added to a table: its Glue table is updated, every table moves to night 2's
   export, and night 1's export is purged;
3. a table is dropped from the source: its Glue table is deleted;
4. Glue refuses UpdateTable (injected): the run succeeds with a warning naming the cause, the
   tables still point at night 3's export, and night 3's export is kept.

After each night the catalog is printed (table, location, columns) and checked: every table
points into the export the manifest names, or, after night 4, into a folder still there.
docs/athena.md gives the Athena query a user then runs.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from rds_s3_export import catalog
from sandbox import fixture_db
from sandbox.demo import DEMO_TIMING, FIRST_NIGHT, PREFIX, next_night, run
from sandbox.runtime import Sandbox, Settings

GLUE_DATABASE = "shop_exports"
ADDED = fixture_db.FixtureColumn("Loyalty Tier", "TEXT", "text")


def _with_column(source: fixture_db.FixtureDatabase, table: str) -> fixture_db.FixtureDatabase:
    tables = tuple(
        dataclasses.replace(
            t, columns=(*t.columns, ADDED), rows=tuple((*row, "gold") for row in t.rows)
        )
        if t.name == table
        else t
        for t in source.tables
    )
    return dataclasses.replace(source, tables=tables)


def _without(source: fixture_db.FixtureDatabase, table: str) -> fixture_db.FixtureDatabase:
    return dataclasses.replace(source, tables=tuple(t for t in source.tables if t.name != table))


def show_catalog(sb: Sandbox, output: dict[str, Any] | None) -> bool:
    """Print the catalog; True when every table points at a folder that holds its files."""
    found = (output or {}).get("catalog") or {}
    print(
        f"   catalog {GLUE_DATABASE}: {found.get('status')}; created {found.get('created')}, "
        f"updated {len(found.get('updated') or [])}, deleted {found.get('deleted')}"
    )
    for warning in found.get("warnings") or []:
        print(f"     warning: {warning}")
    bucket, ok = sb.settings.bucket, True
    listing = sb.listing(f"{PREFIX}/")
    for name, table in sorted(sb.catalog().items()):
        location = table["StorageDescriptor"]["Location"]
        key = location.removeprefix(f"s3://{bucket}/")
        files = sum(1 for k in listing if k.startswith(key))
        columns = table["StorageDescriptor"]["Columns"]
        empty = table["Parameters"].get(catalog.TARGET_KEY, "").endswith("empty_table")
        there = files > 0 or empty
        ok = ok and there
        print(
            f"     {name:<36} {len(columns):>2} columns  {key.removeprefix(PREFIX + '/')}  "
            f"({files} files{'' if there else ', MISSING'})"
        )
    return ok


def main() -> int:
    t0 = time.monotonic()
    print(f"rds-s3-export Glue catalog demo: -c glue_database={GLUE_DATABASE}, on moto's Glue")
    source = fixture_db.POSTGRES
    with Sandbox(
        Settings(glue_database=GLUE_DATABASE), timing=DEMO_TIMING, start=FIRST_NIGHT
    ) as sb:
        sb.add_instance("mydb")
        sb.rds.database = source
        first = run(sb, "Night 1: first export, the catalog is created", {}, "night-1")
        ok = first.status == "SUCCEEDED" and show_catalog(sb, first.output)

        next_night(sb, 2)
        sb.rds.database = _with_column(source, "all_types")
        second = run(sb, "Night 2: a column added to all_types", {}, "night-2")
        ok = ok and second.status == "SUCCEEDED" and show_catalog(sb, second.output)

        next_night(sb, 3)
        sb.rds.database = _without(_with_column(source, "all_types"), "empty_table")
        third = run(sb, "Night 3: empty_table dropped from the source", {}, "night-3")
        ok = ok and third.status == "SUCCEEDED" and show_catalog(sb, third.output)
        ok = ok and bool(((third.output or {}).get("catalog") or {}).get("deleted"))

        next_night(sb, 4)
        sb.faults.api("glue", "UpdateTable", "AccessDeniedException", times=None)
        fourth = run(sb, "Night 4: Glue refuses UpdateTable (injected)", {}, "night-4")
        ok = ok and fourth.status == "SUCCEEDED" and show_catalog(sb, fourth.output)
        kept = third.output is not None and third.output["export"]["task_id"] in sb.export_folders(
            PREFIX
        )
        print(f"   night 3's export, which the catalog still names: {'kept' if kept else 'GONE'}")
        ok = ok and kept
    print(f"Glue demo {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s real time")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
