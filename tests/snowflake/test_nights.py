"""The nightly procedure over several nights on fakesnow: the generated Python body, run
through the session shim (snowflake_sql/local.py), after the printed script ran top to bottom.

Expected rows are the rows written into the Parquet files, read back by pyarrow.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowflake_sql.local import LocalSnowflake
from tests.snowflake.conftest import Night, TableSpec, fresh_snowflake, publish, write_night

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SCHEMA = '"RAW"."MYDB"'

ORDERS = [
    ("id", "bigint", pa.int64()),
    ("total", "numeric(12,2)", pa.decimal128(12, 2)),
    ("ordered_at", "timestamp without time zone", pa.timestamp("us")),
]
CUSTOMERS = [("id", "bigint", pa.int64()), ("name", "character varying(100)", pa.string())]


def _orders(night: int, count: int, *, email: bool = False) -> TableSpec:
    rows = [
        (i, Decimal(f"{night}{i}.25"), datetime(2024, 1, night, i % 24, 0, 0))
        for i in range(1, count + 1)
    ]
    columns = list(ORDERS)
    if email:
        columns.append(("coupon", "character varying(20)", pa.string()))
        rows = [(*r, f"C{r[0]}" if r[0] % 2 else None) for r in rows]
    return TableSpec("shop.public.orders", columns, rows, files=2)


def _customers(night: int, count: int) -> TableSpec:
    return TableSpec(
        "shop.public.customers", CUSTOMERS, [(i, f"n{night}-{i}") for i in range(count)]
    )


def _refunds(count: int) -> TableSpec:
    return TableSpec(
        "shop.public.refunds",
        [("id", "integer", pa.int32()), ("amount", "numeric(9,2)", pa.decimal128(9, 2))],
        [(i, Decimal("0.01") * i) for i in range(count)],
    )


def _error(snow: LocalSnowflake, name: str) -> type[Exception]:
    """The procedure's own exception class (the body runs as its own module)."""
    assert snow.module is not None
    error = getattr(snow.module, name)
    assert issubclass(error, Exception)
    return error


def _table(snow: LocalSnowflake, name: str) -> list[tuple[Any, ...]]:
    return snow.rows(f'SELECT * FROM {SCHEMA}."{name}" ORDER BY 1')


def _written(night: Night, target: str) -> list[tuple[Any, ...]]:
    """The rows of ``target``'s Parquet files, read back by pyarrow."""
    files = sorted(night.folders[target].rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return sorted(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))


def _loads(snow: LocalSnowflake) -> list[tuple[Any, ...]]:
    return snow.rows(
        f"SELECT EXPORT_TASK_ID, STATUS, TABLES_LOADED, ROWS_LOADED, VANISHED "
        f'FROM {SCHEMA}."_RDS_EXPORT_LOADS" ORDER BY RECORDED_AT'
    )


def _reason(snow: LocalSnowflake, task_id: str) -> str:
    return str(
        snow.one(
            f'SELECT REASON FROM {SCHEMA}."_RDS_EXPORT_LOADS" '
            f"WHERE EXPORT_TASK_ID = '{task_id}' AND STATUS = 'FAILED'"
        )
    )


def _same(loaded: list[tuple[Any, ...]], written: list[tuple[Any, ...]]) -> int:
    """Compare value by value (ints loaded as NUMBER come back as Decimal); the count."""
    assert len(loaded) == len(written)
    compared = 0
    for got, want in zip(sorted(loaded, key=str), sorted(written, key=str), strict=True):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g == w, (got, want)
            compared += 1
    return compared


def test_three_nights_with_schema_changes_and_a_failed_copy(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    one = write_night(root, "night-1", [_orders(1, 5), _customers(1, 3)])
    two = write_night(root, "night-2", [_orders(2, 7, email=True), _customers(2, 4)])
    bad = write_night(root, "night-3a", [_orders(3, 6, email=True), _refunds(4)])
    three = write_night(root, "night-3b", [_orders(3, 6, email=True), _refunds(4)])
    # the injected COPY failure: one of night 3a's orders files is not Parquet
    next(bad.folders["shop.public.orders"].rglob("*.parquet")).write_bytes(b"not parquet")
    compared = 0

    with fresh_snowflake(root, one) as snow:  # the script's CALL loads night 1
        assert (
            snow.first_load == "export night-1: 2 tables, 8 rows loaded; "
            "created PUBLIC_ORDERS; created PUBLIC_CUSTOMERS"
        )
        compared += _same(_table(snow, "PUBLIC_ORDERS"), _written(one, "shop.public.orders"))
        compared += _same(_table(snow, "PUBLIC_CUSTOMERS"), _written(one, "shop.public.customers"))

        # night 2: a column is added at the source
        publish(root, two)
        report = snow.call()
        assert "PUBLIC_ORDERS: added COUPON" in report
        compared += _same(_table(snow, "PUBLIC_ORDERS"), _written(two, "shop.public.orders"))
        compared += _same(_table(snow, "PUBLIC_CUSTOMERS"), _written(two, "shop.public.customers"))
        assert snow.call() == "export night-2 already loaded: nothing to do"

        # night 3, first export: refunds is new, customers gone, and one COPY fails
        before = {n: _table(snow, n) for n in ("PUBLIC_ORDERS", "PUBLIC_CUSTOMERS")}
        publish(root, bad)
        with pytest.raises(
            _error(snow, "LoadFailed"), match=r"(?s)export night-3a: .*no table was changed"
        ):
            snow.call()
        assert {n: _table(snow, n) for n in before} == before  # nothing changed
        assert not snow.rows(
            "SELECT TABLE_NAME FROM \"RAW\".INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'MYDB' "
            "AND TABLE_NAME IN ('PUBLIC_REFUNDS') OR TABLE_NAME LIKE '_RDS_STAGE_%'"
        )
        assert "night-3a" in _reason(snow, "night-3a")

        # the next export loads: refunds created, customers reported and left untouched
        publish(root, three)
        report = snow.call()
        assert "created PUBLIC_REFUNDS" in report
        assert "no longer exported, left untouched: PUBLIC_CUSTOMERS" in report
        compared += _same(_table(snow, "PUBLIC_ORDERS"), _written(three, "shop.public.orders"))
        compared += _same(_table(snow, "PUBLIC_REFUNDS"), _written(three, "shop.public.refunds"))
        assert _table(snow, "PUBLIC_CUSTOMERS") == before["PUBLIC_CUSTOMERS"]

        assert [(t, s, n, r) for t, s, n, r, _ in _loads(snow)] == [
            ("night-1", "LOADED", 2, 8),
            ("night-2", "LOADED", 2, 11),
            ("night-3a", "FAILED", None, None),
            ("night-3b", "LOADED", 2, 10),
        ]
    print(f"\nthree nights: 4 loads (1 failed), {compared} values compared")


def test_a_folder_deleted_mid_load_fails_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    one = write_night(root, "night-1", [_orders(1, 5), _customers(1, 3)])
    two = write_night(root, "night-2", [_orders(2, 6), _customers(2, 4)])
    with fresh_snowflake(root, one) as snow:
        before = {n: _table(snow, n) for n in ("PUBLIC_ORDERS", "PUBLIC_CUSTOMERS")}
        publish(root, two)
        copies: list[str] = []

        def purge_after_first_copy(sql: str) -> None:
            # PurgePreviousExport deletes night 2's folder after the first table was staged
            if sql.startswith("COPY INTO"):
                copies.append(sql)
                if len(copies) == 2:
                    shutil.rmtree(root / "night-2")

        with pytest.raises(_error(snow, "LoadFailed"), match="night-2"):
            snow.call(before=purge_after_first_copy)
        assert {n: _table(snow, n) for n in before} == before
        assert _loads(snow)[-1][:2] == ("night-2", "FAILED")


def test_a_count_that_differs_from_the_footers_fails(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    one = write_night(root, "night-1", [_orders(1, 5)])
    two = write_night(root, "night-2", [_orders(2, 6)])
    two.manifest["tables"][0]["row_count"] = 7
    with fresh_snowflake(root, one) as snow:
        before = _table(snow, "PUBLIC_ORDERS")
        publish(root, two)
        with pytest.raises(
            _error(snow, "RowCountMismatch"), match="staged 6 rows, the manifest counts 7"
        ):
            snow.call()
        assert _table(snow, "PUBLIC_ORDERS") == before
        # a failed export is tried again: once the manifest is right, it loads
        two.manifest["tables"][0]["row_count"] = 6
        publish(root, two)
        assert "6 rows loaded" in snow.call()


def test_a_lossy_type_change_is_refused_by_name(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    one = write_night(root, "night-1", [_orders(1, 5)])
    changed = TableSpec(
        "shop.public.orders",
        [("id", "bigint", pa.int64()), ("total", "text", pa.string())],
        [(1, "x")],
    )
    two = write_night(root, "night-2", [changed])
    with fresh_snowflake(root, one) as snow:
        before = _table(snow, "PUBLIC_ORDERS")
        publish(root, two)
        with pytest.raises(_error(snow, "SchemaChangeRefused"), match="column TOTAL is NUMBER"):
            snow.call()
        assert _table(snow, "PUBLIC_ORDERS") == before
        assert "SchemaChangeRefused" in _reason(snow, "night-2")


def test_a_skipped_table_keeps_its_rows(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    one = write_night(root, "night-1", [_orders(1, 5), _customers(1, 3)])
    skipped = _customers(2, 0)
    skipped.status = "SKIPPED"
    two = write_night(root, "night-2", [_orders(2, 6), skipped])
    with fresh_snowflake(root, one) as snow:
        before = _table(snow, "PUBLIC_CUSTOMERS")
        publish(root, two)
        assert "left as they were (not COMPLETE): PUBLIC_CUSTOMERS" in snow.call()
        assert _table(snow, "PUBLIC_CUSTOMERS") == before
        assert len(_table(snow, "PUBLIC_ORDERS")) == 6
