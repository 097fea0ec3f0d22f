"""DiscardFailedExport: only this run's own folder, only after RDS reports it FAILED/CANCELED."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from rds_s3_export import aws
from rds_s3_export.errors import PurgeRefused
from rds_s3_export.steps import discard_failed_export
from tests.helpers import seed_objects
from tests.unit.conftest import BUCKET, put

PREFIX = "exports/db"
NEW = "nightly-2024-05-02-02-00-abc123"
OLD = "nightly-2024-05-01-02-00-def456"


def keys(s3: Any) -> set[str]:
    out: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        out.update(o["Key"] for o in page.get("Contents", []))
    return out


def discard_event(task_id: str = NEW, objects_deleted: int = 0) -> dict[str, Any]:
    return {
        "config": {"s3_prefix": PREFIX},
        "export": {"export_task_id": task_id},
        "discard": {"folder": "", "objects_deleted": objects_deleted, "more": False},
    }


def rds_says(status: str, task_id: str = NEW) -> Any:
    answer = {"ExportTasks": [{"ExportTaskIdentifier": task_id, "Status": status}]}
    return mock.patch.object(aws.client("rds"), "describe_export_tasks", return_value=answer)


@pytest.mark.parametrize("status", ["FAILED", "CANCELED"])
def test_discard_removes_only_the_failed_exports_own_folder(s3: Any, status: str) -> None:
    # Given a previous export and the partial files of this run's failed export
    previous = {put(s3, f"{PREFIX}/{OLD}/export_info_{OLD}.json")}
    partial = [put(s3, f"{PREFIX}/{NEW}/shop/orders/1/part-0000{i}.gz.parquet") for i in range(3)]
    neighbours = {put(s3, f"{PREFIX}2/{NEW}/x.parquet"), put(s3, f"{PREFIX}/{NEW}x/y")}

    # When the failed export is discarded
    with rds_says(status):
        result = discard_failed_export.lambda_handler(discard_event(), None)

    # Then exactly its own folder is gone, and the count is what S3 deleted
    assert result == {
        "folder": f"s3://{BUCKET}/{PREFIX}/{NEW}/",
        "objects_deleted": len(partial),
        "more": False,
    }
    assert keys(s3) == previous | neighbours


@pytest.mark.parametrize("status", ["COMPLETE", "IN_PROGRESS", "STARTING", "CANCELING"])
def test_discard_refuses_an_export_that_did_not_fail(s3: Any, status: str) -> None:
    mine = {put(s3, f"{PREFIX}/{NEW}/export_info_{NEW}.json")}
    with rds_says(status), pytest.raises(PurgeRefused, match=status):
        discard_failed_export.lambda_handler(discard_event(), None)
    assert keys(s3) == mine


def test_discard_refuses_a_folder_that_is_not_an_export_task_id(s3: Any) -> None:
    put(s3, f"{PREFIX}/x--y/a")
    with rds_says("FAILED", "x--y"), pytest.raises(PurgeRefused, match="not an export task id"):
        discard_failed_export.lambda_handler(discard_event("x--y"), None)
    assert keys(s3) == {f"{PREFIX}/x--y/a"}


def test_discard_works_in_pages_of_at_most_1000_keys(s3: Any) -> None:
    # Given 1,005 partial files
    seed_objects(
        BUCKET, (f"{PREFIX}/{NEW}/shop/orders/1/part-{i:05d}.gz.parquet" for i in range(1005))
    )
    sizes: list[int] = []
    real = s3.delete_objects

    def spy(**params: Any) -> Any:
        sizes.append(len(params["Delete"]["Objects"]))
        return real(**params)

    # When discarded call after call
    with rds_says("FAILED"), mock.patch.object(s3, "delete_objects", spy):
        first = discard_failed_export.lambda_handler(discard_event(), None)
        second = discard_failed_export.lambda_handler(
            discard_event(objects_deleted=first["objects_deleted"]), None
        )

    # Then two requests of 1,000 and 5 keys, and everything counted
    assert sizes == [1000, 5]
    assert first["more"] is True and second["more"] is False
    assert second["objects_deleted"] == 1005
    assert keys(s3) == set()
