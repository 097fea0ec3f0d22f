"""`make demo`: the whole pipeline, three nights in a row, on the local sandbox.

1. the first run exports the database into an empty prefix;
2. the second run exports again and purges the first run's export;
3. the third run's export fails (injected): the run ends ExportFailed, and the second run's
   export is still complete in the bucket.

The nights are three consecutive days at 21:00 UTC (the stack's default schedule), so the
snapshot and export names carry a real week's dates. Each successful night ends as downstream
would: the newest export, named by the ``_manifest.json`` the pipeline wrote, is loaded into a
local fakesnow database with the SQL ``python -m snowflake_sql`` generates, and the row counts
per table are printed (they stay the same night after night: each load replaces).

Every state is printed as it runs, with its outcome, real time and, for the polling loops,
what RDS said and how long the state machine waits before the next look (simulated time).
No AWS account or credentials are used: moto is the AWS here.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import RunResult, Sandbox, StateRecord
from snowflake_sql.__main__ import default_options
from snowflake_sql.generate import render_sections, tables_of
from snowflake_sql.local import LocalSnowflake, connect, copy_prefix

# A 20-minute snapshot and a 50-minute export (10 starting + 40 writing), replayed in seconds.
DEMO_TIMING = Timing(
    snapshot_seconds=20 * 60, export_starting_seconds=10 * 60, export_running_seconds=40 * 60
)
PREFIX = "exports/mydb"
FIRST_NIGHT = datetime(2025, 3, 3, 21, 0, tzinfo=UTC)  # a Monday, at the default schedule


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


def load_into_snowflake(sb: Sandbox, snow: LocalSnowflake, work: Path) -> dict[str, int]:
    """Load the export the manifest names, with the generated SQL; row counts per table."""
    manifest = sb.manifest(PREFIX)
    if manifest is None:
        raise RuntimeError(f"a successful night wrote no {PREFIX}/_manifest.json")
    options = default_options(manifest)
    sections = render_sections(manifest, **options)
    stage = work / manifest["export_task_id"]
    copy_prefix(sb.client("s3"), sb.settings.bucket, PREFIX, stage)
    database, schema = options["database"], options["schema"]
    snow.run(sections["formats"])
    snow.run(sections["tables"])
    snow.create_local_stage(database, schema, options["stage"], options["file_format"], stage)
    with contextlib.redirect_stdout(io.StringIO()):  # fakesnow's notes on TRANSIENT
        snow.run(sections["load"])
    counts = {t.name: snow.count(database, schema, t.name) for t in tables_of(manifest)}
    print(f"   loaded {manifest['export_task_id']} into fakesnow {database}.{schema}:")
    for table, rows in counts.items():
        print(f"     {table:<20} {rows} rows")
    return counts


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


def main() -> int:
    t0 = time.monotonic()
    print("rds-s3-export local demo: the real ASL file and handlers on moto (no AWS account)")
    with (
        Sandbox(timing=DEMO_TIMING, start=FIRST_NIGHT) as sb,
        tempfile.TemporaryDirectory(prefix="rds-s3-export-demo-") as tmp,
        connect("RAW", "MYDB") as snow,
    ):
        sb.add_instance("mydb")
        export_minutes = DEMO_TIMING.export_starting_seconds + DEMO_TIMING.export_running_seconds
        print(
            f"database mydb (PostgreSQL), bucket {sb.settings.bucket}, prefix {PREFIX}/; "
            f"simulated snapshot {fmt_seconds(DEMO_TIMING.snapshot_seconds)}, "
            f"export {fmt_seconds(export_minutes)}"
        )
        work = Path(tmp)
        first = run(sb, "Night 1: first export into an empty prefix", {}, "night-1")
        counts_1 = load_into_snowflake(sb, snow, work) if first.status == "SUCCEEDED" else {}
        next_night(sb, 2)
        second = run(sb, "Night 2: export again, then purge night 1's export", {}, "night-2")
        counts_2 = load_into_snowflake(sb, snow, work) if second.status == "SUCCEEDED" else {}
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
        ok = (
            first.status == "SUCCEEDED"
            and second.status == "SUCCEEDED"
            and third.status == "FAILED"
            and third.error == "ExportFailed"
            and intact
            and told
            and same_counts
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
    print(f"demo {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s real time")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
