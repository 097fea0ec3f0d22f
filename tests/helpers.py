"""Helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.s3.models import s3_backends

from sandbox.runtime import ACCOUNT, Settings

MYDB = {
    "db_instance_identifier": "mydb",
    "s3_prefix": "exports/mydb",
    "snapshot_prefix": "mysnapshot",
}


def several(*entries: dict[str, Any], **context: Any) -> Settings:
    """A stack configured for `mydb` and the given databases (the `databases` context key).
    A run then names its database: `{}` has no default database to mean."""
    return Settings(databases=[MYDB, *entries], **context)


def seed_objects(bucket: str, keys: Iterable[str], body: bytes = b"x") -> list[str]:
    """Put objects straight into moto's S3 (inside a mock_aws block or a sandbox): the many
    keys a test starts from, without a PutObject request each (about 5 ms each through the
    API, minutes for the thousands some tests need). Returns the keys, in order."""
    backend = s3_backends[ACCOUNT]["aws"]
    written = list(keys)
    for key in written:
        backend.put_object(bucket, key, body)
    return written
