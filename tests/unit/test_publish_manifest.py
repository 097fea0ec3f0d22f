"""PublishManifest: a refused event is retried, then reported; a lost PUT answer is checked.

What a publish that half-succeeded reports (docs/snowflake.md, "If PublishManifest fails"):
the manifest is written, the event refused every time: the step succeeds with a warning;
the PUT's answer lost: the manifest is read back, and only if it is this run's does the step
succeed (with a warning)."""

from __future__ import annotations

from typing import Any

import pytest

from rds_s3_export.errors import PublishFailed, Throttled
from rds_s3_export.steps import publish_manifest as pm
from sandbox import faults
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
