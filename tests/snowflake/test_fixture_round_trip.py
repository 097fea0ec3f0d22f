"""Every row and every value of the fixture databases (sandbox/fixture_db.py: one column per
row of AWS's conversion tables, with edge values) loaded into fakesnow over two nights, and
compared with the SOURCE values the fixture defines.

The export files are the sandbox's (AWS's Parquet types), the manifest is PublishManifest's
own builder (rds_s3_export.manifest, version 2, footers read by rds_s3_export.parquet_footer),
and the load is the generated procedure body run through the session shim.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rds_s3_export import manifest as m
from rds_s3_export import parquet_footer as pf
from sandbox import fixture_db
from sandbox.export_files import write_export
from sandbox.fixture_db import FixtureColumn, FixtureDatabase, FixtureTable
from sandbox.parquet_types import export_text
from snowflake_sql.local import copy_prefix
from snowflake_sql.procedure import fold, table_name
from tests.snowflake.conftest import Night, fresh_snowflake, publish

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
BUCKET = "fixture-exports"


def _night(s3: Any, root: Path, database: FixtureDatabase, task: str, prefix: str) -> Night:
    written = write_export(
        s3,
        bucket=BUCKET,
        s3_prefix=prefix,
        export_task_id=task,
        source_arn="arn:aws:rds:us-east-1:123456789012:snapshot:fixture",
        database=database,
    )
    folder = m.export_folder(prefix, task)
    listing = [
        (o["Key"], o["Size"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=folder)
        for o in page.get("Contents", [])
    ]
    (info_key,) = [k for k, _ in listing if "/export_tables_info_" in k]
    tables_info = json.loads(s3.get_object(Bucket=BUCKET, Key=info_key)["Body"].read())[
        "perTableStatus"
    ]
    footers = {
        f.key: pf.read_footer(pf.s3_range_reader(s3, BUCKET, f.key), f.size, f.key)
        for f in m.footers_to_read(BUCKET, task, prefix, tables_info, listing)
    }
    manifest = m.build_manifest(
        bucket=BUCKET,
        s3_prefix=prefix,
        export_task_id=task,
        export_info={"exportTaskIdentifier": task, "status": "COMPLETE"},
        tables_info=tables_info,
        listing=listing,
        footers=footers,
        database={"kind": "instance", "id": database.name},
        snapshot={"id": f"snap-{task}", "arn": "arn:aws:rds:::snapshot:x", "time": "t"},
        execution=f"arn:aws:states:us-east-1:123456789012:execution:rds-s3-export:{task}",
        written_at="2024-01-02T04:00:00+00:00",
    )
    copy_prefix(s3, BUCKET, prefix, root)
    assert written.keys
    return Night(task, manifest)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        for engine, database in fixture_db.FIXTURES.items():
            root = tmp_path_factory.mktemp(f"stage-{engine}")
            prefix = f"exports/{engine}"
            nights = [_night(s3, root, database, f"{engine}-night-{n}", prefix) for n in (1, 2)]
            out[engine] = (root, nights)
    return out


def _expected(engine: str, column: FixtureColumn, kind: str, value: Any) -> Any:
    """What Snowflake holds for a source value, given the column's Snowflake type ``kind``
    (docs/snowflake.md's table): exported text for VARCHAR columns, the value otherwise."""
    if value is None:
        return None
    if kind == "VARCHAR":
        if isinstance(value, bytes):  # MySQL CHAR: UTF-8 bytes decoded
            return value.decode()
        return export_text(engine, column, value)  # type: ignore[arg-type]
    if kind.startswith("NUMBER") and isinstance(value, int | Decimal):
        return Decimal(value)
    if kind == "VARIANT":
        return json.loads(value)
    if kind.startswith("TIMESTAMP_TZ") and isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def _loaded_equal(got: Any, want: Any, kind: str) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if kind == "VARIANT" and got is not None:  # fakesnow returns a VARIANT as its JSON text
        return bool(json.loads(got) == want)
    if isinstance(got, datetime) and isinstance(want, datetime) and got.tzinfo and want.tzinfo:
        return got == want
    return bool(got == want)


def _types(snow: Any, name: str) -> dict[str, str]:
    rows = snow.rows(
        'SELECT COLUMN_NAME, DATA_TYPE FROM "RAW".INFORMATION_SCHEMA.COLUMNS '
        f"WHERE TABLE_SCHEMA = 'MYDB' AND TABLE_NAME = '{name}'"
    )
    return {r[0]: r[1] for r in rows}


def _entry(night: Night, table: FixtureTable) -> dict[str, Any]:
    (entry,) = [t for t in night.manifest["tables"] if t["target"].endswith(f".{table.name}")]
    return dict(entry)


def _compare(
    engine: str, snow: Any, table: FixtureTable, kinds: dict[str, str], target: str
) -> int:
    name = table_name(target)
    columns = [fold(c.name) for c in table.columns]
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    loaded = snow.rows(f'SELECT {select} FROM "RAW"."MYDB"."{name.replace(chr(34), 2 * chr(34))}"')
    assert len(loaded) == len(table.rows), table.target
    key = 0  # the first column is the id in every fixture table
    by_id = {row[key]: row for row in loaded}
    compared = 0
    for source in table.rows:
        got_row = by_id[Decimal(source[key])]
        for column, got, value in zip(table.columns, got_row, source, strict=True):
            kind = kinds[fold(column.name)]
            want = _expected(engine, column, kind, value)
            assert _loaded_equal(got, want, kind), (table.target, column.name, got, want)
            compared += 1
    return compared


def _kinds(night: Night, table: FixtureTable) -> dict[str, str]:
    from snowflake_sql.types import snowflake_type

    return {fold(c["name"]): snowflake_type(c).sql for c in _entry(night, table)["columns"]}


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_every_value_round_trips_over_two_nights(engine: str, exports: dict[str, Any]) -> None:
    root, (one, two) = exports[engine]
    database = fixture_db.FIXTURES[engine]
    compared = rows = 0
    with fresh_snowflake(root, one, database="RAW", schema="MYDB") as snow:
        assert snow.first_load is not None and "rows loaded" in snow.first_load
        publish(root, two)
        report = snow.call()
        assert report.startswith(f"export {two.task_id}:")
        for table in database.tables:
            if not table.exported:
                continue
            kinds = _kinds(two, table)
            compared += _compare(engine, snow, table, kinds, _entry(two, table)["target"])
            rows += len(table.rows)
    print(f"\n{engine}: {rows} rows, {compared} values compared with the fixture's source values")
    assert rows == database.row_count


def test_edge_types_land_where_the_docs_say(exports: dict[str, Any]) -> None:
    root, (one, _) = exports["mysql"]
    with fresh_snowflake(root, one) as snow:
        types = _types(snow, "ALL_TYPES")
    assert types["C_DATETIME"] == "TIMESTAMP_NTZ"
    assert types["C_TIMESTAMP"] == "TIMESTAMP_TZ"
    assert types["C_TIME"] == "TEXT"  # beyond 24 h
    assert types["C_BIGINT_UNSIGNED"] == "NUMBER"
    assert types["C_BLOB"] == "BINARY"
    assert types["C_CHAR"] == "TEXT"
