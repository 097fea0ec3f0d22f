"""The load on fakesnow where the demo's tables do not reach: JSON columns, and a table of more
files than COPY's FILES list may name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowflake_sql.generate import MAX_COPY_FILES
from snowflake_sql.local import connect
from tests.snowflake.conftest import OPTIONS, Snow, sections

TASK = "mydb-edge-1"
TABLE_DIR = "shop/public.events/"  # relative to the export folder, as the manifest has it
FOLDER = f"p/{TASK}/{TABLE_DIR}"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _manifest(files: list[str]) -> dict[str, Any]:
    return {
        "manifest_version": 1,
        "bucket": "b",
        "s3_prefix": "p",
        "export_folder": f"p/{TASK}/",
        "export_task_id": TASK,
        "tables": [
            {
                "target": "shop.public.events",
                "status": "COMPLETE",
                "folder": FOLDER,
                "files": [TABLE_DIR + f for f in files],  # relative to the export folder
                "columns": [
                    {"name": "id", "original_type": "bigint"},
                    {"name": "payload", "original_type": "jsonb"},
                ],
            }
        ],
    }


def _write(root: Path, files: int, batch: str = "1/") -> list[str]:
    """`files` Parquet files of one row each, as the export writes JSON: text. RDS writes a
    table's files under numbered batch folders (`1/`)."""
    names = []
    for index in range(files):
        name = f"{batch}part-{index:05d}.gz.parquet"
        path = root / TASK / "shop" / "public.events" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"n": index, "tags": ["a", "b"]})
        pq.write_table(pa.table({"id": [index], "payload": [payload]}), path)
        names.append(name)
    return names


@contextmanager
def _loaded(root: Path, manifest: dict[str, Any]) -> Iterator[tuple[Snow, dict[str, list[str]]]]:
    """fakesnow after the generated DDL and load of `manifest`, its stage reading `root`."""
    generated = sections(manifest)
    with connect("RAW", "MYDB") as snow:
        snow.run(generated["tables"])
        snow.run(generated["formats"])
        snow.create_local_stage("RAW", "MYDB", OPTIONS["stage"], OPTIONS["file_format"], root)
        snow.run(generated["load"])
        yield snow, generated


def test_a_json_column_loads_as_a_variant_object_not_a_string(tmp_path: Path) -> None:
    manifest = _manifest(_write(tmp_path, 3))
    with _loaded(tmp_path, manifest) as (snow, generated):
        rows = snow.rows(
            'SELECT "ID", "PAYLOAD":n::INT, "PAYLOAD":tags[1]::VARCHAR '
            'FROM "RAW"."MYDB"."PUBLIC_EVENTS" ORDER BY "ID"'
        )
    # the JSON text became queryable VARIANT values, field by field
    assert rows == [(0, 0, "b"), (1, 1, "b"), (2, 2, "b")]
    # On Snowflake, JSON text inserted without PARSE_JSON stays a VARIANT *string* whose fields
    # are NULL. fakesnow stores VARIANT as DuckDB JSON, which parses the text either way and so
    # cannot tell the two apart: the conversion itself is checked in the script that ran.
    insert = next(s for s in generated["load"] if s.startswith('INSERT INTO "RAW"."MYDB"."PUB'))
    assert 'PARSE_JSON("PAYLOAD")' in insert
    copy = next(s for s in generated["load"] if s.startswith("COPY INTO"))
    assert "FILES = ('1/part-00000.gz.parquet'" in copy


def test_a_table_of_more_files_than_copy_may_name_is_read_from_its_folder(
    tmp_path: Path,
) -> None:
    files = MAX_COPY_FILES + 1
    # flat in the table's folder: fakesnow reads a folder without its subfolders (Snowflake
    # reads every file under the path); the batch folder is exercised by the FILES test above
    manifest = _manifest(_write(tmp_path, files, batch=""))
    with _loaded(tmp_path, manifest) as (snow, generated):
        count = snow.one('SELECT COUNT(*) FROM "RAW"."MYDB"."PUBLIC_EVENTS"')
        distinct = snow.one('SELECT COUNT(DISTINCT "ID") FROM "RAW"."MYDB"."PUBLIC_EVENTS"')
    copy = next(s for s in generated["load"] if s.startswith("COPY INTO"))
    assert "FILES = (" not in copy  # Snowflake refuses a FILES list of more than 1,000 names
    assert f"/{TASK}/{TABLE_DIR}'" in copy  # exactly this export's table folder
    assert (count, distinct) == (files, files)
