"""The manifest builder, on exports laid out as AWS documents them.

The fixtures are not the sandbox's: each test writes Parquet files with pyarrow under the keys
of AWS's "File naming conventions for exports to Amazon S3" page
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.FileNames.html):
`<export id>/<database>/<schema>.<table>/<batch index>/part-<partition>-<uuid>.gz.parquet`,
with its MySQL example `rdststdb/rdststdb.DataInsert_7ADB5D19965123A2/`, batch folders and
gaps in the partition numbers, and the rule of the export considerations page that a space,
`\\`, a backtick and `"` become `_` in the path
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/
aurora-export-snapshot.Considerations.html). Row counts and Parquet types are expected as
pyarrow reads the files back. The builder is pure: the files live in a dict, not in S3.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rds_s3_export import manifest as m
from rds_s3_export import parquet_footer as pf

BUCKET = "exports-bucket"
PREFIX = "exports/mydb"
TASK = "export-1234567890123-459"
BASE = f"{PREFIX}/{TASK}/"


class Export:
    """An export folder in memory: Parquet files written by pyarrow at AWS's documented keys,
    and the tables-info entries RDS would write beside them."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {
            f"{BASE}export_info_{TASK}.json": b"{}",
            f"{BASE}export_tables_info_{TASK}_from_1_to_3.json": b"{}",
        }
        self.tables_info: list[dict[str, Any]] = []

    def table(self, target: str, status: str = "COMPLETE", **entry: Any) -> Export:
        self.tables_info.append({"target": target, "status": status, **entry})
        return self

    def file(self, relative: str, table: pa.Table) -> str:
        """A Parquet file at `<export>/<relative>`; its key."""
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="gzip")
        key = f"{BASE}{relative}"
        self.objects[key] = sink.getvalue()
        return key

    def part(self, folder: str, batch: int, partition: int, rows: int) -> str:
        """`<folder>/<batch>/part-<partition>-<uuid>.gz.parquet` of `rows` rows."""
        name = f"part-{partition:05d}-{uuid.UUID(int=batch * 1000 + partition)}.gz.parquet"
        return self.file(f"{folder}/{batch}/{name}", _rows(rows))

    def listing(self) -> list[tuple[str, int]]:
        return [(key, len(body)) for key, body in sorted(self.objects.items())]

    def footers(self) -> dict[str, pf.Footer]:
        files = m.footers_to_read(BUCKET, TASK, PREFIX, self.tables_info, self.listing())
        return {f.key: self._footer(f.key) for f in files}

    def _footer(self, key: str) -> pf.Footer:
        body = self.objects[key]
        return pf.read_footer(lambda start, n: body[start : start + n], len(body), key)

    def build(self) -> dict[str, Any]:
        return m.build_manifest(
            bucket=BUCKET,
            s3_prefix=PREFIX,
            export_task_id=TASK,
            export_info={"exportTaskIdentifier": TASK, "status": "COMPLETE"},
            tables_info=self.tables_info,
            listing=self.listing(),
            footers=self.footers(),
            database={"kind": "instance", "id": "mydb"},
            snapshot={"id": "mysnap", "arn": "arn:aws:rds:::snapshot:mysnap", "time": "2024-01-02"},
            execution="arn:aws:states:us-east-1:123456789012:execution:rds-s3-export:night-1",
            written_at="2024-01-02T04:00:00+00:00",
        )

    def problems(self) -> list[str]:
        return m.locate_tables(BASE, self.tables_info, self.listing())[1]


def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(start, start + n), pa.int64()),
            "note": pa.array([f"row {i}" for i in range(start, start + n)], pa.string()),
        }
    )


def _rows_read(body: bytes) -> int:
    return int(pq.ParquetFile(io.BytesIO(body)).metadata.num_rows)


def _by_target(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in manifest["tables"]}


# --- the layout AWS documents ------------------------------------------------------------------


def test_postgresql_tables_in_batch_folders_with_gaps_and_a_space_in_a_name() -> None:
    export = (
        Export()
        .table("shop.public.orders")
        .table("shop.public.order lines")
        .table('shop.My Schema.odd`name\\with"quotes')
    )
    keys = [
        export.part("shop/public.orders", 1, 0, 5),
        export.part("shop/public.orders", 1, 3, 7),  # partitions 1 and 2 held no rows
        export.part("shop/public.orders", 2, 0, 11),  # a second batch
        export.part("shop/public.order_lines", 1, 0, 4),  # the space became "_"
        export.part("shop/My_Schema.odd_name_with_quotes", 1, 0, 2),
    ]

    manifest = export.build()

    assert manifest["manifest_version"] == 2
    tables = _by_target(manifest)
    orders = tables["shop.public.orders"]
    assert orders["folder"] == f"{BASE}shop/public.orders/"
    assert orders["file_count"] == 3
    assert orders["row_count"] == sum(_rows_read(export.objects[k]) for k in keys[:3]) == 23
    assert orders["files"] == [
        {
            "path": k[len(orders["folder"]) :],
            "rows": _rows_read(export.objects[k]),
            "size": len(export.objects[k]),
        }
        for k in keys[:3]
    ]
    assert orders["files"][2]["path"].startswith("2/part-00000-")
    lines = tables["shop.public.order lines"]
    assert lines["target"] == "shop.public.order lines"  # as export_tables_info wrote it
    assert lines["folder"] == f"{BASE}shop/public.order_lines/"
    assert (lines["file_count"], lines["row_count"]) == (1, 4)
    odd = tables['shop.My Schema.odd`name\\with"quotes']
    assert odd["folder"] == f"{BASE}shop/My_Schema.odd_name_with_quotes/"
    assert odd["row_count"] == 2
    # JSON-safe, and round-trips
    assert json.loads(m.dumps(manifest)) == manifest


@pytest.mark.parametrize(
    "target",
    ["rdststdb.DataInsert_7ADB5D19965123A2", "rdststdb.rdststdb.DataInsert_7ADB5D19965123A2"],
    ids=["database.table", "database.database.table"],
)
def test_a_mysql_table_in_awss_example_folder_under_either_spelling(target: str) -> None:
    # AWS's example: the database, then <schema>.<table>, where MySQL's schema is the database
    export = Export().table(target)
    export.part("rdststdb/rdststdb.DataInsert_7ADB5D19965123A2", 1, 0, 3)
    export.part("rdststdb/rdststdb.DataInsert_7ADB5D19965123A2", 1, 1, 6)

    (table,) = export.build()["tables"]

    assert table["target"] == target
    assert table["folder"] == f"{BASE}rdststdb/rdststdb.DataInsert_7ADB5D19965123A2/"
    assert (table["file_count"], table["row_count"]) == (2, 9)


def test_a_mysql_two_part_target_in_a_database_table_folder_is_found_too() -> None:
    export = Export().table("shop.orders")
    export.part("shop/orders", 1, 0, 3)
    (table,) = export.build()["tables"]
    assert table["folder"] == f"{BASE}shop/orders/"


def test_files_of_the_older_naming_convention_directly_in_the_table_folder() -> None:
    export = Export().table("shop.public.orders")
    export.file("shop/public.orders/part-00000-a.gz.parquet", _rows(3))
    (table,) = export.build()["tables"]
    assert [f["path"] for f in table["files"]] == ["part-00000-a.gz.parquet"]


def test_a_neighbouring_table_and_another_export_do_not_lend_their_files() -> None:
    export = Export().table("db.s.t").table("db.s.t2")
    export.part("db/s.t", 1, 0, 1)
    export.part("db/s.t2", 1, 0, 2)
    export.objects[f"{PREFIX}/older-task/db/s.t/1/part-00000-c.gz.parquet"] = b"not read"
    t, t2 = export.build()["tables"]
    assert (t["row_count"], t2["row_count"]) == (1, 2)


# --- what the files say: rows and types --------------------------------------------------------


def test_columns_carry_the_parquet_type_beside_rdss() -> None:
    export = Export().table(
        "shop.public.orders",
        schemaMetadata={
            "originalTypeMappings": [
                {
                    "columnName": "total",
                    "originalType": "numeric",
                    "expectedExportedType": "string",
                    "originalNumPrecision": 12,
                    "originalCharMaxLength": 0,
                    "originalDateTimePrecision": 0,
                },
                {
                    "columnName": "ordered_at",
                    "originalType": "timestamp without time zone",
                    "expectedExportedType": "int64 (TIMESTAMP_MICROS)",
                    "originalNumPrecision": 0,
                    "originalCharMaxLength": 0,
                    "originalDateTimePrecision": 6,
                },
                {
                    "columnName": "dropped_since",
                    "originalType": "text",
                    "expectedExportedType": "binary (UTF8)",
                    "originalCharMaxLength": 0,
                },
            ]
        },
    )
    key = export.file(
        "shop/public.orders/1/part-00000-x.gz.parquet",
        pa.table(
            {
                "total": pa.array(["12.50"], pa.string()),
                "ordered_at": pa.array([1_700_000_000_000_000], pa.timestamp("us")),
                "big": pa.array([2**64 - 1], pa.uint64()),
            }
        ),
    )
    schema = pq.ParquetFile(io.BytesIO(export.objects[key])).schema

    (table,) = export.build()["tables"]

    by_name = {c["name"]: c for c in table["columns"]}
    assert list(by_name) == ["total", "ordered_at", "dropped_since", "big"]
    assert by_name["total"]["original_type"] == "numeric"
    assert by_name["total"]["precision"] == 12
    assert by_name["total"]["parquet"]["physical"] == schema.column(0).physical_type
    assert by_name["total"]["parquet"]["logical"] == "STRING"
    stamp = by_name["ordered_at"]["parquet"]
    assert (stamp["physical"], stamp["logical"], stamp["unit"], stamp["utc"]) == (
        schema.column(1).physical_type,
        "TIMESTAMP",
        "MICROS",
        False,  # pyarrow: isAdjustedToUTC=false for a timestamp without a zone
    )
    assert json.loads(schema.column(1).logical_type.to_json())["isAdjustedToUTC"] is False
    assert by_name["ordered_at"]["datetime_precision"] == 6
    # a column RDS listed that the file does not hold has no Parquet type
    assert by_name["dropped_since"]["parquet"] is None
    # a column the file holds that RDS did not list is kept, with its Parquet type only
    big = by_name["big"]
    assert big["original_type"] is None
    assert (big["parquet"]["physical"], big["parquet"]["bit_width"], big["parquet"]["signed"]) == (
        "INT64",
        64,
        False,
    )


def test_files_of_one_table_with_different_schemas_are_refused() -> None:
    export = Export().table("shop.public.orders")
    export.part("shop/public.orders", 1, 0, 2)
    export.file(
        "shop/public.orders/1/part-00001-x.gz.parquet", pa.table({"id": pa.array([1], pa.int32())})
    )
    with pytest.raises(m.ExportMismatch, match=r"shop\.public\.orders do not share one schema"):
        export.build()


def test_an_empty_table_rds_shows_empty_or_whose_footers_say_so_has_no_rows() -> None:
    export = (
        Export()
        .table("shop.public.no_files", sizeGB=0)  # RDS's metadata: nothing exported
        .table("shop.public.zero_rows", sizeGB=0.000001)
    )
    export.part("shop/public.zero_rows", 1, 0, 0)  # a file whose footer says 0 rows

    no_files, zero_rows = export.build()["tables"]

    assert (no_files["file_count"], no_files["row_count"], no_files["files"]) == (0, 0, [])
    assert no_files["folder"] == f"{BASE}shop/public.no_files/"
    assert all(c["parquet"] is None for c in no_files["columns"])
    assert (zero_rows["file_count"], zero_rows["row_count"]) == (1, 0)
    assert zero_rows["files"][0]["rows"] == 0


def test_skipped_and_failed_tables_are_listed_with_what_they_have() -> None:
    export = (
        Export()
        .table("shop.public.orders")
        .table("shop.public.secret", "SKIPPED", warningMessage="PERMISSIONS_DO_NOT_EXIST")
        .table("shop.public.broken", "FAILED", failureCause="simulated failure")
    )
    export.part("shop/public.orders", 1, 0, 1)
    tables = _by_target(export.build())
    assert tables["shop.public.secret"]["status"] == "SKIPPED"
    assert tables["shop.public.secret"]["warning"] == "PERMISSIONS_DO_NOT_EXIST"
    assert (
        tables["shop.public.secret"]["file_count"],
        tables["shop.public.secret"]["row_count"],
    ) == (0, 0)
    assert tables["shop.public.broken"]["failure_cause"] == "simulated failure"


def test_an_entry_for_the_database_itself_is_not_a_table() -> None:
    export = (
        Export().table("shop", warningMessage="some tables were skipped").table("shop.public.t")
    )
    export.part("shop/public.t", 1, 0, 1)
    assert [t["target"] for t in export.build()["tables"]] == ["shop.public.t"]


def test_a_table_with_too_many_files_keeps_its_folder_and_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(m, "MAX_FILES_LISTED", 3)
    export = Export().table("db.s.big").table("db.s.small")
    for i in range(4):
        export.part("db/s.big", 1, i, 2)
    export.part("db/s.small", 1, 0, 1)

    big, small = export.build()["tables"]

    assert big["files_omitted"] is True and "files" not in big
    assert (big["file_count"], big["row_count"]) == (4, 8)
    assert big["folder"] == f"{BASE}db/s.big/"
    assert len(small["files"]) == 1 and "files_omitted" not in small


# --- files that do not match the tables: errors, never empty tables -----------------------------


def test_a_complete_table_without_files_is_an_error_naming_the_table_and_the_folder() -> None:
    export = Export().table("shop.public.orders").table("shop.public.order lines")
    export.part("shop/public.orders", 1, 0, 5)

    with pytest.raises(m.ExportMismatch) as err:
        export.build()

    message = str(err.value)
    assert f"s3://{BUCKET}/{BASE}" in message
    assert "table shop.public.order lines is COMPLETE but has no data files" in message
    assert (
        f"looked for {BASE}shop/public.order_lines/ or {BASE}shop/shop.public.order_lines/"
        in message
    )
    assert f"found under {BASE}shop/: shop/public.orders/" in message
    with pytest.raises(m.ExportMismatch):  # which files to read is not answered either
        export.footers()


def test_a_size_that_is_not_zero_is_no_evidence_of_an_empty_table() -> None:
    for entry in ({"sizeGB": 0.5}, {"sizeGB": "0"}, {"sizeGB": False}, {}):
        export = Export().table("shop.public.gone", **entry)
        assert any(
            "shop.public.gone is COMPLETE but has no data files" in p for p in export.problems()
        )


def test_a_folder_that_matches_no_table_is_reported() -> None:
    export = Export().table("shop.public.orders")
    export.part("shop/public.orders", 1, 0, 1)
    export.part("shop/public.ghost", 1, 0, 1)
    assert export.problems() == [
        f"folder {BASE}shop/public.ghost/ (1 Parquet files) matches no table of export_tables_info"
    ]


def test_a_folder_two_targets_spell_alike_is_reported() -> None:
    # "a b" and "a_b" both become a_b/ in the path: whose files are they?
    export = Export().table("shop.public.a b").table("shop.public.a_b")
    export.part("shop/public.a_b", 1, 0, 1)
    assert export.problems() == [
        f"folder {BASE}shop/public.a_b/ matches more than one table: shop.public.a b, "
        "shop.public.a_b"
    ]


def test_a_table_found_in_two_folders_is_reported() -> None:
    export = Export().table("rdststdb.orders")
    export.part("rdststdb/orders", 1, 0, 1)
    export.part("rdststdb/rdststdb.orders", 1, 0, 1)
    assert export.problems() == [
        f"table rdststdb.orders matches more than one folder: {BASE}rdststdb/orders/, "
        f"{BASE}rdststdb/rdststdb.orders/"
    ]


def test_parquet_files_outside_a_table_folder_are_reported() -> None:
    export = Export().table("shop.public.orders")
    export.part("shop/public.orders", 1, 0, 1)
    export.file("shop/stray.gz.parquet", _rows(1))
    (problem,) = export.problems()
    assert problem.startswith("1 Parquet files are not in a <database>/<schema>.<table>/ folder")


def test_only_a_few_problems_are_spelt_out() -> None:
    export = Export()
    for i in range(9):
        export.table(f"shop.public.t{i}")
    message = m.mismatch_message("s3://b/p/t/", export.problems())
    assert message.count("is COMPLETE but has no data files") == m.MAX_PROBLEMS_SHOWN
    assert message.endswith("; and 4 more")


def test_path_segment_replaces_exactly_the_four_documented_characters() -> None:
    assert m.path_segment('a b\\c`d"e') == "a_b_c_d_e"
    assert m.path_segment("Mixed$Case.with-dash_and/slash'q") == "Mixed$Case.with-dash_and/slash'q"


# --- the envelope --------------------------------------------------------------------------------


def test_the_envelope_of_version_one_is_kept() -> None:
    export = Export().table("shop.public.orders")
    export.part("shop/public.orders", 1, 0, 1)
    manifest = export.build()
    assert manifest["manifest_version"] == m.MANIFEST_VERSION == 2
    assert manifest["export_folder"] == BASE
    assert manifest["s3_uri"] == f"s3://{BUCKET}/{BASE}"
    assert manifest["export_task_id"] == TASK
    assert manifest["database"] == {"kind": "instance", "id": "mydb"}
    assert manifest["snapshot"]["id"] == "mysnap"
    assert manifest["export_status"] == "COMPLETE"
    assert m.manifest_key("exports/mydb/") == "exports/mydb/_manifest.json"
    assert m.MANIFEST_NAME.startswith("_")  # no RDS export task id starts with "_"


def test_a_manifest_above_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_MANIFEST_BYTES", 100)
    export = Export().table("shop.public.orders")
    export.part("shop/public.orders", 1, 0, 1)
    with pytest.raises(m.ManifestTooLarge, match="above the 100-byte cap"):
        export.build()


def test_export_info_for_another_task_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'export-1234567890123-459'"):
        m.build_manifest(
            bucket=BUCKET,
            s3_prefix=PREFIX,
            export_task_id=TASK,
            export_info={"exportTaskIdentifier": "other"},
            tables_info=[],
            listing=[],
            footers={},
            database={},
            snapshot={},
            execution="",
            written_at="",
        )
