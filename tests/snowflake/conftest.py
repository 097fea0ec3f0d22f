"""Nights of exports written by hand as Parquet files, their version-2 manifests, and the
printed Snowflake script run top to bottom on a fresh fakesnow connection.

The Parquet types of each manifest column are read back from the written file's footer with
pyarrow (an independent reader), as PublishManifest does in the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowflake_sql.generate import render
from snowflake_sql.local import LocalSnowflake, connect, write_manifest

BUCKET = "snowflake-test-bucket"
PREFIX = "exports/mydb"
OPTIONS: dict[str, Any] = {
    "integration": "RDS_EXPORTS",
    "role_arn": "arn:aws:iam::123456789012:role/rds-s3-export-snowflake",
    "external_id": "test-external-id",
    "database": "RAW",
    "schema": "MYDB",
    "stage": "RDS_MYDB",
    "file_format": "RDS_PARQUET",
    "task_warehouse": "LOAD_WH",
}


def parquet_type(arrow: pa.DataType) -> dict[str, Any]:
    """The manifest's ``parquet`` entry (CONTRACT.md) for a column pyarrow reads as ``arrow``."""
    out: dict[str, Any] = {"physical": None, "logical": None}
    if pa.types.is_boolean(arrow):
        out["physical"] = "BOOLEAN"
    elif pa.types.is_integer(arrow):
        out.update(
            physical="INT64" if arrow.bit_width == 64 else "INT32",
            logical="INT" if arrow.bit_width < 32 or pa.types.is_unsigned_integer(arrow) else None,
            bit_width=arrow.bit_width,
            signed=pa.types.is_signed_integer(arrow),
        )
    elif pa.types.is_floating(arrow):
        out["physical"] = "DOUBLE" if arrow.bit_width == 64 else "FLOAT"
    elif pa.types.is_decimal(arrow):
        out.update(
            physical="FIXED_LEN_BYTE_ARRAY",
            logical="DECIMAL",
            precision=arrow.precision,
            scale=arrow.scale,
        )
    elif pa.types.is_date(arrow):
        out.update(physical="INT32", logical="DATE")
    elif pa.types.is_timestamp(arrow):
        out.update(
            physical="INT64",
            logical="TIMESTAMP",
            unit={"ms": "MILLIS", "us": "MICROS", "ns": "NANOS"}[arrow.unit],
            utc=arrow.tz is not None,
        )
    elif pa.types.is_string(arrow):
        out.update(physical="BYTE_ARRAY", logical="STRING")
    elif pa.types.is_binary(arrow):
        out["physical"] = "BYTE_ARRAY"
    else:
        raise ValueError(f"no parquet entry for {arrow}")
    return out


@dataclass
class TableSpec:
    target: str
    columns: list[tuple[str, str, pa.DataType]]  # name, original_type, arrow type
    rows: list[tuple[Any, ...]]
    files: int = 1
    status: str = "COMPLETE"


@dataclass
class Night:
    task_id: str
    manifest: dict[str, Any]
    folders: dict[str, Path] = field(default_factory=dict)  # target -> local table folder


def write_night(root: Path, task_id: str, tables: list[TableSpec]) -> Night:
    """Write ``tables`` under ``root/<task_id>/`` as RDS lays them out, and the manifest."""
    export_folder = f"{PREFIX}/{task_id}/"
    entries = []
    folders: dict[str, Path] = {}
    for spec in tables:
        database, rest = spec.target.split(".", 1)
        in_export = f"{database}/{rest}/"
        local = root / task_id / in_export
        folders[spec.target] = local
        schema = pa.schema([(name, arrow) for name, _, arrow in spec.columns])
        files = []
        parquet_of: dict[str, dict[str, Any]] = {}
        if spec.status == "COMPLETE":
            slices = [spec.rows[i :: spec.files] for i in range(spec.files)]
            for index, rows in enumerate(slices):
                relative = f"1/part-{index:05d}-{task_id}.gz.parquet"
                path = local / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                data = {n: [r[i] for r in rows] for i, (n, _, _) in enumerate(spec.columns)}
                pq.write_table(pa.table(data, schema=schema), path, compression="gzip")
                footer = pq.ParquetFile(path)
                files.append(
                    {
                        "path": relative,
                        "rows": footer.metadata.num_rows,
                        "size": path.stat().st_size,
                    }
                )
                parquet_of = {f.name: parquet_type(f.type) for f in footer.schema_arrow}
        entries.append(
            {
                "target": spec.target,
                "status": spec.status,
                "folder": f"{export_folder}{in_export}",
                "file_count": len(files),
                "row_count": sum(f["rows"] for f in files),
                "files": files,
                "columns": [
                    {"name": n, "original_type": o, "parquet": parquet_of.get(n)}
                    for n, o, _ in spec.columns
                ],
            }
        )
    manifest = {
        "manifest_version": 2,
        "bucket": BUCKET,
        "s3_prefix": PREFIX,
        "export_folder": export_folder,
        "s3_uri": f"s3://{BUCKET}/{export_folder}",
        "export_task_id": task_id,
        "snapshot": {"id": f"snap-{task_id}"},
        "database": {"kind": "instance", "id": "mydb"},
        "execution": f"arn:aws:states:us-east-1:123456789012:execution:rds-s3-export:{task_id}",
        "written_at": "2024-01-02T04:00:00+00:00",
        "export_status": "COMPLETE",
        "tables": entries,
    }
    return Night(task_id, manifest, folders)


def publish(root: Path, night: Night) -> None:
    write_manifest(root, night.manifest)


@pytest.fixture
def stage_root(tmp_path: Path) -> Path:
    return tmp_path / "stage"


@contextmanager
def fresh_snowflake(root: Path, first: Night, **options: Any) -> Iterator[LocalSnowflake]:
    """The script for ``first``, printed, then run top to bottom on a fresh connection, after
    ``first``'s manifest was published (so its CALL loads it)."""
    publish(root, first)
    script = render(first.manifest, **{**OPTIONS, **options})
    with connect() as cursor:
        snow = LocalSnowflake(cursor, root)
        snow.run_script(script)
        yield snow
