"""`make demo`: the whole pipeline, three nights in a row, on the local sandbox.

1. the first run exports the database into an empty prefix;
2. the second run exports again and purges the first run's export;
3. the third run's export fails (injected): the run ends ExportFailed, and the second run's
   export is still complete in the bucket.

The nights are three consecutive days at 21:00 UTC (the stack's default schedule), so the
snapshot and export names carry a real week's dates. Each successful night ends as downstream
would: the ``_manifest.json`` the pipeline wrote reaches a local fakesnow database (the
bucket's prefix is mirrored into a ``file://`` stage), where the script ``python -m
snowflake_sql`` prints was run top to bottom on night 1, and the load procedure is called as
the manifest-triggered task would call it. The row counts per table are printed (they stay the
same night after night: each load replaces). On night 2 the first call meets a damaged file
(injected): it fails, every table keeps night 1's rows, the control table says FAILED, and the
next call loads night 2.

Every state is printed as it runs, with its outcome, real time and, for the polling loops,
what RDS said and how long the state machine waits before the next look (simulated time).
No AWS account or credentials are used: moto is the AWS here.

``--cross-account`` (issue 19) runs the same nights with the bucket, the export KMS key and
Snowflake's read-only role in a second moto account (the data platform's, DEMO_DATA_ACCOUNT;
the database and the pipeline in DEMO_PIPELINE_ACCOUNT),
prints the cross-account ARNs, and after each successful night reads ``_manifest.json`` and
every file it lists as Snowflake's role of the data account (the stage is mirrored as that
role too).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox import accounts, fixture_db
from sandbox.export_files import table_target
from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import ACCOUNT, RunResult, Sandbox, StateRecord
from snowflake_sql.__main__ import default_options
from snowflake_sql.generate import CONTROL_TABLE, render
from snowflake_sql.local import LocalSnowflake, connect, copy_prefix
from snowflake_sql.procedure import quote, table_name

# A 20-minute snapshot and a 50-minute export (10 starting + 40 writing), replayed in seconds.
DEMO_TIMING = Timing(
    snapshot_seconds=20 * 60, export_starting_seconds=10 * 60, export_running_seconds=40 * 60
)
PREFIX = "exports/mydb"
DEMO_DATABASE = fixture_db.POSTGRES
"""The demo exports the PostgreSQL fixture database (``--mysql``: the MySQL one): every row of
AWS's conversion table for its engine, awkward names (a space, a quote, a backslash, a
backtick), a table over three batch folders, an empty table and a table RDS skips (a space in a
column name)."""


def source_rows(database: fixture_db.FixtureDatabase) -> dict[str, int]:
    """Rows of each table of the source, by the ``target`` export_tables_info gives it."""
    return {table_target(database.engine, t): len(t.rows) for t in database.tables}


FIRST_NIGHT = datetime(2025, 3, 3, 21, 0, tzinfo=UTC)  # a Monday, at the default schedule
# --cross-account: the database's account and the data platform's
DEMO_PIPELINE_ACCOUNT = "111111111111"
DEMO_DATA_ACCOUNT = "222222222222"


def fmt_time(sb: Sandbox) -> str:
    return sb.clock.now().strftime("%a %Y-%m-%d %H:%M UTC")


def fmt_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _state_output(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("stateExitedEventDetails", {}).get("output")
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def describe_state(record: StateRecord, event: dict[str, Any]) -> str:
    """One line for a state that just ended."""
    out = _state_output(event)
    detail = ""
    if record.name in {"DescribeSnapshotStatus", "DescribeExportStatus"}:
        status = (
            out.get("source") if record.name == "DescribeSnapshotStatus" else out.get("export")
        ) or {}
        st = status.get("status", {})
        progress = st.get("progress")
        detail = (
            f"poll {st.get('polls')}: {st.get('raw_status')}"
            + (f" {progress}%" if progress is not None else "")
            + (
                f", next look in {fmt_seconds(st['wait_seconds'])}"
                if st.get("state") == "pending"
                else ""
            )
        )
    elif record.name == "CreateSnapshot":
        src = out.get("source", {})
        verb = "adopted" if src.get("adopted") else ("created" if src.get("created") else "using")
        detail = f"{verb} {src.get('snapshot_id')}"
    elif record.name == "StartExport":
        detail = f"export task {out.get('export', {}).get('export_task_id')}"
    elif record.name in {"PurgePrefix", "PurgePreviousExport"}:
        purge = out.get("purge", {})
        held = purge.get("phase") == "previous-export" and record.name == "PurgePrefix"
        detail = (
            f"page {purge.get('pages')}: {purge.get('objects_deleted')} old object(s) deleted"
            + (", more to go" if purge.get("more") else "")
            + (f"; {purge.get('deferred')} (the manifest's) waits for the new one" if held else "")
        )
    elif record.name == "DiscardFailedExport":
        discard = out.get("discard", {})
        detail = f"removed {discard.get('objects_deleted')} partial object(s) of the failed export"
    elif record.name == "PublishManifest":
        manifest = out.get("manifest", {})
        detail = f"{manifest.get('uri')} ({manifest.get('tables')} tables), event sent"
    elif record.name == "PruneSnapshots":
        prune = out.get("prune", {})
        detail = f"pruned {prune.get('deleted') or 'none'}; kept {len(prune.get('kept', []))}"
    elif record.type == "Wait":
        return ""  # the Check line after it says how long the wait was
    elif record.type in {"Choice", "Pass"} and record.outcome == "ok":
        return ""
    return f"    {record.name:<19} {record.outcome:<20} {record.real_ms:6.0f} ms  {detail}".rstrip()


def print_state(record: StateRecord, event: dict[str, Any]) -> None:
    line = describe_state(record, event)
    if line:
        print(line, flush=True)


def print_result(result: RunResult) -> None:
    print(f"  => {result.status}", end="")
    if result.status == "SUCCEEDED" and result.output:
        out = result.output
        phases = ", ".join(f"{k} {fmt_seconds(v)}" for k, v in out["phases_seconds"].items())
        print(f"  ({phases}; {fmt_seconds(result.simulated_seconds)} simulated in total)")
        print(f"     new export: {out['export']['s3_uri']}")
        purged = out["purge"]
        least = "at least " if purged.get("counts_are_lower_bounds") else ""
        print(
            f"     purged: {least}{purged['objects_deleted']} object(s) in "
            f"{purged['folders'] or '-'}"
        )
    else:
        print(f"  {result.error}")
        print(f"     cause: {result.cause}")


class SnowflakeSide:
    """fakesnow standing in for Snowflake: the stage mirrors the bucket's prefix."""

    def __init__(self, cursor: Any, work: Path, database: fixture_db.FixtureDatabase) -> None:
        self.cursor = cursor
        self.source = source_rows(database)
        self.root = work / "stage"
        self.snow: LocalSnowflake | None = None
        self.where = ""

    def mirror(self, sb: Sandbox) -> dict[str, Any]:
        """The stage's view of the bucket now; the manifest it holds."""
        shutil.rmtree(self.root, ignore_errors=True)
        # across accounts Snowflake reads as its role in the data account
        s3 = sb.client("s3") if sb.data_account_id is None else sb.snowflake_client("s3")
        copy_prefix(s3, sb.settings.bucket, PREFIX, self.root)
        manifest = json.loads((self.root / "_manifest.json").read_text())
        return dict(manifest)

    def _snow(self) -> LocalSnowflake:
        if self.snow is None:
            raise RuntimeError("the Snowflake script has not run yet")
        return self.snow

    def counts(self) -> dict[str, int]:
        snow = self._snow()
        database, schema = self.where.split(".")
        # the names are the generator's own defaults, not outside input
        listing = (
            f"SELECT TABLE_NAME FROM {database}.INFORMATION_SCHEMA.TABLES "  # noqa: S608  # nosec B608
            f"WHERE TABLE_SCHEMA = '{schema.strip(chr(34))}' ORDER BY TABLE_NAME"
        )
        tables = snow.rows(listing)
        return {
            name: int(snow.one(f"SELECT COUNT(*) FROM {self.where}.{quote(name)}"))  # noqa: S608  # nosec B608
            for (name,) in tables
            if not name.startswith("_RDS_")
        }

    def control(self) -> list[tuple[Any, ...]]:
        table = f'{self.where}."{CONTROL_TABLE}"'
        return self._snow().rows(
            f"SELECT EXPORT_TASK_ID, STATUS, REASON FROM {table} ORDER BY RECORDED_AT"  # noqa: S608  # nosec B608
        )

    def load(self, sb: Sandbox, damage: bool = False) -> dict[str, int]:
        """The manifest PublishManifest just wrote starts the load; row counts per table."""
        manifest = self.mirror(sb)
        task = manifest["export_task_id"]
        print(f"   _manifest.json now names {task}: the stage's directory table sees it, the")
        print("   stream has data, the triggered task runs CALL <pipeline>_LOAD()")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if self.snow is None:
                options = default_options(manifest)
                self.where = f'"{options["database"]}"."{options["schema"]}"'
                self.snow = LocalSnowflake(self.cursor, self.root)
                self.snow.run_script(render(manifest, **options))  # ends with the first CALL
                report = self.snow.first_load or ""
            else:
                if damage:
                    before = self.counts()
                    victim = next(self.root.joinpath(task).rglob("*.parquet"))
                    victim.write_bytes(b"damaged")
                    failed = ""
                    try:
                        self.snow.call()
                    except Exception as error:
                        failed = f"{type(error).__name__}: {str(error).splitlines()[0][:90]}"
                    unchanged = self.counts() == before
                    recorded = self.control()[-1][:2]
                    self.mirror(sb)  # the next notification: the bucket's files again
                report = self.snow.call()
        if damage:
            print(f"   first call, one file damaged (injected): {failed or 'DID NOT FAIL'}")
            print(
                "   tables after the failed call: "
                + ("unchanged (night 1's rows)" if unchanged else "CHANGED")
                + f"; control table: {recorded}"
            )
            print("   the next call (the next trigger) loads:")
            self.damaged_ok = bool(failed) and unchanged and recorded[1] == "FAILED"
        print(f"   {report}")
        counts = self.counts()
        targets = {table_name(t["target"]): t["target"] for t in manifest["tables"]}
        for table, rows in counts.items():
            expected = self.source.get(targets.get(table, ""))
            verdict = "" if rows == expected else f"  MISSING: the source has {expected}"
            print(f"     {table:<28} {rows} rows{verdict}")
        return counts


def rows_lost(
    counts: dict[str, int], manifest: dict[str, Any] | None, database: fixture_db.FixtureDatabase
) -> list[str]:
    """Loaded tables whose row count differs from the fixture database's."""
    source = source_rows(database)
    by_name = {table_name(t["target"]): t["target"] for t in (manifest or {}).get("tables", [])}
    return [name for name, n in counts.items() if n != source.get(by_name.get(name, ""))]


def next_night(sb: Sandbox, night: int) -> None:
    """Move the simulated clock to 21:00 UTC of the night's day."""
    target = FIRST_NIGHT + timedelta(days=night - 1)
    sb.clock.advance(max(0.0, (target - sb.clock.now()).total_seconds()))


def run(sb: Sandbox, title: str, execution_input: dict[str, Any], name: str) -> RunResult:
    print(f"\n== {title}  [{fmt_time(sb)}]")
    print(f"   start-execution --name {name} --input '{json.dumps(execution_input)}'")
    t0 = time.monotonic()
    result = sb.run(execution_input, name=name, on_state=print_state)
    print_result(result)
    print(f"     ({time.monotonic() - t0:.1f} s real)")
    print("   bucket now:")
    for line in sb.tree(PREFIX).splitlines():
        print(f"     {line}")
    return result


def print_accounts(sb: Sandbox) -> None:
    """Where each resource is, by ARN: the pipeline's account and the data account."""
    print(f"pipeline account {sb.account} (the database's): RDS, functions, state machine, roles")
    print(f"  export role      {sb.role_arn}")
    print(f"  StartExport role {sb.function_role_arns['start_export']}")
    print(f"  state machine    {sb.state_machine_arn}")
    print(f"data account {sb.data_account_id} (the data platform's): bucket, key, Snowflake role")
    listed = {b["Name"] for b in sb.data_client("s3").list_buckets()["Buckets"]}
    where = "listed by" if sb.settings.bucket in listed else "NOT listed by"
    print(f"  bucket           arn:aws:s3:::{sb.settings.bucket} ({where} its ListBuckets)")
    print(f"  export key       {sb.key_arn}")
    print(f"  Snowflake role   {sb.snowflake_role_arn}")


def read_as_snowflake(sb: Sandbox) -> bool:
    """Snowflake's role in the data account reads the manifest and every file it lists."""
    try:
        read = accounts.read_published_export(sb.snowflake_client, sb.settings.bucket, PREFIX)
    except (accounts.ReadRefused, sb.snowflake_client("s3").exceptions.ClientError) as error:
        print(f"   Snowflake's role could NOT read the export: {error}")
        return False
    keys = ", ".join(sorted(read.key_arns))
    print(
        f"   as {sb.snowflake_role_arn}: read _manifest.json and its {read.files} file(s) of "
        f"{read.export_task_id} ({read.bytes} bytes, {sum(read.rows.values())} rows, as the "
        f"manifest says), SSE-KMS under {keys}"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    database = fixture_db.MYSQL if "--mysql" in args else DEMO_DATABASE
    data_account = DEMO_DATA_ACCOUNT if "--cross-account" in args else None
    account = DEMO_PIPELINE_ACCOUNT if data_account else ACCOUNT
    t0 = time.monotonic()
    print("rds-s3-export local demo: the real ASL file and handlers on moto (no AWS account)")
    with (
        Sandbox(
            timing=DEMO_TIMING,
            start=FIRST_NIGHT,
            data_account_id=data_account,
            pipeline_account_id=account,
        ) as sb,
        tempfile.TemporaryDirectory(prefix="rds-s3-export-demo-") as tmp,
        connect() as cursor,
    ):
        sb.add_instance("mydb")
        sb.rds.database = database
        export_minutes = DEMO_TIMING.export_starting_seconds + DEMO_TIMING.export_running_seconds
        print(
            f"database mydb ({database.engine}, the fixture {database.name!r}: "
            f"{len(database.tables)} tables, {database.row_count} rows exported), "
            f"bucket {sb.settings.bucket}, prefix {PREFIX}/; "
            f"simulated snapshot {fmt_seconds(DEMO_TIMING.snapshot_seconds)}, "
            f"export {fmt_seconds(export_minutes)}"
        )
        if data_account is not None:
            print_accounts(sb)
        snowflake = SnowflakeSide(cursor, Path(tmp), database)
        read_ok = True
        first = run(sb, "Night 1: first export into an empty prefix", {}, "night-1")
        if data_account is not None and first.status == "SUCCEEDED":
            read_ok = read_as_snowflake(sb) and read_ok
        counts_1 = snowflake.load(sb) if first.status == "SUCCEEDED" else {}
        next_night(sb, 2)
        second = run(sb, "Night 2: export again, then purge night 1's export", {}, "night-2")
        if data_account is not None and second.status == "SUCCEEDED":
            read_ok = read_as_snowflake(sb) and read_ok
        counts_2 = snowflake.load(sb, damage=True) if second.status == "SUCCEEDED" else {}
        next_night(sb, 3)
        sb.rds.next_export(
            ExportOutcome(
                status="FAILED",
                failure_cause="The IAM role does not have permission to write to the bucket "
                "(injected by the demo)",
            )
        )
        before = (
            sb.listing(f"{PREFIX}/{second.output['export']['task_id']}/") if second.output else {}
        )
        manifest_before = sb.manifest(PREFIX)
        events_before = len(sb.ready_events())
        third = run(
            sb, "Night 3: the export fails (injected); night 2's export must survive", {}, "night-3"
        )
        after = sb.listing(PREFIX)
        intact = bool(before) and all(after.get(key) == etag for key, etag in before.items())
        told = (
            sb.manifest(PREFIX) == manifest_before and len(sb.ready_events()) == events_before == 2
        )
        same_counts = bool(counts_1) and counts_1 == counts_2
        lost = rows_lost(counts_2, sb.manifest(PREFIX), database)
        ok = (
            first.status == "SUCCEEDED"
            and second.status == "SUCCEEDED"
            and third.status == "FAILED"
            and third.error == "ExportFailed"
            and intact
            and told
            and same_counts
            and getattr(snowflake, "damaged_ok", False)
            and not lost
            and read_ok
        )
        verdict = "complete and byte-for-byte unchanged" if intact else "MISSING OR CHANGED"
        print(f"\nnight 2's export after night 3: {verdict} ({len(before)} objects, by ETag)")
        print(
            "manifest after night 3: "
            + ("still names night 2's export; no event sent" if told else "CHANGED")
        )
        print(
            "row counts in fakesnow, night 1 vs night 2: "
            + ("the same" if same_counts else f"DIFFERENT {counts_1} {counts_2}")
        )
        print(
            "row counts against the fixture database: "
            + (f"DIFFERENT in {', '.join(lost)}" if lost else "every table complete")
        )
    print(f"demo {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s real time")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
