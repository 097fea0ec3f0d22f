"""Purge guards, called directly on moto's S3: what purge refuses, and what it may delete.

Purge deletes only keys of *older export folders* under `<s3_prefix>/`: a first-level folder
named like a valid export task id that holds its own `export_info_<folder>.json` or that RDS
knows as an export task into this bucket and prefix. Never the new export, never the folder of
an export RDS reports running, never anything outside the prefix. Before deleting anything it
verifies the new export, and it refuses an unsafe prefix, both with PurgeRefused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rds_s3_export import aws
from rds_s3_export.errors import PurgeRefused, Throttled
from rds_s3_export.steps import purge_prefix
from sandbox import faults

BUCKET = "export-bucket"
PREFIX = "exports/db"
NEW = "nightly-2024-05-02-02-00-abc123"
OLD = "nightly-2024-05-01-02-00-def456"
ORDERS = "shop.public.orders"
# The rule for an export task id, written out independently of rds_s3_export.naming
EXPORT_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*(?<!-)$")


@pytest.fixture
def injector() -> Iterator[faults.FaultInjector]:
    """A fault injector in front of moto (installed before mock_aws makes its session)."""
    injector = faults.FaultInjector()
    faults.install(injector)
    yield injector
    faults.uninstall(injector)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, injector: faults.FaultInjector) -> Iterator[Any]:
    """moto's S3 with the export bucket; the handlers' cached clients are fresh."""
    monkeypatch.setenv("EXPORT_BUCKET", BUCKET)
    aws.reset_clients()
    with mock_aws():
        client = aws.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    aws.reset_clients()


def put(s3: Any, key: str, body: bytes = b"x") -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def put_export(
    s3: Any,
    task_id: str,
    *,
    prefix: str = PREFIX,
    tables: dict[str, str] | None = None,
    info: dict[str, Any] | None = None,
    with_info: bool = True,
    with_tables: bool = True,
) -> list[str]:
    """An export folder in RDS's layout; returns its keys."""
    folder = f"{prefix}/{task_id}"
    tables = tables or {ORDERS: "COMPLETE", "shop.public.customers": "COMPLETE"}
    keys = [
        put(s3, f"{folder}/shop/{t.split('.', 1)[1]}/1/part-00000-{i}.gz.parquet")
        for i, (t, status) in enumerate(tables.items())
        if status == "COMPLETE"
    ]
    if with_tables:
        entries = []
        for target, status in tables.items():
            entry: dict[str, Any] = {"target": target, "status": status}
            if status == "FAILED":
                entry["failureCause"] = "simulated failure"
            if status == "SKIPPED":
                entry["warningMessage"] = "PERMISSIONS_DO_NOT_EXIST"
            entries.append(entry)
        body = json.dumps({"perTableStatus": entries}).encode()
        keys.append(
            put(s3, f"{folder}/export_tables_info_{task_id}_from_1_to_{len(tables)}.json", body)
        )
    if with_info:
        body = json.dumps(info or {"exportTaskIdentifier": task_id, "status": "COMPLETE"})
        keys.append(put(s3, f"{folder}/export_info_{task_id}.json", body.encode()))
    return keys


def listing(s3: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


def event(
    prefix: Any = PREFIX, new_id: str | None = NEW, dry_run: bool = False, policy: str = "warn"
) -> dict[str, Any]:
    return {
        "config": {"s3_prefix": prefix, "dry_run": dry_run, "skipped_tables_policy": policy},
        "export": {"export_task_id": new_id},
        "purge": {"cursor": "", "pages": 0, "objects_deleted": 0, "folders": [], "warnings": []},
    }


def purge_all(evt: dict[str, Any], max_pages: int = 200) -> dict[str, Any]:
    """Call purge page after page, as the state machine's loop does."""
    for _ in range(max_pages):
        state = purge_prefix.purge_page(evt)
        if not state["more"]:
            return state
        evt = {**evt, "purge": state}
    raise AssertionError(f"purge did not finish in {max_pages} pages")


def tasks(*specs: tuple[str, str, str]) -> list[dict[str, Any]]:
    """RDS export tasks (id, S3 prefix, status) into the bucket, as DescribeExportTasks lists."""
    return [
        {"ExportTaskIdentifier": i, "S3Bucket": BUCKET, "S3Prefix": p, "Status": s}
        for i, p, s in specs
    ]


# --- refusals: nothing deleted ----------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["", "/", ".", "..", "/exports/db", "exports:db", "s3://bucket/x", None, 7, ["exports"]],
    ids=["empty", "slash", "dot", "dotdot", "leading-slash", "colon", "uri", "null", "int", "list"],
)
def test_an_unsafe_prefix_is_refused_and_nothing_is_deleted(s3: Any, prefix: Any) -> None:
    # Given exports at the bucket's root and under a prefix, and a new export
    put_export(s3, OLD, prefix="exports")
    put_export(s3, OLD)
    put_export(s3, NEW)
    put(s3, f"{OLD}/export_info_{OLD}.json")
    before = listing(s3)

    # When purge is asked to work on an unsafe prefix
    with pytest.raises(PurgeRefused, match="s3_prefix") as refused:
        purge_prefix.purge_page(event(prefix=prefix))

    # Then it refuses, saying why, and the bucket is unchanged
    assert "refusing to purge" in str(refused.value)
    assert listing(s3) == before


@pytest.mark.parametrize(
    ("new_export", "words"),
    [
        ({"with_info": False}, f"export_info_{NEW}.json"),
        ({"info": {"status": "FAILED"}}, "says FAILED"),
        ({"with_tables": False}, "no export_tables_info file"),
        ({"tables": {ORDERS: "FAILED"}}, f"failed tables: {ORDERS} (simulated failure)"),
    ],
    ids=["export-info-missing", "export-info-not-complete", "tables-info-missing", "table-failed"],
)
def test_an_unverifiable_new_export_is_refused_and_nothing_is_deleted(
    s3: Any, new_export: dict[str, Any], words: str
) -> None:
    # Given an old export and a new export that cannot be verified
    put_export(s3, OLD)
    put_export(s3, NEW, **new_export)
    before = listing(s3)

    # When purge runs
    with pytest.raises(PurgeRefused) as refused:
        purge_prefix.purge_page(event())

    # Then it refuses naming the new export and the reason, and deletes nothing
    assert words in str(refused.value)
    assert f"s3://{BUCKET}/{PREFIX}/{NEW}/" in str(refused.value)
    assert "nothing was deleted" in str(refused.value)
    assert listing(s3) == before


def test_skipped_tables_with_policy_warn_are_listed_and_the_purge_proceeds(s3: Any) -> None:
    # Given a new export in which RDS skipped one table
    old = put_export(s3, OLD)
    new = put_export(s3, NEW, tables={ORDERS: "SKIPPED", "shop.public.customers": "COMPLETE"})

    # When purge runs under the warn policy
    state = purge_all(event(policy="warn"))

    # Then the skipped table is a warning, and the old export is gone
    assert state["warnings"] == [f"table skipped by RDS: {ORDERS}"]
    assert state["verification"]["tables_skipped"] == [ORDERS]
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)


def test_skipped_tables_with_policy_fail_refuse_the_purge(s3: Any) -> None:
    put_export(s3, OLD)
    put_export(s3, NEW, tables={ORDERS: "SKIPPED"})
    before = listing(s3)
    with pytest.raises(PurgeRefused, match=f"skipped tables: {ORDERS} \\(PERMISSIONS_DO_NOT_EXIST"):
        purge_prefix.purge_page(event(policy="fail"))
    assert listing(s3) == before


# --- what purge may and may not delete --------------------------------------------------------


def test_the_prefix_boundary_holds(s3: Any) -> None:
    # Given the old and new exports under exports/db, and look-alike exports just outside it
    old = put_export(s3, OLD)
    new = put_export(s3, NEW)
    outside = [
        *put_export(s3, OLD, prefix="exports/db2"),  # shares the prefix's characters
        *put_export(s3, OLD, prefix="exports/db-archive"),
        *put_export(s3, OLD, prefix="exports"),  # the parent folder
        *put_export(s3, OLD, prefix="other/exports/db"),  # contains the prefix, not below it
        put(s3, f"exports/db{OLD}/export_info_{OLD}.json"),
        put(s3, "exports/db.json"),
    ]

    # When purge runs to the end
    state = purge_all(event())

    # Then only the old export below `exports/db/` is gone
    assert set(listing(s3)) == set(new) | set(outside)
    assert state["folders"] == [f"{PREFIX}/{OLD}/"]
    assert state["objects_deleted"] == len(old)


def test_running_unknown_and_foreign_folders_are_left_alone(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given, under the prefix: the new export; a folder RDS reports IN_PROGRESS (even holding
    # an export_info); an old export RDS knows (no export_info: e.g. a failed one's partial
    # files); folders that are not exports; loose files
    new = put_export(s3, NEW)
    running = put_export(s3, "still-running-1")
    known_old = [put(s3, f"{PREFIX}/failed-export-1/shop/public.orders/1/part-0.gz.parquet")]
    elsewhere = [put(s3, f"{PREFIX}/other-prefix-1/part-0.gz.parquet")]
    not_exports = [
        put(s3, f"{PREFIX}/manual_copy/export_info_manual_copy.json"),  # not an export id
        put(s3, f"{PREFIX}/double--hyphen/export_info_double--hyphen.json"),
        put(s3, f"{PREFIX}/1starts-with-digit/export_info_1starts-with-digit.json"),
        put(s3, f"{PREFIX}/no-export-info/part-0.gz.parquet"),  # valid name, nothing says export
        put(s3, f"{PREFIX}/other-info/export_info_someone-else.json"),
    ]
    loose = [put(s3, f"{PREFIX}/README.txt"), put(s3, f"{PREFIX}/")]
    monkeypatch.setattr(
        purge_prefix,
        "export_tasks",
        lambda fallback: tasks(
            ("still-running-1", PREFIX, "IN_PROGRESS"),
            ("failed-export-1", PREFIX + "/", "FAILED"),
            ("other-prefix-1", "exports/other", "COMPLETE"),
        ),
    )

    # When purge runs to the end
    state = purge_all(event())

    # Then only the old export RDS knows is deleted
    kept = new + running + elsewhere + not_exports + loose
    assert set(listing(s3)) == set(kept)
    assert state["folders"] == [f"{PREFIX}/failed-export-1/"]
    assert state["objects_deleted"] == len(known_old)
    assert state["kept_running"] == ["still-running-1"]
    assert "README.txt" in state["left_alone"] and "manual_copy/" in state["left_alone"]


def test_a_prefix_given_with_a_trailing_slash_is_the_same_prefix(s3: Any) -> None:
    put_export(s3, OLD)
    new = put_export(s3, NEW)
    neighbour = put_export(s3, OLD, prefix="exports/db2")
    purge_all(event(prefix="exports/db/"))
    assert set(listing(s3)) == set(new) | set(neighbour)


def test_a_dry_run_deletes_nothing_and_names_exactly_the_keys_it_would_delete(s3: Any) -> None:
    # Given two exports and a folder that is not an export
    old = put_export(s3, OLD) + put_export(s3, "nightly-2024-04-30-02-00-aaaaaa")
    put(s3, f"{PREFIX}/manual_copy/x.parquet")
    before = listing(s3)

    # When purge runs as a dry run (no new export exists: a real run would make one and then
    # purge every export that is there now)
    state = purge_all(event(new_id=None, dry_run=True))

    # Then nothing changed, and it reports exactly the exports' keys
    assert listing(s3) == before
    assert state["objects_deleted"] == 0
    assert sorted(state["would_delete_keys"]) == sorted(old)
    assert state["would_delete_count"] == len(old)
    assert state["would_delete_keys_truncated"] is False


def test_paging_deletes_every_old_key_and_each_folder_marker_last(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an old export of 20 data files and pages of 4 keys
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    old = put_export(s3, OLD)
    old += [
        put(s3, f"{PREFIX}/{OLD}/shop/public.orders/1/part-{i:05d}.gz.parquet") for i in range(20)
    ]
    new = put_export(s3, NEW)
    marker = f"{PREFIX}/{OLD}/export_info_{OLD}.json"

    # When purge runs page by page
    evt, pages = event(), 0
    while True:
        state = purge_prefix.purge_page(evt)
        pages += 1
        if not state["more"]:
            break
        # Then until the last page, the old folder is still recognisable as an export
        assert marker in listing(s3), f"export_info deleted before the last page ({pages})"
        evt = {**evt, "purge": state}

    # and in the end every old key is gone, the new export whole, in ceil(keys / 4) pages
    total = len(old) + len(new)
    assert pages == state["pages"] == -(-total // 4)
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)


# --- transient and partial failures -------------------------------------------------------------


@pytest.mark.parametrize("operation", ["GetObject", "ListObjectsV2", "HeadObject", "DeleteObjects"])
def test_throttling_is_transient_and_deletes_nothing(
    s3: Any, injector: faults.FaultInjector, operation: str
) -> None:
    # Given an old export (unknown to RDS: HeadObject finds its export_info) and a new one
    put_export(s3, OLD)
    put_export(s3, NEW)
    before = listing(s3)
    injector.api("s3", operation, "SlowDown", times=None)

    # When S3 throttles the call, Then purge raises Throttled (the state machine retries it,
    # the page starts over) and nothing was deleted
    with pytest.raises(Throttled, match=f"s3://{BUCKET}/"):
        purge_prefix.purge_page(event())
    injector.clear()
    assert listing(s3) == before


def test_keys_s3_could_not_delete_refuse_the_rest(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given DeleteObjects reporting a per-key error (S3 answers 200 with Errors)
    put_export(s3, OLD)
    put_export(s3, NEW)
    failing = {"Errors": [{"Key": f"{PREFIX}/{OLD}/x", "Code": "AccessDenied", "Message": "no"}]}
    monkeypatch.setattr(aws.client("s3"), "delete_objects", lambda **_: failing)

    # When purge runs, Then it stops with PurgeRefused naming the key and the way forward
    with pytest.raises(PurgeRefused, match=f"s3://{BUCKET}/{PREFIX}/{OLD}/x: AccessDenied"):
        purge_prefix.purge_page(event())


# --- the property: for any keys and any prefix, only older export folders go ---------------------

SEGMENTS = st.sampled_from(["exports", "db", "db2", "e", "a-b", "x_y", "db.v1"])
FOLDER_NAMES = st.sampled_from(
    [OLD, "old-a", "old-b", NEW, "x--y", "1abc", "manual_copy", "trailing-", "db", "db2"]
)
LEAVES = st.sampled_from(["info", "tables", "data", "readme", "marker", "other-info"])
RUNNING = ("STARTING", "IN_PROGRESS", "CANCELING")


def _leaf(kind: str, folder: str) -> str:
    return {
        "info": f"export_info_{folder}.json",
        "tables": f"export_tables_info_{folder}_from_1_to_1.json",
        "data": "shop/public.orders/1/part-00000-1.gz.parquet",
        "readme": "README.txt",
        "marker": "",
        "other-info": f"export_info_{OLD}.json",
    }[kind]


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """A prefix, keys in and around it, and the export tasks RDS reports."""
    prefix = "/".join(draw(st.lists(SEGMENTS, min_size=1, max_size=3)))
    parent = prefix.rpartition("/")[0]
    bases = [prefix, f"{prefix}2", f"{prefix}-archive", f"other/{prefix}", parent, prefix]
    keys = set()
    for _ in range(draw(st.integers(0, 14))):
        base = draw(st.sampled_from(bases))
        folder = draw(FOLDER_NAMES)
        leaf = _leaf(draw(LEAVES), folder)
        head = f"{base}/" if base else ""
        keys.add(f"{head}{folder}/{leaf}" if draw(st.booleans()) else f"{head}{leaf or 'loose'}")
    rds = [
        {
            "ExportTaskIdentifier": draw(FOLDER_NAMES),
            "S3Bucket": draw(st.sampled_from([BUCKET, "another-bucket"])),
            "S3Prefix": draw(st.sampled_from([prefix, f"{prefix}/", f"{prefix}2", "elsewhere"])),
            "Status": draw(st.sampled_from(["COMPLETE", "FAILED", "CANCELED", *RUNNING])),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    return {"prefix": prefix, "keys": sorted(keys), "tasks": rds, "page": draw(st.integers(1, 6))}


def expected_deletions(prefix: str, keys: set[str], rds: list[dict[str, Any]]) -> set[str]:
    """The purge rule of the design, written out for the oracle."""
    ours = [t for t in rds if t["S3Bucket"] == BUCKET]
    running = {t["ExportTaskIdentifier"] for t in ours if t["Status"] in RUNNING}
    known = {t["ExportTaskIdentifier"] for t in ours if t["S3Prefix"].rstrip("/") == prefix}
    doomed = set()
    for key in keys:
        if not key.startswith(f"{prefix}/"):
            continue
        folder, slash, _ = key[len(prefix) + 1 :].partition("/")
        if not slash or folder == NEW or folder in running:
            continue
        if not (EXPORT_ID.match(folder) and len(folder) <= 60):
            continue
        if folder in known or f"{prefix}/{folder}/export_info_{folder}.json" in keys:
            doomed.add(key)
    return doomed


def _empty_bucket(s3: Any) -> None:
    keys = list(listing(s3))
    for start in range(0, len(keys), 1000):
        chunk = [{"Key": k} for k in keys[start : start + 1000]]
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": chunk, "Quiet": True})


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_purge_deletes_only_older_export_folders_under_the_prefix(
    s3: Any, world: dict[str, Any]
) -> None:
    # Given any keys in and around any prefix, a new export under it, and any RDS export tasks
    _empty_bucket(s3)
    prefix = world["prefix"]
    for key in world["keys"]:
        if not key.startswith(f"{prefix}/{NEW}/export_"):  # the new export's metadata is ours
            put(s3, key)
    put_export(s3, NEW, prefix=prefix)
    before = set(listing(s3))

    # When purge runs to the end, in pages of 1 to 6 keys
    with (
        mock.patch.object(purge_prefix, "PAGE_SIZE", world["page"]),
        mock.patch.object(purge_prefix, "export_tasks", return_value=world["tasks"]),
    ):
        state = purge_all(event(prefix=prefix))

    # Then exactly the keys of older export folders under the prefix are gone
    doomed = expected_deletions(prefix, before, world["tasks"])
    after = set(listing(s3))
    assert after == before - doomed
    assert state["objects_deleted"] == len(doomed)
    # which never includes the new export or anything outside `<prefix>/`
    assert all(k.startswith(f"{prefix}/") for k in before - after)
    assert not any(k.startswith(f"{prefix}/{NEW}/") for k in before - after)


# --- discarding this run's own failed export ------------------------------------------------


def _discard_event(task_id: str) -> dict[str, Any]:
    return {
        "mode": "discard-failed",
        "config": {"s3_prefix": PREFIX},
        "export": {"export_task_id": task_id},
        "discard": {"folder": "", "objects_deleted": 0, "more": False},
    }


def _rds_task(status: str, task_id: str = NEW) -> Any:
    return {"ExportTasks": [{"ExportTaskIdentifier": task_id, "Status": status}]}


@pytest.mark.parametrize("status", ["FAILED", "CANCELED"])
def test_discard_removes_only_the_failed_exports_own_folder(s3: Any, status: str) -> None:
    # Given a previous complete export and the partial files of this run's failed export
    previous = put_export(s3, OLD)
    partial = [
        put(s3, f"{PREFIX}/{NEW}/shop/public.orders/1/part-0000{i}.gz.parquet") for i in range(3)
    ]
    neighbour = put(s3, f"{PREFIX}2/{NEW}/x.parquet")
    with mock.patch.object(
        aws.client("rds"), "describe_export_tasks", return_value=_rds_task(status)
    ):
        # When the failed export is discarded
        result = purge_prefix.lambda_handler(_discard_event(NEW), None)
    # Then exactly its own folder is gone
    assert result["objects_deleted"] == len(partial)
    assert result["more"] is False
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert left == {*previous, neighbour}


@pytest.mark.parametrize("status", ["COMPLETE", "IN_PROGRESS", "STARTING", "CANCELING"])
def test_discard_refuses_an_export_that_did_not_fail(s3: Any, status: str) -> None:
    keys = put_export(s3, NEW)
    with (
        mock.patch.object(
            aws.client("rds"), "describe_export_tasks", return_value=_rds_task(status)
        ),
        pytest.raises(PurgeRefused, match=status),
    ):
        purge_prefix.lambda_handler(_discard_event(NEW), None)
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]} == set(keys)
