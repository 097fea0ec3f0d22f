"""The state machine, executed end to end in the sandbox: the paths a normal night takes."""

from __future__ import annotations

import io
import logging

import pyarrow.parquet as pq
import pytest

from sandbox.runtime import Sandbox
from tests.helpers import several

PREFIX = "exports/mydb"


def _data_keys(listing: dict[str, str]) -> list[str]:
    return [k for k in listing if k.endswith(".gz.parquet")]


def test_first_run_exports_the_snapshot_into_the_prefix(sandbox: Sandbox) -> None:
    # Given an empty prefix, When the pipeline runs with the defaults
    result = sandbox.run({})

    # Then it succeeds and the prefix holds exactly that run's complete export
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    task_id = out["export"]["task_id"]
    assert out["export"]["s3_uri"] == f"s3://{sandbox.settings.bucket}/{PREFIX}/{task_id}/"
    assert sandbox.export_folders(PREFIX) == [task_id]
    listing = sandbox.listing(PREFIX)
    assert f"{PREFIX}/{task_id}/export_info_{task_id}.json" in listing
    assert len(_data_keys(listing)) == 4  # customers, order_items, orders in two parts
    # the Parquet written is real: it reads back with pyarrow
    key = next(k for k in _data_keys(listing) if "public.customers" in k)
    body = sandbox.client("s3").get_object(Bucket=sandbox.settings.bucket, Key=key)["Body"].read()
    assert pq.read_table(io.BytesIO(body)).num_rows > 0
    # and the snapshot it made is named from the start time and tagged as the pipeline's own
    snapshot_id = out["snapshot"]["id"]
    assert snapshot_id.startswith("mysnapshot-") and len(snapshot_id) == len("mysnapshot-") + 16
    assert out["snapshot"]["created"] is True
    assert snapshot_id in sandbox.snapshots("mydb")
    assert out["purge"]["objects_deleted"] == 0
    assert out["purge"]["verification"]["tables"] == 3


def test_the_output_reports_every_phase(sandbox: Sandbox) -> None:
    result = sandbox.run({})
    out = result.output
    assert out is not None
    assert set(out) >= {"snapshot", "export", "purge", "snapshots_pruned", "phases_seconds"}
    # simulated: snapshot 300 s, export 120 + 600 s; each phase ends at the first look after
    assert 300 <= out["phases_seconds"]["snapshot"] < 300 + sandbox.settings.poll_max_seconds
    assert 720 <= out["phases_seconds"]["export"] < 720 + sandbox.settings.poll_max_seconds
    assert out["polls"]["snapshot"] >= 2 and out["polls"]["export"] >= 2
    # Wait loops really looped: one DescribeSnapshotStatus per poll
    assert result.visits("DescribeSnapshotStatus") == out["polls"]["snapshot"]
    assert result.visits("DescribeExportStatus") == out["polls"]["export"]


def test_second_run_purges_the_first_export(sandbox: Sandbox) -> None:
    first = sandbox.run({})
    assert first.status == "SUCCEEDED", first.cause
    first_id = first.output["export"]["task_id"]  # type: ignore[index]
    first_keys = sandbox.listing(f"{PREFIX}/{first_id}/")

    second = sandbox.run({})

    assert second.status == "SUCCEEDED", second.cause
    out = second.output
    assert out is not None
    second_id = out["export"]["task_id"]
    assert second_id != first_id
    assert sandbox.export_folders(PREFIX) == [second_id]
    assert out["purge"]["objects_deleted"] == len(first_keys)
    assert out["purge"]["folders"] == [f"{PREFIX}/{first_id}/"]


def test_keys_outside_the_prefix_are_never_touched(sandbox: Sandbox) -> None:
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    # Given neighbours that share the prefix's characters but not its folder
    neighbours = [
        "exports/mydb2/old-export-aaaaaa/export_info_old-export-aaaaaa.json",
        "exports/mydb-archive/x.parquet",
        "exports/other/y.parquet",
        "exports/mydb.json",
    ]
    for key in neighbours:
        s3.put_object(Bucket=bucket, Key=key, Body=b"keep me")
    sandbox.run({})
    second = sandbox.run({})
    assert second.status == "SUCCEEDED", second.cause
    listing = sandbox.listing("exports/")
    for key in neighbours:
        assert key in listing, key


def test_a_loose_file_and_a_foreign_folder_under_the_prefix_are_left_alone(
    sandbox: Sandbox,
) -> None:
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/README.txt", Body=b"notes")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/manual_copy/data.parquet", Body=b"x")
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    listing = sandbox.listing(PREFIX)
    assert f"{PREFIX}/README.txt" in listing
    assert f"{PREFIX}/manual_copy/data.parquet" in listing
    assert set(result.output["purge"]["left_alone"]) == {"README.txt", "manual_copy/"}  # type: ignore[index]


def test_empty_input_uses_the_stack_defaults(sandbox: Sandbox) -> None:
    result = sandbox.run("{}")
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["database"] == {"kind": "instance", "id": "mydb"}
    assert out["snapshot"]["id"].startswith("mysnapshot-")
    assert out["export"]["s3_uri"].startswith(f"s3://{sandbox.settings.bucket}/exports/mydb/")


OTHERDB = {
    "db_instance_identifier": "otherdb",
    "snapshot_prefix": "nightly",
    "s3_prefix": "x/other",
}


@pytest.mark.parametrize("settings", [several(OTHERDB)], ids=["mydb+otherdb"])
def test_naming_a_configured_database_takes_its_own_prefixes(sandbox: Sandbox) -> None:
    sandbox.add_instance("otherdb")
    result = sandbox.run({"db_instance_identifier": "otherdb"})
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["database"]["id"] == "otherdb"
    assert out["snapshot"]["id"].startswith("nightly-")
    assert sandbox.export_folders("x/other") == [out["export"]["task_id"]]
    assert sandbox.listing(PREFIX) == {}


def test_every_log_line_names_the_run_and_the_database(sandbox: Sandbox) -> None:
    # Given a record of every line the handlers log
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    handler_logger = logging.getLogger("rds_s3_export")
    handler_logger.setLevel(logging.INFO)
    handler_logger.addHandler(capture)
    try:
        # When one run goes through every step
        result = sandbox.run({}, name="night-of-the-log")
    finally:
        handler_logger.removeHandler(capture)
    assert result.status == "SUCCEEDED", result.cause

    # Then every line carries the execution's name and the database
    assert len(records) >= 5
    for record in records:
        assert getattr(record, "execution", None) == "night-of-the-log", record.getMessage()
        assert getattr(record, "database", None) == "mydb", record.getMessage()
