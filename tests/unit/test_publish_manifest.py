"""PublishManifest: the manifest it builds from an export in S3 (footers read by ranged GETs,
errors named), and a publish that half-succeeded (docs/snowflake.md, "If PublishManifest fails"):
the manifest is written, the event refused every time: the step succeeds with a warning; the
PUT's answer lost: the manifest is read back, and only if it is this run's does the step succeed
(with a warning)."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rds_s3_export.errors import PublishFailed, Throttled
from rds_s3_export.steps import publish_manifest as pm
from sandbox import faults
from tests.helpers import manifest_from_s3, spy_calls
from tests.unit.conftest import BUCKET

DETAIL = {"manifest": "s3://b/p/_manifest.json", "export_task_id": "mysnap-2026-01-01-00-00-abc123"}


class _Events:
    def __init__(self, *responses: dict[str, Any]) -> None:
        self.responses = list(responses)
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


def _refused(code: str) -> dict[str, Any]:
    return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "x"}]}


ACCEPTED = {"FailedEntryCount": 0, "Entries": [{"EventId": "abc"}]}


def test_an_entry_refused_every_time_is_a_warning_naming_the_manifest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given PutEvents refusing the entry on every attempt, after the manifest was written
    events = _Events(_refused("InternalFailure"))
    monkeypatch.setattr(pm.aws, "client", lambda service: events)
    sleeps: list[float] = []
    monkeypatch.setattr(pm.clock, "_sleep", sleeps.append)
    # Then it is sent EVENT_ATTEMPTS times with growing waits, and the step reports, not fails
    event_id, warning = pm._send(DETAIL)
    assert event_id == "" and warning is not None
    assert "InternalFailure" in warning and "s3://b/p/_manifest.json" in warning
    assert len(events.entries) == pm.EVENT_ATTEMPTS
    assert sleeps == [1.0, 2.0]


def test_an_entry_refused_once_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _Events(_refused("InternalFailure"), ACCEPTED)
    monkeypatch.setattr(pm.aws, "client", lambda service: events)
    monkeypatch.setattr(pm.clock, "_sleep", lambda _s: None)
    assert pm._send(DETAIL) == ("abc", None)
    assert len(events.entries) == 2


def test_throttling_that_outlasts_the_attempts_is_throttled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = _Events(_refused("ThrottlingException"))
    monkeypatch.setattr(pm.aws, "client", lambda service: events)
    monkeypatch.setattr(pm.clock, "_sleep", lambda _s: None)
    with pytest.raises(Throttled, match="PutEvents"):
        pm._send(DETAIL)


def test_an_accepted_entry_returns_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _Events(ACCEPTED)
    monkeypatch.setattr(pm.aws, "client", lambda service: events)
    assert pm._send(DETAIL) == ("abc", None)
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


KEY = "exports/mydb/_manifest.json"


@pytest.fixture
def kms_key(monkeypatch: pytest.MonkeyPatch, s3: Any) -> None:
    import boto3

    arn = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setattr(pm.settings, "export_kms_key_arn", lambda: arn)


def test_a_put_whose_answers_were_all_lost_but_which_wrote_is_a_warning(
    s3: Any, injector: faults.FaultInjector, kms_key: None, sdk_sleeps: list[float]
) -> None:
    # Given every PutObject carried out by S3 but its answer lost (the SDK tries 3 times)
    lost = injector.lose_answer("s3", "PutObject", times=None)
    # When the manifest is written, Then the step reads it back, finds its own, and warns
    warning = pm._write(BUCKET, KEY, b'{"export_task_id": "new"}')
    assert warning is not None and f"s3://{BUCKET}/{KEY}" in warning
    assert lost.fired == pm.aws.S3_ATTEMPTS and len(sdk_sleeps) == pm.aws.S3_ATTEMPTS - 1
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b'{"export_task_id": "new"}'


def test_a_put_answer_lost_once_is_retried_by_the_sdk(
    s3: Any, injector: faults.FaultInjector, kms_key: None
) -> None:
    lost = injector.lose_answer("s3", "PutObject", times=1)
    assert pm._write(BUCKET, KEY, b"{}") is None
    assert lost.fired == 1


@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailable", "SlowDown"])
def test_one_s3_5xx_on_the_put_is_retried_by_the_sdk(
    s3: Any, injector: faults.FaultInjector, kms_key: None, code: str
) -> None:
    fault = injector.api("s3", "PutObject", code, times=1)
    assert pm._write(BUCKET, KEY, b"{}") is None
    assert fault.fired == 1
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"{}"


def test_a_put_that_did_not_write_is_publish_failed_even_when_reads_answer_403(
    s3: Any, injector: faults.FaultInjector, kms_key: None
) -> None:
    # Given an older manifest, a PUT refused with a 5xx every time, and GETs refused (403)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"export_task_id": "old"}')
    injector.api("s3", "PutObject", "InternalError", times=None)
    injector.api("s3", "GetObject", "AccessDenied", times=None)
    # Then the read back tells "not ours" (a 403 GET is not taken for "absent" or "ours")
    with pytest.raises(PublishFailed, match=f"s3://{BUCKET}/{KEY}"):
        pm._write(BUCKET, KEY, b'{"export_task_id": "new"}')
    injector.clear()
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b'{"export_task_id": "old"}'
