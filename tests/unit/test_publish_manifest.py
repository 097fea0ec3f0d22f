"""PublishManifest: its event (a refused entry is a named failure, not a silent success), and
the manifest it builds from an export in S3 (footers read by ranged GETs, errors named)."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rds_s3_export.errors import PublishFailed
from rds_s3_export.steps import publish_manifest as pm
from tests.helpers import manifest_from_s3, spy_calls
from tests.unit.conftest import BUCKET


class _Events:
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return self.response


def test_a_refused_entry_raises_publish_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _Events(
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}
    )
    monkeypatch.setattr(pm.aws, "client", lambda service: events)
    with pytest.raises(PublishFailed, match=r"InternalFailure.*s3://b/p/_manifest\.json"):
        pm._send({"manifest": "s3://b/p/_manifest.json"})


def test_an_accepted_entry_returns_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _Events({"FailedEntryCount": 0, "Entries": [{"EventId": "abc"}]})
    monkeypatch.setattr(pm.aws, "client", lambda service: events)
    assert pm._send({"manifest": "s3://b/p/_manifest.json"}) == "abc"
    (entry,) = events.entries
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "rds-s3-export",
        "RDS Export Ready",
        "default",
    )


# --- the manifest, read from an export in moto's S3 -------------------------------------------

PREFIX = "exports/mydb"
TASK = "export-1234567890123-459"


def _event() -> dict[str, Any]:
    return {
        "config": {"s3_prefix": PREFIX, "database_kind": "instance", "database_id": "mydb"},
        "export": {"export_task_id": TASK},
        "source": {"snapshot_id": "mysnap", "snapshot_arn": "arn:aws:rds:::snapshot:mysnap"},
        "plan": {"execution_id": "arn:aws:states:::execution:x:y"},
    }


def _put_export(s3: Any, tables: dict[str, list[bytes]]) -> dict[str, bytes]:
    """An export at AWS's documented keys: `{target: [file bodies]}` (MySQL-style targets
    `db.table`, written to `db/db.table/1/`); its data keys and bodies."""
    base = f"{PREFIX}/{TASK}/"
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{base}export_info_{TASK}.json",
        Body=json.dumps({"exportTaskIdentifier": TASK, "status": "COMPLETE"}).encode(),
    )
    entries = [{"target": t, "status": "COMPLETE"} for t in tables]
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{base}export_tables_info_{TASK}_from_1_to_{len(tables)}.json",
        Body=json.dumps({"perTableStatus": entries}).encode(),
    )
    written = {}
    for target, bodies in tables.items():
        database = target.split(".")[0]
        for i, body in enumerate(bodies):
            key = f"{base}{database}/{target}/1/part-{i:05d}-{i}.gz.parquet"
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            written[key] = body
    return written


def _parquet(rows: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(range(rows), pa.int64())}), sink)
    return sink.getvalue()


def test_the_manifest_reads_each_files_footer_with_ranged_gets(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _put_export(
        s3, {"shop.orders": [_parquet(3), _parquet(4)], "shop.items": [_parquet(0)]}
    )
    gets = spy_calls(s3, monkeypatch, "get_object")

    manifest = pm.manifest_of(_event(), BUCKET)

    tables = {t["target"]: t for t in manifest["tables"]}
    assert (tables["shop.orders"]["row_count"], tables["shop.items"]["row_count"]) == (7, 0)
    assert tables["shop.orders"]["folder"] == f"{PREFIX}/{TASK}/shop/shop.orders/"
    assert [f["rows"] for f in tables["shop.orders"]["files"]] == [3, 4]
    # every data file was read by a ranged GET, once; the metadata files whole
    data_gets = [g for g in gets if g["Key"] in written]
    assert sorted(g["Key"] for g in data_gets) == sorted(written)
    assert all(g["Range"].startswith("bytes=") for g in data_gets)
    assert not [g for g in gets if g["Key"] not in written and "Range" in g]


def test_a_corrupt_data_file_fails_the_publish_naming_it(s3: Any) -> None:
    written = _put_export(s3, {"shop.orders": [_parquet(3), b"PAR1 truncated, not a footer"]})
    bad = next(k for k, body in written.items() if not body.endswith(b"PAR1"))
    with pytest.raises(PublishFailed, match=f"s3://{BUCKET}/{bad}.*no manifest written"):
        pm.manifest_of(_event(), BUCKET)


def test_a_complete_table_without_files_fails_the_publish(s3: Any) -> None:
    _put_export(s3, {"shop.orders": [_parquet(3)], "shop.gone": []})
    with pytest.raises(PublishFailed, match=r"table shop\.gone is COMPLETE but has no data files"):
        pm.manifest_of(_event(), BUCKET)


def test_the_tests_helper_builds_the_manifest_publish_manifest_builds(s3: Any) -> None:
    # tests.helpers.manifest_from_s3 is what the Snowflake tests build their manifests with
    _put_export(s3, {"shop.orders": [_parquet(3), _parquet(4)], "shop.items": [_parquet(1)]})
    published = pm.manifest_of(_event(), BUCKET)
    helper = manifest_from_s3(
        s3,
        BUCKET,
        PREFIX,
        TASK,
        database=published["database"],
        snapshot=published["snapshot"],
        execution=published["execution"],
        written_at=published["written_at"],
    )
    assert helper == published
