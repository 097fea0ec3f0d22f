"""The purge in proportion to what it deletes: calls per run, and a continued execution."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rds_s3_export.steps import purge_prefix
from sandbox import export_files
from sandbox.runtime import RunResult, Sandbox
from tests.helpers import seed_objects
from tests.pipeline.manifest_watch import watching

PREFIX = "exports/mydb"
OLD = "mysnapshot-2020-01-01-00-00-abcdef"


@pytest.fixture
def large_new_export(monkeypatch: pytest.MonkeyPatch) -> int:
    """Every completed export also gets 3,000 more data files: copies of its first data file,
    in a batch folder 9 of that file's table (PublishManifest reads every footer)."""
    extra = 3000
    real = export_files.write_export

    def write(s3: Any, **kwargs: Any) -> Any:
        result = real(s3, **kwargs)
        folder = f"{kwargs['s3_prefix']}/{kwargs['export_task_id']}/"
        first = next(k for k in sorted(result.keys) if k.endswith(".parquet"))
        table = "/".join(first[len(folder) :].split("/")[:2])
        body = s3.get_object(Bucket=kwargs["bucket"], Key=first)["Body"].read()
        data = (f"{folder}{table}/9/part-{i:05d}.gz.parquet" for i in range(extra))
        seed_objects(kwargs["bucket"], data, body)
        return result

    monkeypatch.setattr(export_files, "write_export", write)
    return extra


def _old_export(sandbox: Sandbox, objects: int) -> None:
    keys = [f"{PREFIX}/{OLD}/export_info_{OLD}.json"]
    keys += [f"{PREFIX}/{OLD}/shop/t/1/part-{i:06d}.gz.parquet" for i in range(objects - 1)]
    seed_objects(sandbox.settings.bucket, keys, b"")


def _validated(result: RunResult) -> dict[str, Any]:
    """The state ValidateInput handed on, read from the execution's history."""
    for event in result.history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "ValidateInput":
            return dict(json.loads(details["output"]))
    raise AssertionError(f"{result.name} did not pass ValidateInput")


def _succeeded(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
    assert result.output is not None
    return result.output


@pytest.mark.parametrize("objects", [2500, 10000])
def test_old_objects_beside_a_large_new_export_take_one_purge_call(
    sandbox: Sandbox, large_new_export: int, objects: int
) -> None:
    # Given an old export of 2,500 or 10,000 objects
    _old_export(sandbox, objects)

    # When the pipeline runs (the sandbox's function never runs short of time)
    out = _succeeded(sandbox.wait(sandbox.start({}), timeout=600))

    # Then one purge call deleted them all, in requests of at most 1,000 keys
    assert sandbox.invocations.counts["purge_prefix"] == 1
    assert out["purge"]["objects_deleted"] == objects
    assert out["purge"]["pages"] == -(-(objects - 1) // 1000) + 1  # + the export_info, last
    assert out["purge"]["folders"] == [f"{PREFIX}/{OLD}/"]
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]
    assert len(sandbox.listing(f"{PREFIX}/")) > large_new_export
    # and the manifest counted every file's rows, each read from its footer
    tables = (sandbox.manifest() or {})["tables"]
    (grown,) = [t for t in tables if t["file_count"] > large_new_export]
    assert grown["row_count"] >= large_new_export
    print(f"manifest: {sum(t['file_count'] for t in tables)} footers read")


def test_a_purge_near_the_history_limit_continues_in_a_new_execution(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an old export of 40 objects, purged one page of 4 keys a call (no time budget
    # left after the first page), and a history budget that the fifth call would pass
    _old_export(sandbox, 40)
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    monkeypatch.setattr(purge_prefix, "TIME_MARGIN_MS", 10**9)
    monkeypatch.setenv("PURGE_HISTORY_EVENTS_MAX", "250")

    # When the pipeline runs
    first = sandbox.wait(sandbox.start({}), timeout=600)

    # Then the first execution succeeds saying where the purge continued
    out = _succeeded(first)
    assert out["status"] == "CONTINUED", out
    assert first.visits("ContinuePurgeInNewExecution") == 1
    # and the new executions skipped straight to the purge, finished it, and summarized
    chain = [first]
    while out["status"] == "CONTINUED":
        chain.append(sandbox.wait(out["continued_in"], timeout=600))
        out = _succeeded(chain[-1])
    assert all(r.visits("CreateSnapshot") == 0 for r in chain[1:])
    assert all(r.visits("StartExport") == 0 for r in chain[1:])
    assert out["status"] == "SUCCEEDED"
    assert out["export"]["task_id"] == _succeeded(first)["export"]["task_id"]
    assert out["purge"]["objects_deleted"] == 40
    assert out["purge"]["folders"] == [f"{PREFIX}/{OLD}/"]
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]
    assert max(len(r.history) for r in chain) < 250


def test_a_continued_purge_holds_back_the_folder_the_manifest_names(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a published export (the manifest names it), an older export of 40 objects beside
    # it, a purge of one page of 4 keys a call, and a history budget that sends the purge on
    # into new executions
    first = _succeeded(sandbox.run({}))["export"]["task_id"]
    _old_export(sandbox, 40)
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    monkeypatch.setattr(purge_prefix, "TIME_MARGIN_MS", 10**9)
    monkeypatch.setenv("PURGE_HISTORY_EVENTS_MAX", "250")

    # When the next night runs, and the executions it continues in
    with watching(sandbox, PREFIX) as watch:
        chain = [sandbox.wait(sandbox.start({}), timeout=600)]
        out = _succeeded(chain[0])
        while out["status"] == "CONTINUED":
            chain.append(sandbox.wait(out["continued_in"], timeout=600))
            out = _succeeded(chain[-1])

    # Then every execution held back the folder the manifest named (carried from one to the
    # next), the last one deleted it after writing the new manifest, and no delete request
    # ever touched the folder the manifest named at that moment
    assert len(chain) > 1
    assert all(_validated(r)["purge"]["deferred"] == first for r in chain[1:])
    assert all(r.visits("PurgePreviousExport") == 0 for r in chain[:-1])
    assert chain[-1].visits("PublishManifest") == 1
    assert out["purge"]["deferred"] == first
    assert out["purge"]["folders"] == [f"{PREFIX}/{OLD}/", f"{PREFIX}/{first}/"]
    assert sandbox.export_folders(PREFIX) == [out["export"]["task_id"]]
    assert watch.deletes_seen > 0 and watch.violations == []
