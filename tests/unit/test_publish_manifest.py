"""PublishManifest's event: a refused entry is a named failure, not a silent success."""

from __future__ import annotations

from typing import Any

import pytest

from rds_s3_export.errors import PublishFailed
from rds_s3_export.steps import publish_manifest as pm


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
