"""Two nights of sandbox exports, their manifests, and a fakesnow connection.

fakesnow runs Snowflake SQL on DuckDB. It cannot reach S3, so the tests copy the export's
files from the moto bucket into a local folder with the same layout and create the stage with
a ``file://`` URL instead of the script's ``s3://`` one (the stage statement itself is only
parsed). Every other statement the tests execute is the generated SQL, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rds_s3_export.manifest import build_manifest
from sandbox import export_files as ef
from snowflake_sql.generate import render_sections
from snowflake_sql.local import LocalSnowflake, connect, copy_prefix
from tests.helpers import write_sample_export

BUCKET = "snowflake-test-bucket"
PREFIX = "exports/mydb"
NIGHT_1 = "mydb-night-1"
NIGHT_2 = "mydb-night-2"

OPTIONS: dict[str, Any] = {
    "integration": "RDS_EXPORTS",
    "role_arn": "arn:aws:iam::123456789012:role/rds-s3-export-snowflake",
    "external_id": "test-external-id",
    "database": "RAW",
    "schema": "MYDB",
    "stage": "RDS_MYDB",
    "file_format": "RDS_PARQUET",
    "task_warehouse": "LOAD_WH",
    "schedule": "USING CRON 0 7 * * * UTC",
}


@dataclass
class Night:
    task_id: str
    manifest: dict[str, Any]
    parquet: dict[str, list[Path]]  # target -> local Parquet files of that table


def _write_night(s3: Any, root: Path, task_id: str, seed: int, outcomes: dict[str, str]) -> Night:
    written = write_sample_export(s3, BUCKET, PREFIX, task_id, table_outcomes=outcomes, seed=seed)
    # the stage URL is the prefix: the export's folder is copied to the same place below root
    parquet: dict[str, list[Path]] = {}
    for local in copy_prefix(s3, BUCKET, f"{PREFIX}/{task_id}", root / task_id):
        if local.name.endswith(".parquet"):
            target = next(r.target for r in ef.SAMPLE_TABLES if f"/{r.folder}/" in str(local))
            parquet.setdefault(target, []).append(local)
    manifest = build_manifest(
        bucket=BUCKET,
        s3_prefix=PREFIX,
        export_task_id=task_id,
        export_info=written.export_info,
        tables_info=written.tables_info,
        data_keys=written.keys,
        database={"kind": "instance", "id": "mydb"},
        snapshot={"id": f"snap-{task_id}", "arn": "arn:aws:rds:::snapshot:x", "time": "t"},
        execution=f"arn:aws:states:us-east-1:123456789012:execution:rds-s3-export:{task_id}",
        written_at="2024-01-02T04:00:00+00:00",
    )
    return Night(task_id, manifest, parquet)


@pytest.fixture(scope="session")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Night, Night]:
    """Night 1: every table COMPLETE. Night 2: other rows, customers SKIPPED.

    Both exports stay in the local stage folder, as if the purge had not run yet: a load
    must read only its own export's folder.
    """
    root = tmp_path_factory.mktemp("stage")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        first = _write_night(s3, root, NIGHT_1, seed=1, outcomes={})
        second = _write_night(
            s3, root, NIGHT_2, seed=2, outcomes={"shop.public.customers": ef.STATUS_SKIPPED}
        )
    return root, first, second


def sections(manifest: dict[str, Any]) -> dict[str, list[str]]:
    return render_sections(manifest, **OPTIONS)


Snow = LocalSnowflake  # the tests' name for it


@pytest.fixture
def snow(nights: tuple[Path, Night, Night]) -> Iterator[Snow]:
    """A fresh fakesnow database with the formats, a file:// stage and the tables created."""
    root, first, _ = nights
    with connect("RAW", "MYDB") as snow:
        generated = sections(first.manifest)
        snow.run(generated["tables"])
        snow.run(generated["formats"])
        # the test's one substitute: the stage points at the local copy, not at S3
        snow.create_local_stage("RAW", "MYDB", "RDS_MYDB", "RDS_PARQUET", root)
        yield snow
