"""PurgePrefix: verify the new export, then delete older export folders, many pages a call.

The rules, all of which hold on every call:

* the prefix is re-checked (non-empty, not `/`, `.`, `..`, no leading `/`, no `:`);
* before the first deletion the new export is verified: its `export_info_<id>.json` exists
  and its `status` says COMPLETE, and every table its `export_tables_info_*` files list is
  COMPLETE (SKIPPED tables follow the `skipped_tables_policy`: `warn` lists them, `fail`
  refuses; any other or missing status refuses); and its files match those tables
  (`manifest.locate_tables`: every folder of Parquet files is one table's, and every COMPLETE
  table has files unless RDS shows it empty), so a COMPLETE export whose data is missing
  never replaces the previous one;
* only the folders directly below `<s3_prefix>/` are listed (the `/` is part of the boundary,
  so `exports/db` never touches `exports/db2/`), and of those only folders that are exports
  are listed further and deleted: named like an export task and either holding their own
  `export_info_<folder>.json` or known to RDS as an export task into this bucket and prefix;
  the new export's keys are listed only to verify it, never by the deleting loop;
* the new export's folder and the folder of any export still running are never deleted;
* an old folder's `export_info_<folder>.json` is deleted last, once every other key of the
  folder is gone, so a purge that stops half-way still recognises the rest as an export;
* loose keys directly under the prefix and folders that are not exports are left alone and
  reported; `<s3_prefix>/_manifest.json` (the publish step's) is neither deleted nor reported;
* the old export folder that `_manifest.json` names when the run's purge begins is held back
  (`deferred`) until PublishManifest has replaced the manifest: the last pass
  (`phase: previous-export`, the state PurgePreviousExport) deletes it only once the manifest
  names the new export, under every rule above. So the manifest never names a deleted folder.
  A continued execution carries `deferred`, reads the manifest again, and refuses if it names
  another folder by then.

The folder a manifest names is `<s3_prefix>/<export_task_id>/`, the folder a loader reads. No
manifest (the first night), a manifest that names the new export (a rerun), a folder that
holds nothing, is still being written by RDS or is not an export: nothing is held back. A
manifest that cannot be read (access denied) refuses the purge; one that is not a manifest
(not JSON, no valid `export_task_id`) names no folder a loader could read: nothing is held
back, the old exports go as they would without it, a warning says so, and PublishManifest
replaces it.

The plan (verification, RDS's export tasks, the folders to delete) is made once per execution,
on the first call, and carried in the state: the folder names still to delete and the cursor.
A call then deletes page after page until the work is done or its time budget is spent, with
a few DeleteObjects requests in flight; the state machine calls again while `more` is true,
and asks for a new execution (`continue_in_new_execution`) before its history could run out.
With `dry_run` it deletes nothing and reports the keys it would delete (those of the held-back
folder too: a real run deletes them last).

`phase` says what the next call does: `old-exports` (plan, then the old exports but the
held-back one), `previous-export` (the held-back folder, once the manifest names the new
export), `done`.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, catalog, clock, rules, s3layout, settings, status
from rds_s3_export.errors import InvalidInput, PurgeRefused, Throttled
from rds_s3_export.inputs import check_s3_prefix
from rds_s3_export.log import correlated, logger
from rds_s3_export.manifest import MANIFEST_NAME, locate_tables, manifest_key, mismatch_message
from rds_s3_export.rds import export_tasks
from rds_s3_export.steps import shaped

# one listing page, deleted in one request (both capped at 1,000 keys by S3)
PAGE_SIZE = min(rules.S3_LIST_PAGE_MAX_KEYS, rules.S3_DELETE_OBJECTS_MAX_KEYS)
# S3 serves at least 3,500 PUT/COPY/POST/DELETE requests per second per partitioned prefix
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html). Four
# DeleteObjects requests in flight, each taking a good fraction of a second for 1,000 keys,
# stay far below that, and leave the rate to other writers of the bucket.
MAX_IN_FLIGHT = 4
# A call starts a page, or a folder's last two requests (the listing that finds its export_info
# alone, and its deletion), only while more than this is left before the function's timeout:
# two S3 calls at their slowest with the SDK's retries (aws.S3_CALL_WORST_SECONDS; the requests
# in flight run side by side), and time to return the state. A call killed all the same is
# retried by the state machine from the state it was given (see `_start_call`).
TIME_MARGIN_MS = (2 * aws.S3_CALL_WORST_SECONDS + 15) * 1000
# The lists the purge carries in the state are capped in bytes (as JSON), whatever the key
# lengths, far below the state's rules.STATE_MAX_BYTES together.
DRY_RUN_KEYS_BYTES = 64 * 1024
LEFT_ALONE_BYTES = 16 * 1024
FOLDERS_BYTES = 32 * 1024
TODO_BYTES = 32 * 1024  # folder names still to delete; more folders are found by a later plan
# The history's limit is rules.HISTORY_EVENTS_MAX. The estimate of events spent so far is
# deliberately generous: a Task state is 5 events (entered, scheduled, started, succeeded,
# exited), a Choice or Wait 2, and each retry adds 3 more.
EVENTS_BEFORE_PURGE = 60  # ValidateInput ... StartExport, and their occasional retries
EVENTS_PER_POLL = 12  # Wait + DescribeStatus task + Choice, with room for a retry
EVENTS_PER_PURGE_CALL = 12  # PurgePrefix task + IsPurgeDone choice, with room for a retry
# the continuation, or PublishManifest, the last pass's first call, PruneSnapshots, Summarize
# and Succeed (about 25 events) with room for their retries
EVENTS_AFTER_PURGE = 60
# The last pass (one folder, the held-back previous export) never continues in a new
# execution: settings.PURGE_HISTORY_EVENTS_MAX leaves it thousands of events below the quota.
# Past this estimate it stops and leaves the rest of the folder to the next run's purge (the
# manifest no longer names it), with a warning.
PREVIOUS_EXPORT_EVENTS_MAX = rules.HISTORY_EVENTS_MAX - 1_000

PHASE_OLD = "old-exports"  # plan, then delete the old exports but the held-back one
PHASE_PREVIOUS = "previous-export"  # delete the held-back folder: the manifest names the new
PHASE_DONE = "done"

MANIFEST = MANIFEST_NAME  # the publish step's, beside the export folders


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value).encode())


def _cap(items: list[str], limit: int) -> tuple[list[str], int]:
    """The longest head of `items` whose JSON fits `limit` bytes, and how many were left out."""
    used, kept = 2, []
    for item in items:
        used += _json_bytes(item) + 2
        if used > limit:
            break
        kept.append(item)
    return kept, len(items) - len(kept)


# --- verifying the new export ---------------------------------------------------------------


def _get_json(bucket: str, key: str) -> Any:
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if aws.error_code(err) in aws.THROTTLING_CODES:  # transient: the state machine retries
            aws.raise_as(err, PurgeRefused, "s3:GetObject", f"s3://{bucket}/{key}")
        raise PurgeRefused(
            f"cannot read s3://{bucket}/{key} ({aws.describe(err)}): the new export cannot be "
            "verified, nothing was deleted"
        ) from err
    try:
        return json.loads(body)
    except ValueError as err:
        raise PurgeRefused(f"s3://{bucket}/{key} is not valid JSON: nothing was deleted") from err


def table_statuses(tables_info: Any) -> list[dict[str, str]]:
    """`[{table, status, reason}]` from one export_tables_info document."""
    entries = tables_info.get("perTableStatus", []) if isinstance(tables_info, dict) else []
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        out.append(
            {
                "table": str(entry.get("target", entry.get("tableName", "?"))),
                "status": str(entry.get("status", "MISSING")).upper(),
                "reason": str(entry.get("failureCause") or entry.get("warningMessage") or ""),
            }
        )
    return out


def _names(tables: list[dict[str, str]]) -> str:
    return ", ".join(f"{t['table']} ({t['reason'] or 'no reason given'})" for t in tables)


def verify_export(bucket: str, prefix: str, task_id: str, policy: str) -> dict[str, Any]:
    """Check the new export is complete; raise PurgeRefused otherwise. Only what is known to
    be good is admitted: a missing or unknown status refuses like a failed one."""
    where = f"s3://{bucket}/{s3layout.folder_prefix(prefix, task_id)}"
    info = _get_json(bucket, s3layout.export_info_key(prefix, task_id))
    raw = info.get("status") if isinstance(info, dict) else None
    if not isinstance(raw, str) or not raw:
        raise PurgeRefused(f"export_info of {where} has no status: nothing was deleted")
    if raw.upper() != "COMPLETE":
        raise PurgeRefused(f"export_info of {where} says {raw.upper()}: nothing was deleted")
    listing = _export_listing(bucket, prefix, task_id)
    tables_info_prefix = s3layout.tables_info_prefix(prefix, task_id)
    info_files = sorted(key for key, _ in listing if key.startswith(tables_info_prefix))
    if not info_files:
        raise PurgeRefused(f"no export_tables_info file in {where}: nothing was deleted")
    entries: list[Any] = []
    for key in info_files:
        document = _get_json(bucket, key)
        entries += document.get("perTableStatus", []) if isinstance(document, dict) else []
    tables = table_statuses({"perTableStatus": entries})
    skipped = [t for t in tables if t["status"] == "SKIPPED"]
    failed = [t for t in tables if t["status"] == "FAILED"]
    unknown = [t for t in tables if t["status"] not in {"COMPLETE", "SKIPPED", "FAILED"}]
    if failed:
        raise PurgeRefused(
            f"export {where} has failed tables: {_names(failed)}; nothing was deleted"
        )
    if unknown:
        names = ", ".join(f"{t['table']} ({t['status']})" for t in unknown)
        raise PurgeRefused(
            f"export {where} lists tables that are not COMPLETE: {names}; nothing was deleted"
        )
    if skipped and policy != "warn":
        raise PurgeRefused(
            f"export {where} skipped tables: {_names(skipped)}; skipped_tables_policy is "
            f"{policy!r}, nothing was deleted"
        )
    # RDS says COMPLETE: its files must say so too. Every folder of Parquet files belongs to
    # one table, and every COMPLETE table has its files (or RDS shows it empty). Presence is
    # checked here; PublishManifest reads the footers.
    located, problems = locate_tables(
        s3layout.folder_prefix(prefix, task_id),
        [e for e in entries if isinstance(e, dict)],
        listing,
    )
    if problems:
        raise PurgeRefused(f"{mismatch_message(where, problems)}; nothing was deleted")
    return {
        "export_info": s3layout.export_info_key(prefix, task_id),
        "tables": len(tables),
        "tables_complete": sum(1 for t in tables if t["status"] == "COMPLETE"),
        "tables_skipped": [t["table"] for t in skipped],
        "data_files": sum(len(t.files) for t in located),
    }


def _export_listing(bucket: str, prefix: str, task_id: str) -> list[tuple[str, int]]:
    """(key, size) of every object of the new export: read to verify it, never to delete."""
    folder = s3layout.folder_prefix(prefix, task_id)
    found: list[tuple[str, int]] = []
    listing = (
        aws.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(
            Bucket=bucket, Prefix=folder, PaginationConfig={"PageSize": rules.S3_LIST_PAGE_MAX_KEYS}
        )
    )
    try:
        for page in listing:
            found += [(o["Key"], int(o.get("Size", 0))) for o in page.get("Contents", [])]
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{folder}")
    return found


# --- the plan: which folders are old exports ----------------------------------------------


def _rds_folders(
    bucket: str, prefix: str, new_id: str | None, continued: bool
) -> tuple[set[str], set[str]]:
    """(export task ids RDS knows into this bucket+prefix, those of them still running).

    A continued purge (a new execution carrying on an earlier one's purge) also requires RDS to
    know the new export as COMPLETE into this bucket and prefix: its input came from outside."""
    known, running = set(), set()
    new_confirmed = False
    for task in export_tasks(PurgeRefused):
        if task.get("S3Bucket") != bucket:
            continue
        ident = str(task.get("ExportTaskIdentifier"))
        raw = str(task.get("Status", "")).upper()
        if raw in status.EXPORT_RUNNING:
            running.add(ident)  # protected wherever it writes
        if (task.get("S3Prefix") or "").rstrip("/") == prefix:
            known.add(ident)
            new_confirmed = new_confirmed or (ident == new_id and raw in status.EXPORT_DONE)
    if continued and new_id is not None and not new_confirmed:
        raise PurgeRefused(
            f"continued purge: RDS does not report export task {new_id} COMPLETE into "
            f"s3://{bucket}/{prefix}/; nothing was deleted"
        )
    return known, running


def _has_export_info(bucket: str, prefix: str, folder: str) -> bool:
    # listed, not HEAD: without s3:ListBucket a missing key answers 403, like a denied one
    key = s3layout.export_info_key(prefix, folder)
    return aws.object_exists(bucket, key, PurgeRefused, f"is {prefix}/{folder}/ an export?")


def classify_folder(
    folder: str, bucket: str, prefix: str, new_id: str | None, *, known: set[str], running: set[str]
) -> str:
    """`keep-new`, `keep-running`, `not-an-export` or `old-export`."""
    if folder == new_id:
        return "keep-new"
    if folder in running:
        return "keep-running"
    if not s3layout.could_be_export_folder(folder):
        return "not-an-export"
    if folder in known or _has_export_info(bucket, prefix, folder):
        return "old-export"
    return "not-an-export"


# --- the folder the manifest names -----------------------------------------------------------


def manifest_export(bucket: str, prefix: str) -> tuple[str | None, str | None]:
    """(the export task id `<prefix>/_manifest.json` names, or None; a warning, or None).

    No manifest: (None, None). One that is not a manifest (not JSON, not an object, no valid
    `export_task_id`) names no folder a loader could read: (None, warning). A manifest that
    cannot be read refuses: what it names is unknown, so nothing may be deleted."""
    uri = f"s3://{bucket}/{manifest_key(prefix)}"
    # listed first: without s3:ListBucket a missing key answers 403, like a denied one
    if not aws.object_exists(bucket, manifest_key(prefix), PurgeRefused, "the manifest"):
        return None, None
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=manifest_key(prefix))["Body"].read()
    except ClientError as err:
        code = aws.error_code(err)
        if code in aws.S3_MISSING_CODES:  # deleted since it was listed
            return None, None
        if code in aws.THROTTLING_CODES:  # transient: the state machine retries
            aws.raise_as(err, PurgeRefused, "s3:GetObject", uri)
        raise PurgeRefused(
            f"cannot read {uri} ({aws.describe(err)}): the export folder it names cannot be "
            "told apart, nothing was deleted"
        ) from err
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    task_id = document.get("export_task_id") if isinstance(document, dict) else None
    if not isinstance(task_id, str) or not s3layout.could_be_export_folder(task_id):
        return None, (
            f"{uri} is not a manifest this pipeline can read (no valid export_task_id): it "
            "names no folder, none was held back; PublishManifest replaces it"
        )
    return task_id, None


def _holds_keys(bucket: str, prefix: str, folder: str) -> bool:
    where = s3layout.folder_prefix(prefix, folder)
    try:
        page = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=where, MaxKeys=1)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{where}")
    return bool(page.get("Contents"))


def held_back(
    bucket: str, prefix: str, new_id: str | None, *, known: set[str], running: set[str]
) -> tuple[str | None, str | None]:
    """(the old export folder the manifest names, to delete only once the manifest names the
    new export; a warning). None when the manifest names nothing the purge would delete."""
    named, warning = manifest_export(bucket, prefix)
    if named is None or named == new_id:  # no manifest, or a rerun's: nothing to hold back
        return None, warning
    if not _holds_keys(bucket, prefix, named):
        return None, (
            f"s3://{bucket}/{manifest_key(prefix)} names export {named}, but "
            f"s3://{bucket}/{s3layout.folder_prefix(prefix, named)} holds nothing: none was "
            "held back; PublishManifest replaces the manifest"
        )
    verdict = classify_folder(named, bucket, prefix, new_id, known=known, running=running)
    # a running export, or a folder that is not an export, is never deleted anyway
    return (named if verdict == "old-export" else None), None


def catalog_folders(bucket: str, prefix: str) -> tuple[dict[str, list[str]] | None, str | None]:
    """(`{export folder: [Glue tables]}` the pipeline's catalog tables point at, a warning).

    Without a catalog (no GLUE_DATABASE): nothing. A catalog that cannot be read: (None, a
    warning), and the purge keeps every old export this run: a table may point at any of them
    (UpdateCatalog failed on an earlier night), and a query must never meet a deleted folder."""
    database = settings.glue_database()
    if not database:
        return {}, None
    try:
        tables = aws.glue_tables(database)
    except ClientError as err:
        if aws.error_code(err) in aws.THROTTLING_CODES:  # the state machine retries
            aws.raise_as(err, PurgeRefused, "glue:GetTables", f"Glue database {database}")
        return None, (
            f"glue:GetTables on {database} failed ({aws.describe(err)}): the folders its tables "
            "point at are unknown, so no old export was deleted this run"
        )
    return catalog.folders_named(tables, bucket, prefix, settings.catalog_owner()), None


def _top_level(bucket: str, prefix: str, after: str) -> Iterator[tuple[str, str]]:
    """`("folder", name)` and `("key", leaf)` directly below `<prefix>/`, in key order, after
    the folder `after`: one delimited listing, which never lists inside a folder."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{prefix}/", "Delimiter": "/"}
    if after:
        # `0` follows `/` in byte order: past every key of that folder, before the next one
        params["StartAfter"] = f"{prefix}/{after}0"
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(**params):
            entries = [("folder", p["Prefix"]) for p in page.get("CommonPrefixes", [])]
            entries += [("key", o["Key"]) for o in page.get("Contents", [])]
            for kind, full in sorted(entries, key=lambda e: e[1]):
                rest = full[len(prefix) + 1 :]
                yield kind, rest.rstrip("/") if kind == "folder" else rest
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{prefix}/")


def make_plan(
    bucket: str, prefix: str, new_id: str | None, state: dict[str, Any], continued: bool
) -> None:
    """Find the old export folders (up to TODO_BYTES of names) and what is left alone; on an
    execution's first plan, the folder the manifest names, which is held back (`deferred`)."""
    known, running = _rds_folders(bucket, prefix, new_id, continued)
    if not state.get("planned"):  # each execution's first plan; a continued one carries it
        named, warning = held_back(bucket, prefix, new_id, known=known, running=running)
        carried = state.get("deferred")
        if carried and named and carried != named:
            raise PurgeRefused(
                f"s3://{bucket}/{manifest_key(prefix)} names export {named} now, {carried} when "
                "this run's purge began: something else writes this prefix; nothing more was "
                "deleted"
            )
        state["deferred"] = carried or named
        if warning:
            state["warnings"] = list(dict.fromkeys([*state.get("warnings", []), warning]))
    # a dry run lists the held-back folder's keys too: a real run deletes them, last
    hold = state["deferred"] if new_id is not None else None
    named_by_catalog, catalog_warning = catalog_folders(bucket, prefix)
    kept_for_catalog: list[str] = []
    todo: list[str] = []
    left_alone = list(state.get("left_alone", []))
    kept_running = set(state.get("kept_running", []))
    used, after, more_folders = 2, str(state.get("folders_after", "")), False
    for kind, name in _top_level(bucket, prefix, after):
        if kind == "key":
            if name and name != MANIFEST:
                left_alone.append(name)
            continue
        if not name:  # a key such as `<prefix>//x`: no folder name, not an export
            left_alone.append("/")
            continue
        if name == hold:  # deleted by the last pass, once the manifest names the new export
            continue
        verdict = classify_folder(name, bucket, prefix, new_id, known=known, running=running)
        if verdict == "keep-running":
            kept_running.add(name)
        elif verdict == "not-an-export":
            left_alone.append(f"{name}/")
        elif verdict == "old-export" and (named_by_catalog is None or name in named_by_catalog):
            kept_for_catalog.append(name)  # a Glue table may point at it: a later run's
        elif verdict == "old-export":
            used += _json_bytes(name) + 2
            if used > TODO_BYTES:
                more_folders = True
                break
            todo.append(name)
            after = name
    if kept_for_catalog:
        kept_shown, kept_hidden = _cap(kept_for_catalog, LEFT_ALONE_BYTES)
        more = f" and {kept_hidden} more" if kept_hidden else ""
        catalog_warning = catalog_warning or (
            f"old export(s) {', '.join(kept_shown)}{more} kept: tables of the Glue catalog "
            f"{settings.glue_database()} still point at them (UpdateCatalog failed on "
            "an earlier run); they go once the catalog points at a newer export"
        )
    if catalog_warning:
        state["warnings"] = list(dict.fromkeys([*state.get("warnings", []), catalog_warning]))
    shown, hidden = _cap(sorted(set(left_alone)), LEFT_ALONE_BYTES)
    state.update(
        planned=True,
        todo=todo,
        folders_after=after if more_folders else "",
        more_folders=more_folders,
        cursor="",
        left_alone=shown,
        left_alone_not_shown=int(state.get("left_alone_not_shown", 0)) + hidden,
        kept_running=sorted(kept_running),
    )


# --- deleting -------------------------------------------------------------------------------


class _SlowDown(Exception):
    """S3 asked this request to slow down (its keys were not deleted)."""

    def __init__(self, err: ClientError) -> None:
        super().__init__(aws.describe(err))
        self.err = err


def _delete_request(bucket: str, keys: list[str]) -> list[str]:
    """One DeleteObjects request of old keys; the keys S3 reports deleted."""
    try:
        return aws.delete_objects(
            bucket,
            keys,
            PurgeRefused,
            "The new export is complete and untouched; delete the rest by hand or re-run.",
        )
    except ClientError as err:  # throttled: the call ends early, its cursor kept
        raise _SlowDown(err) from err


class _Deleter:
    """At most MAX_IN_FLIGHT DeleteObjects requests at a time; counts what S3 deleted."""

    def __init__(self, bucket: str, pool: ThreadPoolExecutor) -> None:
        self.bucket, self.pool = bucket, pool
        self.in_flight: list[Future[list[str]]] = []
        self.deleted = 0
        self.requests = 0
        self.slowed: _SlowDown | None = None

    def submit(self, keys: list[str]) -> None:
        while len(self.in_flight) >= MAX_IN_FLIGHT:
            self._collect(FIRST_COMPLETED)
        # the worker runs in the caller's context (logging and tracing context go with it)
        run = contextvars.copy_context().run
        self.in_flight.append(self.pool.submit(run, _delete_request, self.bucket, keys))

    def drain(self) -> None:
        while self.in_flight:
            self._collect(FIRST_COMPLETED)

    def _collect(self, how: str) -> None:
        done, _ = wait(self.in_flight, return_when=how)
        self.in_flight = [f for f in self.in_flight if f not in done]
        for future in done:
            try:
                keys = future.result()
            except _SlowDown as slow:
                self.slowed = self.slowed or slow
                continue
            self.requests += 1 if keys else 0
            self.deleted += len(keys)


class _DryRunReport:
    """The keys a dry run would delete: all counted, listed up to DRY_RUN_KEYS_BYTES."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.shown: list[str] = list(state.get("would_delete_keys", []))
        self.bytes = _json_bytes(self.shown)
        self.left_out = int(state.get("would_delete_keys_left_out", 0))
        self.count = int(state.get("would_delete_count", 0))

    def note(self, keys: list[str]) -> None:
        self.count += len(keys)
        for key in keys:
            size = _json_bytes(key) + 2
            if self.bytes + size > DRY_RUN_KEYS_BYTES:
                self.left_out += 1
            else:
                self.shown.append(key)
                self.bytes += size

    def save(self, state: dict[str, Any]) -> None:
        state.update(
            would_delete_keys=self.shown,
            would_delete_keys_left_out=self.left_out,
            would_delete_keys_truncated=self.left_out > 0,
            would_delete_count=self.count,
        )


def _list_folder_page(bucket: str, prefix: str, folder: str, cursor: str) -> tuple[list[str], bool]:
    folder_prefix = s3layout.folder_prefix(prefix, folder)
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": folder_prefix, "MaxKeys": PAGE_SIZE}
    if cursor:
        params["StartAfter"] = cursor
    try:
        page = aws.client("s3").list_objects_v2(**params)
    except ClientError as err:
        aws.raise_as(err, PurgeRefused, "s3:ListObjectsV2", f"s3://{bucket}/{folder_prefix}")
    keys = [o["Key"] for o in page.get("Contents", []) if o["Key"].startswith(folder_prefix)]
    return keys, bool(page.get("IsTruncated")) and bool(keys)


def _work(
    bucket: str,
    prefix: str,
    state: dict[str, Any],
    dry_run: bool,
    time_left: Callable[[], int],
) -> tuple[int, int, _SlowDown | None]:
    """Delete (or, in a dry run, note) page after page of the planned folders until they are
    done or the time budget is spent. (objects deleted, requests that deleted, slow-down)."""
    todo: list[str] = list(state["todo"])
    cursor = str(state.get("cursor", ""))
    report = _DryRunReport(state)
    pages_done = 0
    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT) as pool:
        deleter = _Deleter(bucket, pool)
        while todo and deleter.slowed is None:
            if pages_done and time_left() < TIME_MARGIN_MS:
                break  # at least one page a call, then only while time is left
            folder = todo[0]
            marker = s3layout.export_info_key(prefix, folder)
            keys, more = _list_folder_page(bucket, prefix, folder, cursor)
            pages_done += 1
            if dry_run:
                report.note(keys)
            else:
                batch = [k for k in keys if k != marker]
                if batch:
                    deleter.submit(batch)
            if more:
                cursor = keys[-1]
                continue
            if not dry_run:
                # The folder's last page. Once the deletions in flight are done, list it once
                # more from its start: what is left should be its export_info alone, deleted
                # now, last. Keys that appeared meanwhile send the loop round the folder again.
                deleter.drain()
                short = pages_done > 1 and time_left() < TIME_MARGIN_MS  # progress: a page
                if deleter.slowed is not None or short:
                    cursor = ""  # the next call lists what is left of the folder
                    break
                rest, rest_more = _list_folder_page(bucket, prefix, folder, "")
                if rest_more or any(k != marker for k in rest):
                    cursor = ""
                    continue
                if rest:
                    deleter.submit(rest)
                    deleter.drain()
                    if deleter.slowed is not None:
                        break
            state["folders"] = [*state.get("folders", []), f"{prefix}/{folder}/"]
            todo.pop(0)
            cursor = ""
        deleter.drain()
    if deleter.slowed is not None:  # the folder is listed again from its start
        cursor = ""
    state.update(todo=todo, cursor=cursor)
    if dry_run:
        report.save(state)
    return deleter.deleted, deleter.requests, deleter.slowed


def _history_events(event: dict[str, Any], calls: int) -> int:
    """A generous estimate of this execution's history events after `calls` purge calls."""
    polls = 0
    # a continued execution did not poll: the polls it carries were the previous one's
    continued = int((event.get("purge") or {}).get("continuations", 0)) > 0
    for piece in () if continued else ("source", "export"):
        found = (event.get(piece) or {}).get("status", {}).get("polls", 0)
        polls += found if isinstance(found, int) else 0
    return (
        EVENTS_BEFORE_PURGE
        + EVENTS_PER_POLL * polls
        + EVENTS_PER_PURGE_CALL * calls
        + EVENTS_AFTER_PURGE
    )


def next_execution_name(event: dict[str, Any]) -> str:
    """The name of the execution that continues this run's purge: the same on a retry of
    ContinuePurgeInNewExecution (StartExecution is then idempotent), unique per run and
    continuation, within the 80 characters an execution name may have."""
    origin = str((event.get("plan") or {}).get("execution_id", ""))
    digest = hashlib.sha256(origin.encode()).hexdigest()[:32]
    return f"purge-{digest}-{int(event['purge'].get('continuations', 0)) + 1}"


def _previous_export(bucket: str, prefix: str, new_id: str, state: dict[str, Any]) -> None:
    """Set up a call of the last pass: the manifest must name the new export by now, and the
    held-back folder is checked again under the purge's rules before any key of it goes."""
    folder = state.get("deferred")
    where = f"s3://{bucket}/{prefix}/{folder}/"
    named, _ = manifest_export(bucket, prefix)
    if named != new_id:
        raise PurgeRefused(
            f"s3://{bucket}/{manifest_key(prefix)} names {named or 'no export'}, not this "
            f"run's export {new_id}: the previous export {where} is kept"
        )
    state["todo"] = []
    if not isinstance(folder, str) or not s3layout.could_be_export_folder(folder):
        return
    if folder == new_id or not _holds_keys(bucket, prefix, folder):
        return  # nothing of it left (a repeated last call)
    known, running = _rds_folders(bucket, prefix, new_id, continued=False)
    verdict = classify_folder(folder, bucket, prefix, new_id, known=known, running=running)
    if verdict != "old-export":  # not deleted, under the rule every folder is held to
        state["warnings"] = [*state.get("warnings", []), f"previous export {where} kept: {verdict}"]
        return
    state["todo"] = [folder]


def _start_call(event: dict[str, Any], state: dict[str, Any]) -> None:
    """Note when the purge began (its first call), and whether this call is a retry.

    A call retried by the state machine (`attempt` > 0, $$.State.RetryCount) follows an
    attempt that returned nothing (its answer lost, or the function killed): that attempt may
    have deleted objects, and whole folders, that no state records. From then on the counts are
    lower bounds, and say so."""
    if not state.get("started_at"):
        state["started_at"] = clock.isoformat(clock.now())
    if int(event.get("attempt") or 0) > 0 and not state.get("counts_are_lower_bounds"):
        state["counts_are_lower_bounds"] = True
        logger.warning("purge call retried: the counts from here on are lower bounds")


def purge_page(event: dict[str, Any], time_left: Callable[[], int] | None = None) -> dict[str, Any]:
    """One call of the purge loop: plan on the first call, then delete while time is left; in
    the last pass (`phase: previous-export`), the held-back folder."""
    config, state = event["config"], dict(event["purge"])
    dry_run = bool(config.get("dry_run"))
    try:
        prefix = check_s3_prefix("s3_prefix", config.get("s3_prefix"))
    except InvalidInput as err:
        raise PurgeRefused(f"refusing to purge: {err}") from err
    bucket = settings.export_bucket()
    new_id = None if dry_run else event["export"]["export_task_id"]
    continued = int(state.get("continuations", 0)) > 0
    last_pass = state.get("phase") == PHASE_PREVIOUS
    _start_call(event, state)
    if last_pass:
        if new_id is None:  # never reached from the state machine; a guard
            raise PurgeRefused("a dry run has no last pass: nothing was deleted")
        _previous_export(bucket, prefix, new_id, state)
    elif not state.get("planned"):
        if new_id is not None:
            state["verification"] = verify_export(
                bucket, prefix, new_id, config["skipped_tables_policy"]
            )
            skipped = [
                f"table skipped by RDS: {t}" for t in state["verification"]["tables_skipped"]
            ]
            # a continued purge verifies again: its carried warnings stay, each once
            state["warnings"] = list(dict.fromkeys([*state.get("warnings", []), *skipped]))
        make_plan(bucket, prefix, new_id, state, continued)
    elif not state.get("todo") and state.get("more_folders"):
        make_plan(bucket, prefix, new_id, state, continued)  # more folders than one plan holds

    try:
        deleted, requests, slowed = _work(
            bucket, prefix, state, dry_run, time_left or (lambda: 2**31)
        )
    except PurgeRefused as err:
        if not last_pass:
            raise
        raise PurgeRefused(
            f"{err} (the manifest already names the new export {new_id}; the next run "
            "deletes what is left of the previous export)"
        ) from err
    if slowed is not None and deleted == 0:
        # nothing done in this call: the state machine backs off and calls again, same state
        raise Throttled(
            f"s3:DeleteObjects on s3://{bucket}/{prefix}/ failed: {slowed}"
        ) from slowed.err
    calls = int(state.get("calls", 0)) + 1
    more = bool(state["todo"]) or bool(state.get("more_folders"))
    if last_pass and more and _history_events(event, calls + 1) > PREVIOUS_EXPORT_EVENTS_MAX:
        state["warnings"] = [
            *state.get("warnings", []),
            f"previous export s3://{bucket}/{prefix}/{state['todo'][0]}/ only partly deleted: "
            "this execution's history is nearly spent; the next run deletes the rest (the "
            "manifest no longer names it)",
        ]
        state["todo"], state["cursor"], more = [], "", False
    if last_pass:
        phase = PHASE_PREVIOUS if more else PHASE_DONE
    elif more:
        phase = PHASE_OLD
    else:  # the held-back folder waits for PublishManifest; a dry run ends here
        phase = PHASE_PREVIOUS if state.get("deferred") and not dry_run else PHASE_DONE
    folders, folders_hidden = _cap(state.get("folders", []), FOLDERS_BYTES)
    budget = settings.purge_history_events_max()
    state.update(
        phase=phase,
        calls=calls,
        more=more,
        pages=int(state.get("pages", 0)) + requests,
        objects_deleted=int(state.get("objects_deleted", 0)) + deleted,
        folders=folders,
        folders_not_shown=int(state.get("folders_not_shown", 0)) + folders_hidden,
        throttled=slowed is not None,
        counts_are_lower_bounds=bool(state.get("counts_are_lower_bounds")),
        continue_in_new_execution=(
            phase == PHASE_OLD and not dry_run and _history_events(event, calls + 1) > budget
        ),
        elapsed_seconds=clock.seconds_between(state["started_at"], clock.now()),
    )
    if state["continue_in_new_execution"]:
        state["next_execution_name"] = next_execution_name(event)
    logger.info(
        "purge call",
        extra={
            "call": calls,
            "phase": phase,
            "deleted": deleted,
            "requests": requests,
            "dry_run": dry_run,
            "more": more,
            "throttled": slowed is not None,
        },
    )
    return state


# `$.purge`: the purge loop's whole state, carried from call to call (and into a continuing
# execution). Each call sets every field; the defaults fill those only some runs have.
RESULT_FIELDS = (
    # the loop: what is left to do and where the listing stands
    "phase",
    "deferred",
    "planned",
    "todo",
    "cursor",
    "folders_after",
    "more_folders",
    "more",
    "calls",
    "continuations",
    "continue_in_new_execution",
    "next_execution_name",
    "started_at",
    "elapsed_seconds",
    "throttled",
    # the report
    "verification",
    "pages",
    "objects_deleted",
    "folders",
    "folders_not_shown",
    "left_alone",
    "left_alone_not_shown",
    "kept_running",
    "warnings",
    # true once a call was retried after an attempt that returned nothing: objects_deleted,
    # pages and folders then count at least what was deleted, maybe less than all of it
    "counts_are_lower_bounds",
    # a dry run's preview
    "would_delete_count",
    "would_delete_keys",
    "would_delete_keys_left_out",
    "would_delete_keys_truncated",
)
RESULT_DEFAULTS: dict[str, Any] = {
    "verification": None,  # a dry run verifies no export
    "next_execution_name": "",  # set when the purge goes on in a new execution
    "would_delete_count": 0,  # the preview is a dry run's only
    "would_delete_keys": [],
    "would_delete_keys_left_out": 0,
    "would_delete_keys_truncated": False,
}


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time_left = getattr(context, "get_remaining_time_in_millis", None)
    return shaped(purge_page(event, time_left), RESULT_FIELDS, RESULT_DEFAULTS)
