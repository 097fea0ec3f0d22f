"""PublishManifest: the "ready" manifest and event, written only by a successful, real run."""

from __future__ import annotations

from typing import Any

import pytest

from rds_s3_export.steps.publish_manifest import EVENT_DETAIL_TYPE, EVENT_SOURCE
from sandbox.rds_sim import ExportOutcome
from sandbox.runtime import RunResult, Sandbox

PREFIX = "exports/mydb"
MANIFEST = f"{PREFIX}/_manifest.json"


def _ok(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    return result.output


def _manifest_etag(sandbox: Sandbox) -> str | None:
    return sandbox.listing(MANIFEST).get(MANIFEST)


def test_a_successful_run_writes_the_manifest_and_one_event(sandbox: Sandbox) -> None:
    out = _ok(sandbox.run({}))
    task_id = out["export"]["task_id"]
    bucket = sandbox.settings.bucket

    manifest = sandbox.manifest()
    assert manifest is not None
    assert manifest["export_task_id"] == task_id
    assert manifest["export_folder"] == f"{PREFIX}/{task_id}/"
    assert manifest["s3_uri"] == out["export"]["s3_uri"]
    assert manifest["snapshot"]["id"] == out["snapshot"]["id"]
    assert manifest["database"] == {"kind": "instance", "id": "mydb"}
    assert sorted(t["target"] for t in manifest["tables"]) == [
        "shop.public.customers",
        "shop.public.order_items",
        "shop.public.orders",
    ]
    assert sum(t["file_count"] for t in manifest["tables"]) == 4
    # the output names it; the object is SSE-KMS under the export key, like the export
    uri = f"s3://{bucket}/{MANIFEST}"
    assert out["manifest"]["uri"] == uri
    assert out["manifest"]["tables"] == 3
    assert out["manifest"]["bytes"] > 0
    head = sandbox.client("s3").head_object(Bucket=bucket, Key=MANIFEST)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == sandbox.key_arn
    # the manifest is the last object the run wrote
    written = {
        o["Key"]: o["LastModified"]
        for o in sandbox.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/")[
            "Contents"
        ]
    }
    assert max(written, key=lambda k: (written[k], k == MANIFEST)) == MANIFEST

    (event,) = sandbox.ready_events()
    assert event["source"] == EVENT_SOURCE
    assert event["detail-type"] == EVENT_DETAIL_TYPE
    assert event["id"] == out["manifest"]["event_id"]
    assert event["detail"] == {
        "pipeline": sandbox.settings.pipeline_name,
        "manifest": uri,
        "export_task_id": task_id,
        "s3_uri": out["export"]["s3_uri"],
        "database": {"kind": "instance", "id": "mydb"},
        "snapshot_id": out["snapshot"]["id"],
        "execution": result_arn(sandbox, event),
        "tables": 3,
    }


def result_arn(sandbox: Sandbox, event: dict[str, Any]) -> str:
    """The execution the event names is one of the state machine's."""
    execution = str(event["detail"]["execution"])
    name = sandbox.settings.pipeline_name
    assert execution.startswith(f"arn:aws:states:us-east-1:123456789012:execution:{name}:")
    return execution


def test_the_next_night_names_the_new_folder_and_never_a_deleted_one(sandbox: Sandbox) -> None:
    _ok(sandbox.run({}))
    second = _ok(sandbox.run({}))

    manifest = sandbox.manifest()
    assert manifest is not None
    assert manifest["export_task_id"] == second["export"]["task_id"]
    assert sandbox.export_folders(PREFIX) == [manifest["export_task_id"]]
    # the purge kept the manifest and did not call it foreign
    assert "_manifest.json" not in second["purge"]["left_alone"]
    events = sandbox.ready_events()
    assert len(events) == 2
    assert events[-1]["detail"]["export_task_id"] == second["export"]["task_id"]


def test_a_dry_run_leaves_the_manifest_and_sends_nothing(sandbox: Sandbox) -> None:
    _ok(sandbox.run({}))
    before = _manifest_etag(sandbox)
    events = len(sandbox.ready_events())

    result = sandbox.run({"dry_run": True})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None and "manifest" not in result.output
    assert _manifest_etag(sandbox) == before
    assert len(sandbox.ready_events()) == events
    assert result.visits("PublishManifest") == 0


def test_a_dry_run_on_an_empty_prefix_writes_no_manifest(sandbox: Sandbox) -> None:
    result = sandbox.run({"dry_run": True})
    assert result.status == "SUCCEEDED", result.cause
    assert sandbox.manifest() is None
    assert sandbox.ready_events() == []


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (ExportOutcome(status="FAILED", failure_cause="S3 write failed"), "ExportFailed"),
        (ExportOutcome(table_outcomes={"shop.public.orders": "FAILED"}), "PurgeRefused"),
    ],
    ids=["export-failed", "purge-refused"],
)
def test_a_failed_run_leaves_the_manifest_and_sends_nothing(
    sandbox: Sandbox, outcome: ExportOutcome, error: str
) -> None:
    first = _ok(sandbox.run({}))
    before = _manifest_etag(sandbox)

    sandbox.rds.next_export(outcome)
    result = sandbox.run({})

    assert (result.status, result.error) == ("FAILED", error)
    assert _manifest_etag(sandbox) == before
    manifest = sandbox.manifest()
    assert manifest is not None
    assert manifest["export_task_id"] == first["export"]["task_id"]
    assert first["export"]["task_id"] in sandbox.export_folders(PREFIX)
    assert len(sandbox.ready_events()) == 1  # the first run's only


def test_a_throttled_put_events_is_retried(sandbox: Sandbox) -> None:
    sandbox.faults.api("eventbridge", "PutEvents", "ThrottlingException", module="publish_manifest")
    result = sandbox.run({})
    out = _ok(result)
    assert len(sandbox.ready_events()) == 1
    assert [s.outcome for s in result.states if s.name == "PublishManifest"] == [
        "error Throttled",
        "ok",
    ]
    assert out["manifest"]["uri"].endswith(MANIFEST)


def test_a_failure_to_publish_fails_the_run_by_name(sandbox: Sandbox) -> None:
    sandbox.faults.api("s3", "PutObject", "AccessDenied", times=None, module="publish_manifest")
    result = sandbox.run({})

    assert (result.status, result.error) == ("FAILED", "PublishFailed")
    assert f"s3://{sandbox.settings.bucket}/{MANIFEST}" in (result.cause or "")
    assert sandbox.manifest() is None
    assert sandbox.ready_events() == []
    # the export itself is complete and stays
    assert len(sandbox.export_folders(PREFIX)) == 1
