"""Helpers shared by the tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moto.s3.models import s3_backends

from sandbox import export_files
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


@dataclass
class SampleExport:
    """A sandbox export in a bucket, with what its RDS files say (as PublishManifest reads
    them): the keys written, the export_info document and every perTableStatus entry."""

    keys: list[str]
    export_info: dict[str, Any]
    tables_info: list[dict[str, Any]]


def write_sample_export(
    s3: Any,
    bucket: str,
    s3_prefix: str,
    export_task_id: str,
    source_arn: str = "arn:aws:rds:us-east-1:123456789012:snapshot:mysnapshot",
    **options: Any,
) -> SampleExport:
    """`sandbox.export_files.write_export` into `bucket` (`options`: table_outcomes, seed, ...),
    then its export_info and export_tables_info files read back from the bucket."""
    result = export_files.write_export(
        s3,
        bucket=bucket,
        s3_prefix=s3_prefix,
        export_task_id=export_task_id,
        source_arn=source_arn,
        **options,
    )

    def document(key: str) -> Any:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    tables_info = export_files.export_tables_info_prefix(s3_prefix, export_task_id)
    return SampleExport(
        keys=result.keys,
        export_info=document(export_files.export_info_key(s3_prefix, export_task_id)),
        tables_info=[
            entry
            for key in result.keys
            if key.startswith(tables_info)
            for entry in document(key)["perTableStatus"]
        ],
    )


def spy_calls(client: Any, monkeypatch: Any, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every `operation` call (`get_object`...) made through `client`
    (the handlers' cached client, in the unit tests), for the rest of the test."""
    calls: list[dict[str, Any]] = []
    real = getattr(client, operation)

    def spy(**params: Any) -> Any:
        calls.append(params)
        return real(**params)

    monkeypatch.setattr(client, operation, spy)
    return calls


def tables_info_entries(s3: Any, bucket: str, folder: str, keys: Iterable[str]) -> list[Any]:
    """Every perTableStatus entry of the export_tables_info files among `keys`, the keys of the
    export folder `folder` (`<s3_prefix>/<task id>/`)."""
    return [
        entry
        for key in sorted(keys)
        if key.startswith(f"{folder}export_tables_info_")
        for entry in json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())[
            "perTableStatus"
        ]
    ]


def manifest_from_s3(
    s3: Any, bucket: str, s3_prefix: str, export_task_id: str, **envelope: Any
) -> dict[str, Any]:
    """The version-2 manifest of an export already in `bucket`, built as PublishManifest
    builds it (listing with sizes, export_info, tables-info, every footer by ranged GETs).
    `envelope`: `database`, `snapshot`, `execution`, `written_at` (defaults for tests)."""
    from rds_s3_export import manifest, parquet_footer

    folder = manifest.export_folder(s3_prefix, export_task_id)
    listing = [
        (o["Key"], int(o["Size"]))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder)
        for o in page.get("Contents", [])
    ]
    keys = [key for key, _ in listing]
    info_key = f"{folder}export_info_{export_task_id}.json"
    info = json.loads(s3.get_object(Bucket=bucket, Key=info_key)["Body"].read())
    tables = tables_info_entries(s3, bucket, folder, keys)
    files = manifest.footers_to_read(bucket, export_task_id, s3_prefix, tables, listing)
    footers = {
        f.key: parquet_footer.read_footer(
            parquet_footer.s3_range_reader(s3, bucket, f.key), f.size, f.key
        )
        for f in files
    }
    return manifest.build_manifest(
        bucket=bucket,
        s3_prefix=s3_prefix,
        export_task_id=export_task_id,
        export_info=info,
        tables_info=tables,
        listing=listing,
        footers=footers,
        database=envelope.get("database", {"kind": "instance", "id": "mydb"}),
        snapshot=envelope.get("snapshot", {"id": "snap", "arn": None, "time": None}),
        execution=envelope.get("execution", ""),
        written_at=envelope.get("written_at", "2024-01-02T04:00:00+00:00"),
    )
