"""Helpers shared by the pipeline tests."""

from __future__ import annotations

from typing import Any

from sandbox.runtime import Settings

MYDB = {
    "db_instance_identifier": "mydb",
    "s3_prefix": "exports/mydb",
    "snapshot_prefix": "mysnapshot",
}


def several(*entries: dict[str, Any], **context: Any) -> Settings:
    """A stack configured for `mydb` and the given databases (the `databases` context key).
    A run then names its database: `{}` has no default database to mean."""
    return Settings(databases=[MYDB, *entries], **context)
