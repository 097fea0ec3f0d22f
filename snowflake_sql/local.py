"""Run the generated SQL on a local fakesnow database (DuckDB), over files copied from S3.

fakesnow cannot reach S3, so :func:`copy_prefix` copies the prefix's objects into a local
folder with the same layout, and :class:`LocalSnowflake` creates the stage with a ``file://``
URL instead of the script's ``s3://`` one (the ``access`` section, the integration and the
stage, is only parsed). Every other statement it runs is the generated SQL, unchanged: the
``formats``, ``tables`` and ``load`` sections (:data:`snowflake_sql.generate.EXECUTABLE`).

Used by tests/snowflake and by the demo (``make demo``). Needs the dev extras (fakesnow and
the connector it patches).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from snowflake_sql.generate import quote


def copy_prefix(s3: Any, bucket: str, prefix: str, root: Path) -> list[Path]:
    """Copy every object under ``<prefix>/`` into ``root`` (``root`` is the stage's URL)."""
    head = f"{prefix.strip('/')}/"
    written: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=head):
        for obj in page.get("Contents", []):
            local = root / obj["Key"][len(head) :]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            written.append(local)
    return written


class LocalSnowflake:
    """A fakesnow cursor that runs lists of generated statements (``--`` lines skipped)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def run(self, statements: list[str]) -> None:
        for statement in statements:
            if not statement.startswith("--"):
                self.cursor.execute(statement)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.cursor.execute(sql).fetchall())

    def one(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def create_local_stage(
        self, database: str, schema: str, stage: str, file_format: str, root: Path
    ) -> None:
        """The one statement that differs from the script: the stage reads ``root``."""
        where = f"{quote(database)}.{quote(schema)}"
        self.cursor.execute(
            f"CREATE OR REPLACE STAGE {where}.{quote(stage)} URL = 'file://{root}/' "
            f"FILE_FORMAT = {where}.{quote(file_format)}"
        )

    def count(self, database: str, schema: str, table: str) -> int:
        return int(
            self.one(f"SELECT COUNT(*) FROM {quote(database)}.{quote(schema)}.{quote(table)}")
        )


@contextmanager
def connect(database: str, schema: str) -> Iterator[LocalSnowflake]:
    """A fresh in-memory fakesnow database; ``database`` and ``schema`` are the session's."""
    import fakesnow  # noqa: PLC0415  (dev extra)
    import snowflake.connector  # noqa: PLC0415

    with fakesnow.patch():
        conn = snowflake.connector.connect(database=database, schema=schema)
        try:
            yield LocalSnowflake(conn.cursor())
        finally:
            conn.close()
