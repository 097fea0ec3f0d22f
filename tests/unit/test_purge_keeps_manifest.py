"""The purge never deletes the pipeline's `_manifest.json`, nor reports it as foreign."""

from __future__ import annotations

from rds_s3_export.steps.purge_prefix import _sort_page

PREFIX = "exports/mydb"


def test_the_manifest_is_neither_deleted_nor_left_alone() -> None:
    markers: list[str] = []
    left_alone: set[str] = set()
    keys = [
        f"{PREFIX}/_manifest.json",
        f"{PREFIX}/README.txt",
        f"{PREFIX}/old-task/data.parquet",
    ]

    doomed = _sort_page(keys, PREFIX, lambda folder: "old-export", markers, left_alone)

    assert doomed == [f"{PREFIX}/old-task/data.parquet"]
    assert left_alone == {"README.txt"}
    assert markers == []
