"""PublishManifest: the "ready" manifest and event, written only by a successful, real run; and
the manifest never names a deleted folder (the purge holds back the folder it names until
PublishManifest has replaced it, then PurgePreviousExport deletes that folder)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rds_s3_export.steps import purge_prefix
from rds_s3_export.steps.publish_manifest import EVENT_DETAIL_TYPE, EVENT_SOURCE
from sandbox.rds_sim import ExportOutcome
from sandbox.runtime import RunResult, Sandbox
from tests.helpers import tables_info_entries
from tests.pipeline.manifest_watch import watching

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


PURGE_AND_PUBLISH = ("PurgePrefix", "PublishManifest", "PurgePreviousExport", "PruneSnapshots")


def _order(result: RunResult) -> list[str]:
    """The states of the purge and publish, in the order they first ran."""
    return list(dict.fromkeys(s.name for s in result.states if s.name in PURGE_AND_PUBLISH))


def test_the_next_night_names_the_new_folder_and_never_a_deleted_one(sandbox: Sandbox) -> None:
    with watching(sandbox, PREFIX) as watch:
        first = _ok(sandbox.run({}))
        result = sandbox.run({})
    second = _ok(result)

    manifest = sandbox.manifest()
    assert manifest is not None
    assert manifest["export_task_id"] == second["export"]["task_id"]
    assert sandbox.export_folders(PREFIX) == [manifest["export_task_id"]]
    # the purge held back the folder the old manifest named, and deleted it only after the
    # new manifest was written: no delete request touched the folder the manifest named then
    previous = first["export"]["task_id"]
    assert second["purge"]["deferred"] == previous
    assert second["purge"]["folders"] == [f"{PREFIX}/{previous}/"]
    assert _order(result) == list(PURGE_AND_PUBLISH)
    assert watch.deletes_seen > 0 and watch.violations == []
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
    # it says which folder a real run would delete last, after writing the new manifest
    assert result.output["would_purge"]["deferred"] == (sandbox.manifest() or {})["export_task_id"]
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


def _lose_one_tables_files(sandbox: Sandbox, task_id: str) -> tuple[str, str]:
    """Delete every data file of the first table folder of export `task_id`, as if RDS had
    said COMPLETE without writing them. (The table's target, its folder.)"""
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    base = f"{PREFIX}/{task_id}/"
    keys = sorted(sandbox.listing(base))
    data = [k for k in keys if k.endswith(".parquet")]
    database, rest = data[0][len(base) :].split("/")[:2]
    folder = f"{base}{database}/{rest}/"
    for key in (k for k in data if k.startswith(folder)):
        s3.delete_object(Bucket=bucket, Key=key)
    entries = tables_info_entries(s3, bucket, base, keys)
    # AWS: space, backslash, backtick and double quote become "_" in the path
    spelt = {t["target"]: re.sub(r'[ \\`"]', "_", t["target"]) for t in entries}
    (target,) = [t for t, s in spelt.items() if s == f"{database}.{rest}"]
    return target, folder


def test_a_complete_table_whose_files_are_missing_fails_the_run_before_the_purge(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a night that published its export
    first = _ok(sandbox.run({}))["export"]["task_id"]
    kept = sandbox.listing(f"{PREFIX}/{first}/")
    before = _manifest_etag(sandbox)

    # When the next night's export, which RDS says is COMPLETE, has lost one table's files
    # by the time the purge begins
    lost: list[tuple[str, str]] = []
    purge_page = purge_prefix.purge_page

    def losing_a_table(event: dict[str, Any], time_left: Any = None) -> dict[str, Any]:
        if not lost:
            lost.append(_lose_one_tables_files(sandbox, event["export"]["export_task_id"]))
        return purge_page(event, time_left)

    monkeypatch.setattr(purge_prefix, "purge_page", losing_a_table)
    with watching(sandbox, PREFIX) as watch:
        result = sandbox.run({})

    # Then the run fails by name, naming the table and the folder it looked for, before
    # anything was deleted: yesterday's export and manifest are as they were
    ((target, folder),) = lost
    assert (result.status, result.error) == ("FAILED", "PurgeRefused")
    cause = result.cause or ""
    assert f"table {target} is COMPLETE but has no data files" in cause
    assert f"looked for {folder}" in cause
    assert "nothing was deleted" in cause
    assert watch.deletes_seen == 0
    assert sandbox.listing(f"{PREFIX}/{first}/") == kept
    assert _manifest_etag(sandbox) == before
    assert (sandbox.manifest() or {})["export_task_id"] == first
    assert result.visits("PublishManifest") == 0
    assert len(sandbox.ready_events()) == 1


def test_a_throttled_put_events_is_retried(sandbox: Sandbox) -> None:
    # one refusal is sent again within the call (EVENT_ATTEMPTS, with backoff)
    fault = sandbox.faults.api(
        "eventbridge", "PutEvents", "ThrottlingException", module="publish_manifest"
    )
    result = sandbox.run({})
    out = _ok(result)
    assert fault.fired == 1
    assert len(sandbox.ready_events()) == 1
    assert [s.outcome for s in result.states if s.name == "PublishManifest"] == ["ok"]
    assert out["manifest"]["uri"].endswith(MANIFEST) and out["manifest"]["warnings"] == []


def test_put_events_throttled_past_its_attempts_calls_the_step_again(sandbox: Sandbox) -> None:
    fault = sandbox.faults.api(
        "eventbridge", "PutEvents", "ThrottlingException", module="publish_manifest", times=3
    )
    result = sandbox.run({})
    _ok(result)
    assert fault.fired == 3
    assert len(sandbox.ready_events()) == 1
    assert [s.outcome for s in result.states if s.name == "PublishManifest"] == [
        "error Throttled",
        "ok",
    ]


def test_a_failure_to_publish_fails_the_run_by_name(sandbox: Sandbox) -> None:
    sandbox.faults.api("s3", "PutObject", "AccessDenied", times=None, module="publish_manifest")
    result = sandbox.run({})

    assert (result.status, result.error) == ("FAILED", "PublishFailed")
    assert f"s3://{sandbox.settings.bucket}/{MANIFEST}" in (result.cause or "")
    assert sandbox.manifest() is None
    assert sandbox.ready_events() == []
    # the export itself is complete and stays
    assert len(sandbox.export_folders(PREFIX)) == 1
    # the first night: no manifest, nothing held back, no last pass
    assert result.visits("PurgePreviousExport") == 0


def test_a_failed_publish_keeps_the_manifest_and_the_folder_it_names(sandbox: Sandbox) -> None:
    with watching(sandbox, PREFIX) as watch:
        # Given a night that published its export
        first = _ok(sandbox.run({}))["export"]["task_id"]
        kept = sandbox.listing(f"{PREFIX}/{first}/")
        before = _manifest_etag(sandbox)

        # When the next night cannot write the manifest
        fault = sandbox.faults.api(
            "s3", "PutObject", "AccessDenied", times=None, module="publish_manifest"
        )
        failed = sandbox.run({})

        # Then it fails by name; the manifest is as it was, and the folder it names is there,
        # byte for byte, beside the new (complete, unpublished) export: a loader keeps
        # yesterday's consistent view, and nothing was deleted
        assert (failed.status, failed.error) == ("FAILED", "PublishFailed")
        assert _manifest_etag(sandbox) == before
        assert (sandbox.manifest() or {})["export_task_id"] == first
        assert sandbox.listing(f"{PREFIX}/{first}/") == kept
        assert len(sandbox.export_folders(PREFIX)) == 2
        assert failed.visits("PurgePreviousExport") == 0
        assert len(sandbox.ready_events()) == 1

        # When the night after publishes again
        (unpublished,) = (f for f in sandbox.export_folders(PREFIX) if f != first)
        sandbox.faults.clear()
        third = _ok(sandbox.run({}))

    # Then the unpublished export went with the first pass, the folder the manifest named
    # with the last, and the prefix holds exactly the new export and its manifest
    new = third["export"]["task_id"]
    assert sandbox.export_folders(PREFIX) == [new]
    assert set(sandbox.listing(PREFIX)) == {*sandbox.listing(f"{PREFIX}/{new}/"), MANIFEST}
    assert (sandbox.manifest() or {})["export_task_id"] == new
    assert third["purge"]["deferred"] == first
    assert third["purge"]["folders"] == [f"{PREFIX}/{unpublished}/", f"{PREFIX}/{first}/"]
    assert fault.fired > 0 and watch.violations == []


def test_the_last_pass_deletes_a_large_previous_export_call_after_call(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a published export, and a purge that deletes one page of 4 keys a call
    first = _ok(sandbox.run({}))["export"]["task_id"]
    objects = len(sandbox.listing(f"{PREFIX}/{first}/"))
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    monkeypatch.setattr(purge_prefix, "TIME_MARGIN_MS", 10**9)

    # When the next night runs
    with watching(sandbox, PREFIX) as watch:
        result = sandbox.run({})
    out = _ok(result)

    # Then the last pass took a call per page, the manifest never named a folder being
    # deleted, and only the new export and its manifest are left
    assert result.visits("PurgePreviousExport") == -(-objects // 4) > 1
    assert out["purge"]["objects_deleted"] == objects
    assert watch.violations == []
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]
