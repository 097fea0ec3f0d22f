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
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rds_s3_export import aws
from rds_s3_export.errors import PurgeRefused, Throttled
from rds_s3_export.steps import purge_prefix
from sandbox import faults
from tests.helpers import seed_objects, spy_calls
from tests.unit.conftest import BUCKET, put

PREFIX = "exports/db"
NEW = "nightly-2024-05-02-02-00-abc123"
OLD = "nightly-2024-05-01-02-00-def456"
ORDERS = "shop.public.orders"
# The rule for an export task id, written out independently of rds_s3_export.naming
EXPORT_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*(?<!-)$")


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
    """Call purge again and again, as the state machine's loop does."""
    for _ in range(max_pages):
        state = purge_prefix.purge_page(evt)
        if not state["more"]:
            return state
        evt = {**evt, "purge": state}
    raise AssertionError(f"purge did not finish in {max_pages} pages")


def last_pass(evt: dict[str, Any], state: dict[str, Any], max_calls: int = 200) -> dict[str, Any]:
    """Call the last pass again and again while it says so, as IsPreviousExportPurged does."""
    for _ in range(max_calls):
        if state["phase"] != purge_prefix.PHASE_PREVIOUS:
            return state
        state = purge_prefix.purge_page({**evt, "purge": state})
    raise AssertionError(f"the last pass did not finish in {max_calls} calls")


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
        ({"info": {"exportTaskIdentifier": NEW}}, "has no status"),
        ({"tables": {ORDERS: "IN_PROGRESS"}}, f"not COMPLETE: {ORDERS} (IN_PROGRESS)"),
        ({"tables": {ORDERS: ""}}, f"not COMPLETE: {ORDERS} ()"),
    ],
    ids=[
        "export-info-missing",
        "export-info-not-complete",
        "tables-info-missing",
        "table-failed",
        "export-info-status-missing",
        "table-in-progress",
        "table-status-empty",
    ],
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


# --- the new export's files must match its tables (AWS's layout, docs cited in manifest.py) ----


def test_a_complete_table_whose_files_are_missing_refuses_the_purge(s3: Any) -> None:
    # Given an old export, and a new one that RDS says is COMPLETE, with a COMPLETE table
    # (which RDS does not show empty) whose folder holds no file
    put_export(s3, OLD)
    keys = put_export(s3, NEW)
    for key in keys:
        if "/shop/public.customers/" in key:
            s3.delete_object(Bucket=BUCKET, Key=key)
    before = listing(s3)

    # When purge runs
    with pytest.raises(PurgeRefused) as refused:
        purge_prefix.purge_page(event())

    # Then it refuses naming the table, the folder it looked for and what it found; and
    # nothing was deleted: the old export stays
    message = str(refused.value)
    where = f"{PREFIX}/{NEW}/"
    assert (
        f"the files of export s3://{BUCKET}/{where} do not match its export_tables_info" in message
    )
    assert "table shop.public.customers is COMPLETE but has no data files" in message
    assert f"looked for {where}shop/public.customers/" in message
    assert f"found under {where}shop/: shop/public.orders/" in message
    assert message.endswith("nothing was deleted")
    assert listing(s3) == before


def test_files_in_a_folder_no_table_names_refuse_the_purge(s3: Any) -> None:
    # A table named with a space is written by RDS to a folder with "_"; files under the
    # name as spelt (which RDS never writes) belong to no table
    put_export(s3, OLD)
    put_export(s3, NEW, tables={"shop.public.order lines": "COMPLETE"})
    before = listing(s3)
    with pytest.raises(
        PurgeRefused, match=r"shop/public\.order lines/ \(1 Parquet files\) matches no"
    ):
        purge_prefix.purge_page(event())
    assert listing(s3) == before


def test_a_table_named_with_a_space_is_found_in_its_underscore_folder(s3: Any) -> None:
    old = put_export(s3, OLD)
    new = put_export(s3, NEW, tables={ORDERS: "COMPLETE"})
    new.append(put(s3, f"{PREFIX}/{NEW}/shop/public.order_lines/1/part-00000-x.gz.parquet"))
    new.append(put(s3, f"{PREFIX}/{NEW}/shop/public.order_lines/2/part-00003-y.gz.parquet"))
    tables_info = f"{PREFIX}/{NEW}/export_tables_info_{NEW}_from_1_to_2.json"
    body = {"perTableStatus": [{"target": "shop.public.order lines", "status": "COMPLETE"}]}
    new.append(put(s3, tables_info, json.dumps(body).encode()))

    state = purge_all(event())

    assert state["verification"]["tables"] == 2
    assert state["verification"]["data_files"] == 3
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)


def test_a_complete_table_rds_shows_empty_needs_no_files(s3: Any) -> None:
    put_export(s3, OLD)
    put_export(s3, NEW, tables={ORDERS: "COMPLETE"})
    tables_info = f"{PREFIX}/{NEW}/export_tables_info_{NEW}_from_1_to_2.json"
    body = {"perTableStatus": [{"target": "shop.public.empty", "status": "COMPLETE", "sizeGB": 0}]}
    put(s3, tables_info, json.dumps(body).encode())
    state = purge_all(event())
    assert state["verification"]["tables_complete"] == 2
    assert state["verification"]["data_files"] == 1


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


class Budget:
    """A Lambda context whose remaining time runs out after `pages` pages of the purge (it is
    asked once before every page but the first)."""

    def __init__(self, pages: int) -> None:
        self.asked, self.pages = 0, pages

    def __call__(self) -> int:
        self.asked += 1
        return 10**6 if self.asked < self.pages else 0


def test_a_call_deletes_pages_until_its_time_budget_and_each_folder_marker_last(
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

    # When purge runs call by call, each call's time budget lasting 2 pages
    evt, calls = event(), 0
    while True:
        state = purge_prefix.purge_page(evt, Budget(2))
        calls += 1
        if not state["more"]:
            break
        # Then until the last call, the old folder is still recognisable as an export
        assert marker in listing(s3), f"export_info deleted before the last call ({calls})"
        evt = {**evt, "purge": state}

    # and in the end every old key is gone, the new export whole; the 23 keys but the marker
    # take 6 pages, 2 a call; the third call's budget is spent when it reaches the folder's end
    # (it asks again before the folder's last two requests), so a fourth deletes the marker
    assert calls == state["calls"] == 4
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)
    assert state["folders"] == [f"{PREFIX}/{OLD}/"]


def test_without_a_time_limit_one_call_deletes_everything(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    old = put_export(s3, OLD) + put_export(s3, "nightly-2024-04-30-02-00-aaaaaa")
    new = put_export(s3, NEW)
    state = purge_prefix.purge_page(event(), lambda: 10**6)
    assert state["more"] is False and state["calls"] == 1
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)


def test_the_new_exports_keys_are_listed_only_to_verify_it_and_rds_is_asked_once(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an old export and a large new one
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    put_export(s3, OLD)
    for i in range(10):
        put(s3, f"{PREFIX}/{OLD}/shop/public.orders/2/part-{i:05d}.gz.parquet")
    for i in range(30):
        put(s3, f"{PREFIX}/{NEW}/shop/public.orders/2/part-{i:05d}.gz.parquet")
    put_export(s3, NEW)
    listings = spy_calls(s3, monkeypatch, "list_objects_v2")
    asked: list[int] = []
    monkeypatch.setattr(purge_prefix, "export_tasks", lambda fallback: asked.append(1) or [])

    # When purge runs to the end, one page a call
    evt = event()
    while True:
        state = purge_prefix.purge_page(evt, Budget(1))
        if not state["more"]:
            break
        evt = {**evt, "purge": state}

    # Then RDS was asked once, and the new export's folder was listed once, whole, by the
    # verification of the first call (its 33 keys are one page), never by the deleting loop
    assert len(asked) == 1 and state["calls"] > 1
    inside = [p for p in listings if p["Prefix"].startswith(f"{PREFIX}/{NEW}/")]
    assert inside == [{"Bucket": BUCKET, "Prefix": f"{PREFIX}/{NEW}/", "MaxKeys": 1000}]
    for params in listings:
        if params["Prefix"] == f"{PREFIX}/":
            assert params.get("Delimiter") == "/"


def test_the_manifest_is_neither_deleted_nor_reported(s3: Any) -> None:
    put_export(s3, OLD)
    new = put_export(s3, NEW)
    manifest = put(s3, f"{PREFIX}/_manifest.json", b"{}")
    state = purge_all(event())
    assert set(listing(s3)) == {*new, manifest}
    assert state["left_alone"] == []


def test_no_delete_request_names_more_than_1000_keys(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two old exports whose held-back export_info files would overflow a full last page:
    # the first 1,000 keys are OLD's 996 and the new export's 4; LATE's 1,000 come last
    late = "nightly-2024-05-03-02-00-fff999"
    old = put_export(s3, OLD, with_tables=False, tables={ORDERS: "COMPLETE"})
    old += seed_objects(
        BUCKET, (f"{PREFIX}/{OLD}/shop/orders/1/part-{i:05d}.gz.parquet" for i in range(994))
    )
    new = put_export(s3, NEW)
    old += [put(s3, f"{PREFIX}/{late}/export_info_{late}.json")]
    old += seed_objects(
        BUCKET, (f"{PREFIX}/{late}/shop/orders/1/part-{i:05d}.gz.parquet" for i in range(999))
    )
    sizes: list[int] = []
    real = s3.delete_objects

    def like_s3(**params: Any) -> Any:  # S3 refuses more than 1,000 keys (API_DeleteObjects)
        sizes.append(len(params["Delete"]["Objects"]))
        if sizes[-1] > 1000:
            raise ClientError({"Error": {"Code": "MalformedXML", "Message": "x"}}, "DeleteObjects")
        return real(**params)

    monkeypatch.setattr(s3, "delete_objects", like_s3)

    # When purge runs to the end
    state = purge_all(event())

    # Then every request held at most 1,000 keys, and all old keys are gone
    assert max(sizes) <= 1000
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)


@pytest.mark.parametrize("prefix_length", [20, 500])
def test_a_dry_run_caps_the_keys_it_lists_by_bytes(s3: Any, prefix_length: int) -> None:
    # Given a long prefix and 300 keys of about 1,000 bytes each: 300 KB of key names
    prefix = "/".join(["p" * 9] * (prefix_length // 10))
    put_export(s3, OLD, prefix=prefix)
    head = f"{prefix}/{OLD}/shop/"
    seed_objects(
        BUCKET, (f"{head}{'t' * (1000 - len(head) - 20)}/part-{i:05d}.parquet" for i in range(300))
    )

    # When a dry run lists what it would purge
    state = purge_all(event(prefix=prefix, new_id=None, dry_run=True))

    # Then the state stays far below Step Functions' 262,144 bytes, and says what it left out
    assert len(json.dumps(state).encode()) < 100_000
    shown = len(state["would_delete_keys"])
    assert state["would_delete_count"] == 300 + 4
    assert state["would_delete_keys_left_out"] == 304 - shown > 0
    assert state["would_delete_keys_truncated"] is True


def test_a_repeated_last_call_counts_only_what_it_deleted(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an old export purged one page a call
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    old = put_export(s3, OLD)
    old += [put(s3, f"{PREFIX}/{OLD}/shop/part-{i:05d}.gz.parquet") for i in range(10)]
    put_export(s3, NEW)
    evt = event()
    while True:
        state = purge_prefix.purge_page(evt, Budget(1))
        if not state["more"]:
            break
        evt = {**evt, "purge": state}

    # When the last call runs again from the same state (its answer was lost: a retry)
    again = purge_prefix.purge_page(evt, Budget(1))

    # Then the counts are what was really deleted: the first time everything, the second
    # time nothing more (the old code re-sent the held-back export_info and counted it)
    assert state["objects_deleted"] == len(old)
    assert again["objects_deleted"] == evt["purge"]["objects_deleted"] <= len(old)
    assert again["pages"] == evt["purge"]["pages"]


def test_a_slow_down_after_progress_ends_the_call_early_with_honest_counts(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an old export of 40 keys in pages of 4, and S3 slowing down the 3rd delete request
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    monkeypatch.setattr(purge_prefix, "MAX_IN_FLIGHT", 1)
    old = put_export(s3, OLD)
    old += [put(s3, f"{PREFIX}/{OLD}/shop/part-{i:05d}.gz.parquet") for i in range(36)]
    new = put_export(s3, NEW)
    real, requests = s3.delete_objects, []

    def slowing(**params: Any) -> Any:
        requests.append(params)
        if len(requests) == 3:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "DeleteObjects")
        return real(**params)

    monkeypatch.setattr(s3, "delete_objects", slowing)

    # When purge runs
    state = purge_prefix.purge_page(event())

    # Then the call ended early, keeping its progress, and counted what S3 deleted
    gone = len(old) + len(new) - len(listing(s3))
    assert state["throttled"] is True and state["more"] is True
    assert state["objects_deleted"] == gone > 0
    assert f"{PREFIX}/{OLD}/export_info_{OLD}.json" in listing(s3)
    # and the next call finishes the job
    final = purge_all({**event(), "purge": state})
    assert set(listing(s3)) == set(new)
    assert final["objects_deleted"] == len(old)


def test_a_long_purge_asks_for_a_new_execution_before_the_history_runs_out(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    monkeypatch.setenv("PURGE_HISTORY_EVENTS_MAX", "170")  # about 4 calls (estimate: 12 each)
    put_export(s3, OLD)
    for i in range(40):
        put(s3, f"{PREFIX}/{OLD}/shop/part-{i:05d}.gz.parquet")
    put_export(s3, NEW)
    evt, flags = event(), []
    while True:
        state = purge_prefix.purge_page(evt, Budget(1))
        flags.append(state["continue_in_new_execution"])
        if not state["more"]:
            break
        evt = {**evt, "purge": state}
    assert flags[:3] == [False, False, False] and flags[3] is True
    assert flags[-1] is False  # nothing left: nothing to continue


# --- transient and partial failures -------------------------------------------------------------


@pytest.mark.parametrize("operation", ["GetObject", "ListObjectsV2", "DeleteObjects"])
def test_throttling_before_any_progress_is_transient_and_deletes_nothing(
    s3: Any, injector: faults.FaultInjector, operation: str
) -> None:
    # Given an old export (unknown to RDS: a listing finds its export_info) and a new one
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
    # the manifest: none, one that is not JSON, or one naming any folder name, often one of
    # the folders under the prefix, which is then often an export (it holds its export_info)
    below = f"{prefix}/"
    rests = [k[len(below) :] for k in keys if k.startswith(below)]
    present = sorted({rest.split("/")[0] for rest in rests if "/" in rest})
    named = [st.sampled_from(present)] * 3 if present else []
    manifest = draw(st.one_of(st.none(), st.just("{not json"), FOLDER_NAMES, *named))
    if manifest in present and draw(st.booleans()):
        keys.add(f"{below}{manifest}/export_info_{manifest}.json")
    return {
        "prefix": prefix,
        "keys": sorted(keys),
        "tasks": rds,
        "page": draw(st.integers(1, 6)),
        "manifest": manifest,
    }


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
    # Given any keys in and around any prefix, a new export under it, any RDS export tasks,
    # and any manifest
    _empty_bucket(s3)
    prefix = world["prefix"]
    # the new export's metadata is ours
    seed_objects(BUCKET, (k for k in world["keys"] if not k.startswith(f"{prefix}/{NEW}/export_")))
    put_export(s3, NEW, prefix=prefix)
    named = world["manifest"]
    if named is not None:
        body = named if named.startswith("{") else json.dumps({"export_task_id": named})
        put(s3, f"{prefix}/_manifest.json", body.encode())
    before = set(listing(s3))

    # When purge runs to the end, in pages of 1 to 6 keys
    with (
        mock.patch.object(purge_prefix, "PAGE_SIZE", world["page"]),
        mock.patch.object(purge_prefix, "export_tasks", return_value=world["tasks"]),
    ):
        state = purge_all(event(prefix=prefix))
        first = set(listing(s3))
        # and, once the manifest names the new export, its last pass
        put(s3, f"{prefix}/_manifest.json", json.dumps({"export_task_id": NEW}).encode())
        state = last_pass(event(prefix=prefix), state)

    # Then the first pass deleted the keys of older export folders under the prefix but the
    # folder the manifest named, and in the end exactly the keys of older export folders are
    # gone
    doomed = expected_deletions(prefix, before, world["tasks"])
    held = {k for k in doomed if named and k.startswith(f"{prefix}/{named}/")}
    assert first == before - (doomed - held)
    after = set(listing(s3))
    assert after == before - doomed | {f"{prefix}/_manifest.json"}
    assert state["objects_deleted"] == len(doomed)
    # which never includes the new export or anything outside `<prefix>/`
    assert all(k.startswith(f"{prefix}/") for k in before - after)
    assert not any(k.startswith(f"{prefix}/{NEW}/") for k in before - after)


# --- the folder the manifest names: held back until the manifest names the new export ---------

OLDER = "nightly-2024-04-30-02-00-aaaaaa"
MANIFEST = f"{PREFIX}/_manifest.json"


def put_manifest(s3: Any, task_id: str, prefix: str = PREFIX) -> str:
    """The manifest PublishManifest writes, reduced to the fields that say where the export is."""
    body = {
        "bucket": BUCKET,
        "s3_prefix": prefix,
        "export_task_id": task_id,
        "export_folder": f"{prefix}/{task_id}/",
    }
    return put(s3, MANIFEST, json.dumps(body).encode())


def keys_of(listed: dict[str, str], task_id: str) -> dict[str, str]:
    return {k: v for k, v in listed.items() if k.startswith(f"{PREFIX}/{task_id}/")}


def test_the_folder_the_manifest_names_goes_only_after_the_manifest_names_the_new_export(
    s3: Any,
) -> None:
    # Given the export the manifest names, an older export (a run whose publish failed left
    # it), and the new export
    old = put_export(s3, OLD)
    older = put_export(s3, OLDER)
    new = put_export(s3, NEW)
    manifest = put_manifest(s3, OLD)
    held = keys_of(listing(s3), OLD)

    # When the purge runs to the end
    state = purge_all(event())

    # Then the older export is gone, the manifest's folder is byte-for-byte intact, and the
    # purge says it waits for the new manifest
    assert set(listing(s3)) == {*new, *old, manifest}
    assert keys_of(listing(s3), OLD) == held
    assert state["deferred"] == OLD
    assert state["phase"] == purge_prefix.PHASE_PREVIOUS and state["more"] is False
    assert state["folders"] == [f"{PREFIX}/{OLDER}/"]
    assert state["objects_deleted"] == len(older)

    # and the last pass refuses while the manifest still names that folder (PublishManifest
    # failed, or was never reached)
    with pytest.raises(PurgeRefused, match=f"names {OLD}, not this run's export {NEW}"):
        purge_prefix.purge_page({**event(), "purge": state})
    assert keys_of(listing(s3), OLD) == held

    # When the manifest names the new export, Then the last pass deletes the folder
    manifest = put_manifest(s3, NEW)
    final = last_pass(event(), state)
    assert set(listing(s3)) == {*new, manifest}
    assert final["phase"] == purge_prefix.PHASE_DONE
    assert final["folders"] == [f"{PREFIX}/{OLDER}/", f"{PREFIX}/{OLD}/"]
    assert final["objects_deleted"] == len(older) + len(old)
    assert final["warnings"] == []


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        (None, None),
        (json.dumps({"export_task_id": NEW}).encode(), None),
        (json.dumps({"export_task_id": "gone-export-1"}).encode(), "holds nothing"),
        (
            json.dumps({"export_task_id": "elsewhere-1", "export_folder": "other/elsewhere-1/"}),
            "holds nothing",
        ),
        (json.dumps({"export_task_id": "still-running-1"}).encode(), None),
        (json.dumps({"export_task_id": "no-export-info"}).encode(), None),
        (b"{not json", "not a manifest"),
        (b"[1, 2]", "not a manifest"),
        (b"{}", "not a manifest"),
        (json.dumps({"export_task_id": 7}).encode(), "not a manifest"),
        (json.dumps({"export_task_id": "../x"}).encode(), "not a manifest"),
        (json.dumps({"export_task_id": f"{OLD}/shop"}).encode(), "not a manifest"),
        (json.dumps({"export_task_id": ""}).encode(), "not a manifest"),
    ],
    ids=[
        "no-manifest",
        "names-the-new-export",
        "names-a-folder-that-is-gone",
        "names-a-folder-under-another-prefix",
        "names-a-running-export",
        "names-a-folder-that-is-not-an-export",
        "not-json",
        "not-an-object",
        "no-export-task-id",
        "export-task-id-not-a-string",
        "export-task-id-climbs-out",
        "export-task-id-with-a-slash",
        "export-task-id-empty",
    ],
)
def test_a_manifest_that_names_nothing_to_delete_holds_nothing_back_and_widens_nothing(
    s3: Any, monkeypatch: pytest.MonkeyPatch, body: bytes | str | None, warning: str | None
) -> None:
    # Given two old exports, the new one, a running export, a folder that is not an export,
    # an export under another prefix, and a manifest that names none of the old exports
    old = put_export(s3, OLD) + put_export(s3, OLDER)
    kept = put_export(s3, NEW) + put_export(s3, "still-running-1")
    kept += [put(s3, f"{PREFIX}/no-export-info/part-0.gz.parquet")]
    kept += put_export(s3, "elsewhere-1", prefix="other")
    if body is not None:
        kept.append(put(s3, MANIFEST, body.encode() if isinstance(body, str) else body))
    monkeypatch.setattr(
        purge_prefix,
        "export_tasks",
        lambda fallback: tasks(("still-running-1", PREFIX, "IN_PROGRESS")),
    )
    before = listing(s3)

    # When the purge runs to the end
    state = purge_all(event())

    # Then nothing is held back, exactly the old exports are gone (what the purge deletes
    # without a manifest), the manifest is untouched, and the warning says what was odd
    assert state["deferred"] is None
    assert state["phase"] == purge_prefix.PHASE_DONE
    assert listing(s3) == {k: v for k, v in before.items() if k not in old}
    assert sorted(state["folders"]) == [f"{PREFIX}/{OLDER}/", f"{PREFIX}/{OLD}/"]
    if warning is None:
        assert state["warnings"] == []
    else:
        assert len(state["warnings"]) == 1 and warning in state["warnings"][0]
        assert f"s3://{BUCKET}/{MANIFEST}" in state["warnings"][0]


def _failing_manifest_reads(s3: Any, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    real = s3.get_object

    def get_object(**params: Any) -> Any:
        if params["Key"] == MANIFEST:
            raise ClientError({"Error": {"Code": code, "Message": "x"}}, "GetObject")
        return real(**params)

    monkeypatch.setattr(s3, "get_object", get_object)


@pytest.mark.parametrize(
    ("code", "error"), [("AccessDenied", PurgeRefused), ("SlowDown", Throttled)]
)
def test_a_manifest_that_cannot_be_read_stops_the_purge_before_anything_is_deleted(
    s3: Any, monkeypatch: pytest.MonkeyPatch, code: str, error: type[Exception]
) -> None:
    # Given old exports, the new one, and a manifest S3 will not hand over
    put_export(s3, OLD)
    put_export(s3, OLDER)
    put_export(s3, NEW)
    put_manifest(s3, OLD)
    before = listing(s3)
    _failing_manifest_reads(s3, monkeypatch, code)

    # When the purge runs, Then it stops (refused, or throttled and retried) naming the
    # manifest, and nothing is deleted: what the manifest names is unknown
    with pytest.raises(error, match=f"s3://{BUCKET}/{MANIFEST}"):
        purge_prefix.purge_page(event())
    assert listing(s3) == before


def test_the_last_pass_deletes_page_after_page_within_its_time_budget_export_info_last(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the manifest's folder of 23 keys, pages of 4, and the manifest replaced already
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    old = put_export(s3, OLD)
    old += [put(s3, f"{PREFIX}/{OLD}/shop/public.orders/1/part-{i:05d}.parquet") for i in range(20)]
    new = put_export(s3, NEW)
    put_manifest(s3, OLD)
    state = purge_all(event())
    assert state["deferred"] == OLD and state["objects_deleted"] == 0
    manifest = put_manifest(s3, NEW)
    marker = f"{PREFIX}/{OLD}/export_info_{OLD}.json"

    # When the last pass runs call by call, each call's time budget lasting 2 pages
    calls = 0
    while state["phase"] == purge_prefix.PHASE_PREVIOUS:
        assert marker in listing(s3), f"export_info deleted before the last call ({calls})"
        state = purge_prefix.purge_page({**event(), "purge": state}, Budget(2))
        calls += 1

    # Then it took several calls, and in the end only the new export and the manifest are left
    assert calls == 4  # the third ran out at the folder's end, as above
    assert set(listing(s3)) == {*new, manifest}
    assert state["objects_deleted"] == len(old)
    assert state["phase"] == purge_prefix.PHASE_DONE


def test_the_last_pass_stops_before_the_history_runs_out_and_leaves_the_rest_recognisable(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the manifest's folder of 23 keys purged one page a call, and a history nearly spent
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    put_export(s3, OLD)
    for i in range(20):
        put(s3, f"{PREFIX}/{OLD}/shop/part-{i:05d}.parquet")
    put_export(s3, NEW)
    put_manifest(s3, OLD)
    state = purge_all(event())
    put_manifest(s3, NEW)
    monkeypatch.setattr(purge_prefix, "PREVIOUS_EXPORT_EVENTS_MAX", 0)

    # When the last pass runs
    state = purge_prefix.purge_page({**event(), "purge": state}, Budget(1))

    # Then it stops after one call, says so, and the folder's export_info is still there, so
    # the next run's purge recognises and deletes the rest (the manifest no longer names it)
    assert state["phase"] == purge_prefix.PHASE_DONE and state["more"] is False
    assert state["continue_in_new_execution"] is False
    assert "only partly deleted" in state["warnings"][0]
    assert f"{PREFIX}/{OLD}/export_info_{OLD}.json" in listing(s3)
    assert 0 < state["objects_deleted"] < 23


def test_the_last_pass_keeps_a_folder_rds_now_reports_running(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = put_export(s3, OLD)
    new = put_export(s3, NEW)
    put_manifest(s3, OLD)
    state = purge_all(event())
    manifest = put_manifest(s3, NEW)
    monkeypatch.setattr(
        purge_prefix, "export_tasks", lambda fallback: tasks((OLD, PREFIX, "IN_PROGRESS"))
    )
    final = last_pass(event(), state)
    assert set(listing(s3)) == {*old, *new, manifest}
    assert final["phase"] == purge_prefix.PHASE_DONE
    assert final["warnings"] == [
        f"previous export s3://{BUCKET}/{PREFIX}/{OLD}/ kept: keep-running"
    ]


def test_a_dry_run_reports_the_held_back_folder_and_its_keys(s3: Any) -> None:
    # Given two old exports, the manifest naming one of them
    old = put_export(s3, OLD) + put_export(s3, OLDER)
    put_manifest(s3, OLD)
    before = listing(s3)

    # When a dry run plans the purge
    state = purge_all(event(new_id=None, dry_run=True))

    # Then nothing changed; it names the folder a real run deletes last, and counts its keys
    # among the ones a real run deletes
    assert listing(s3) == before
    assert state["deferred"] == OLD
    assert sorted(state["would_delete_keys"]) == sorted(old)
    assert state["phase"] == purge_prefix.PHASE_DONE


def test_a_continued_purge_holds_back_the_same_folder_and_refuses_a_changed_manifest(
    s3: Any,
) -> None:
    # Given a purge continued in a new execution: it carries the folder the manifest named
    # when the run's purge began, and plans again
    old = put_export(s3, OLD)
    put_export(s3, OLDER)
    new = put_export(s3, NEW)
    manifest = put_manifest(s3, OLD)
    carried = {**event()["purge"], "continuations": 1, "deferred": OLD}
    with mock.patch.object(
        purge_prefix, "export_tasks", return_value=tasks((NEW, PREFIX, "COMPLETE"))
    ):
        # When the manifest still names that folder, Then it is held back again
        state = purge_all({**event(), "purge": carried})
        assert state["deferred"] == OLD and state["phase"] == purge_prefix.PHASE_PREVIOUS
        assert set(listing(s3)) == {*old, *new, manifest}

        # When something else rewrote the manifest meanwhile, Then the purge refuses
        put_export(s3, OLDER)
        put_manifest(s3, OLDER)
        before = listing(s3)
        with pytest.raises(PurgeRefused, match=f"names export {OLDER} now, {OLD} when"):
            purge_prefix.purge_page({**event(), "purge": carried})
        assert listing(s3) == before


# --- issue 17: absence without s3:ListBucket, transient S3 faults, honest counts --------------


def test_a_missing_manifest_answering_403_is_absent_not_a_refusal(
    s3: Any, injector: faults.FaultInjector
) -> None:
    # Given the first night (no manifest) and a role without s3:ListBucket on the manifest's
    # key, so that S3 answers a GET or HEAD of a missing key 403, not 404
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions")
    old = put_export(s3, OLD)
    new = put_export(s3, NEW)
    for operation in ("GetObject", "HeadObject"):
        injector.api("s3", operation, "AccessDenied", times=None, url_contains="_manifest.json")
    injector.api("s3", "HeadObject", "AccessDenied", times=None)
    # When the purge runs, Then it lists the exact keys instead, finds no manifest, and purges
    state = purge_all(event())
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old) and state["deferred"] is None
    assert state["counts_are_lower_bounds"] is False


@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailable", "SlowDown"])
def test_one_s3_5xx_on_a_delete_is_retried_and_counted_once(
    s3: Any, injector: faults.FaultInjector, code: str, sdk_sleeps: list[float]
) -> None:
    old = put_export(s3, OLD)
    new = put_export(s3, NEW)
    fault = injector.api("s3", "DeleteObjects", code, times=1)
    state = purge_all(event())
    assert fault.fired == 1 and len(sdk_sleeps) == 1  # the SDK waited, then tried again
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old) and state["counts_are_lower_bounds"] is False


def test_a_lost_delete_objects_answer_is_retried_and_counted_once(
    s3: Any, injector: faults.FaultInjector
) -> None:
    # Given S3 deleting the keys of a DeleteObjects request whose answer never arrives
    old = put_export(s3, OLD)
    new = put_export(s3, NEW)
    lost = injector.lose_answer("s3", "DeleteObjects", times=1)
    # Then the SDK sends it again; S3 reports keys already gone as deleted, so the count holds
    state = purge_all(event())
    assert lost.fired == 1
    assert set(listing(s3)) == set(new)
    assert state["objects_deleted"] == len(old)


def test_a_purge_killed_mid_delete_is_retried_and_says_its_counts_are_lower_bounds(
    s3: Any, injector: faults.FaultInjector
) -> None:
    # Given an old export of 2,512 objects, and the purge's function killed right after its
    # first DeleteObjects request went through
    old = put_export(s3, OLD, with_tables=False, tables={ORDERS: "COMPLETE"})
    old += seed_objects(
        BUCKET, (f"{PREFIX}/{OLD}/shop/orders/1/part-{i:05d}.gz.parquet" for i in range(2510))
    )
    assert len(old) == 2512
    new = put_export(s3, NEW)
    injector.kill_after("s3", "DeleteObjects", times=1)
    with pytest.raises(faults.SimulatedCrash):
        purge_prefix.purge_page(event())
    left = len(listing(s3)) - len(new)
    assert left < len(old)  # the killed call deleted some
    # When the state machine calls again with the same state (attempt 1)
    state = purge_all({**event(), "attempt": 1})
    # Then everything old is gone, and the report says its counts are lower bounds: it counted
    # what it deleted itself, at most the true total
    assert set(listing(s3)) == set(new)
    assert state["counts_are_lower_bounds"] is True
    assert state["objects_deleted"] == left <= len(old)


def test_a_first_attempt_reports_exact_counts(s3: Any) -> None:
    old = put_export(s3, OLD)
    put_export(s3, NEW)
    state = purge_all(event())
    assert state["objects_deleted"] == len(old) and state["counts_are_lower_bounds"] is False
    assert state["folders"] == [f"{PREFIX}/{OLD}/"]
