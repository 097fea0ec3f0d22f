"""The sandbox's Parquet files match AWS's data-conversion tables, row by row.

The expected types come from ``tests/fixtures/aws_docs/rds_export_data_types.json``, a
transcription of "Data conversion when exporting to an Amazon S3 bucket"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.data-types.html),
not from the sandbox's own mapping (``sandbox/parquet_types.py``). The files are read back with
pyarrow's Parquet reader: each column's footer schema (physical type, logical type, legacy
converted type, fixed length, decimal precision and scale) is compared with the documented row.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from sandbox import fixture_db
from sandbox.export_files import write_export
from sandbox.fixture_db import FixtureColumn, FixtureDatabase

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DOC = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "aws_docs" / "rds_export_data_types.json").read_text()
)
PAGE = DOC["url"]
ROWS = {"mysql": DOC["mysql_mariadb"], "postgres": DOC["postgresql"]}
BUCKET = "doc-types"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Client]:
    with mock_aws():
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        yield client


def footer_columns(s3: S3Client, database: FixtureDatabase) -> dict[str, dict[str, Any]]:
    """``table.column`` -> the footer schema of that column in every file RDS "wrote"."""
    task = f"doc-types-{database.engine}"
    result = write_export(
        s3, bucket=BUCKET, s3_prefix="x", export_task_id=task, source_arn="arn", database=database
    )
    found: dict[str, dict[str, Any]] = {}
    for key in result.keys:
        if not key.endswith(".parquet"):
            continue
        table = key.split("/")[3].split(".", 1)[1]  # x/<task>/<db>/<schema>.<table>/...
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        schema = pq.ParquetFile(io.BytesIO(body)).schema
        for i in range(len(schema)):
            column = schema.column(i)
            seen = {
                "physical": column.physical_type,
                "logical": json.loads(column.logical_type.to_json()),
                "converted": column.converted_type,
                "length": column.length,
                "precision": column.precision,
                "scale": column.scale,
            }
            previous = found.setdefault(f"{table}.{column.name}", seen)
            assert previous == seen, f"{key}: {column.name} differs between files"
    return found


def doc_rows(engine: str, column: FixtureColumn) -> list[dict[str, Any]]:
    """The documented rows for a column's source type (the DECIMAL band by precision)."""
    rows = [row for row in ROWS[engine] if row["source_type"] == column.doc_type]
    assert rows, f"{column.doc_type} is not a row of {PAGE} ({engine})"
    if len(rows) == 1:
        return rows
    reading = [
        row
        for row in rows
        if row["reading"].get("min_precision", 0)
        <= column.precision
        <= row["reading"].get("max_precision", 10**6)
    ]
    assert len(reading) == 1, f"{column.name}: precision {column.precision} picks {reading}"
    return reading


def min_bytes(precision: int) -> int:
    """The fewest bytes of a two's-complement integer that holds every ``precision``-digit value
    (Parquet's rule for a FIXED_LEN_BYTE_ARRAY decimal)."""
    n = 1
    while 2 ** (8 * n - 1) <= 10**precision - 1:
        n += 1
    return n


def expected(row: dict[str, Any], column: FixtureColumn) -> dict[str, Any]:
    """What the footer must say for a documented row (the page's spelling, normalised)."""
    primitive = row["parquet_primitive_type"]
    physical = {"BINARY": "BYTE_ARRAY"}.get(primitive, primitive)
    length: int | None = None
    fixed = re.fullmatch(r"FIXED_LEN_(?:BYTE_)?ARRAY\((\w+)\)", primitive)
    if fixed:
        physical = "FIXED_LEN_BYTE_ARRAY"
        length = min_bytes(column.precision) if fixed[1] == "N" else int(fixed[1])
    logical = row["logical_type_annotation"]
    want: dict[str, Any] = {"physical": physical}
    if length is not None:
        want["length"] = length
    if logical == "":
        want |= {"logical": {"Type": "None"}, "converted": "NONE"}
    elif logical == "STRING":
        want |= {"logical": {"Type": "String"}, "converted": "UTF8"}
    elif logical == "TIMESTAMP_MICROS":  # the legacy converted type: adjusted to UTC, micros
        want |= {"converted": "TIMESTAMP_MICROS"}
    elif (m := re.fullmatch(r"INT\((\d+), (true|false)\)", logical)) is not None:
        want["logical"] = {"Type": "Int", "bitWidth": int(m[1]), "isSigned": m[2] == "true"}
    elif (m := re.fullmatch(r"DECIMAL ?\((\w+),(\w+)\)", logical)) is not None:
        precision = column.precision if m[1] == "p" else int(m[1])
        scale = column.scale if m[2] == "s" else int(m[2])
        want |= {"converted": "DECIMAL", "precision": precision, "scale": scale}
    else:
        raise AssertionError(f"annotation {logical!r} of {row['source_type']} is not understood")
    return want


@pytest.mark.parametrize(
    "database", [fixture_db.MYSQL, fixture_db.POSTGRES], ids=["mysql", "postgres"]
)
def test_every_column_has_the_documented_parquet_type(
    s3: S3Client, database: FixtureDatabase
) -> None:
    footers = footer_columns(s3, database)
    compared = 0
    for table in database.tables:
        if not table.exported or not table.rows:
            continue
        for column in table.columns:
            (row,) = doc_rows(database.engine, column)
            seen = footers[f"{_segment(table.name)}.{column.name}"]
            want = expected(row, column)
            got = {key: seen[key] for key in want}
            assert got == want, (
                f"{database.engine} {table.name}.{column.name} ({column.sql_type}, page row "
                f"{row['source_type']} {row['parquet_primitive_type']} "
                f"{row['logical_type_annotation']!r}, {PAGE})"
            )
            compared += 1
    print(f"{database.engine}: {compared} columns compared with {PAGE}")
    assert compared >= 40


def _segment(name: str) -> str:
    return re.sub(r'[ \\`"]', "_", name)


@pytest.mark.parametrize(
    ("engine", "database"), [("mysql", fixture_db.MYSQL), ("postgres", fixture_db.POSTGRES)]
)
def test_every_documented_row_has_a_fixture_column(engine: str, database: FixtureDatabase) -> None:
    """One column per row of the page (OBJECT IDENTIFIER excepted: the page gives it no type)."""
    covered = set()
    for column in database.table("all_types").columns:
        for row in doc_rows(engine, column):
            covered.add(json.dumps(row, sort_keys=True))
    documented = [row for row in ROWS[engine] if row["parquet_primitive_type"] != "N/A"]
    missing = [
        (r["source_type"], r["parquet_primitive_type"])
        for r in documented
        if json.dumps(r, sort_keys=True) not in covered
    ]
    print(f"{engine}: {len(covered)} of {len(ROWS[engine])} documented rows in the fixture")
    assert missing == []
