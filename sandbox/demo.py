"""`make demo`: the whole pipeline, three nights in a row, on the local sandbox.

1. the first run exports the database into an empty prefix;
2. the second run exports again and purges the first run's export;
3. the third run's export fails (injected): the run ends ExportFailed, and the second run's
   export is still complete in the bucket.

Every state is printed as it runs, with its outcome, real time and, for the polling loops,
what RDS said and how long the state machine waits before the next look (simulated time).
No AWS account or credentials are used: moto is the AWS here.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sandbox.rds_sim import ExportOutcome, Timing
from sandbox.runtime import RunResult, Sandbox, StateRecord

# A 20-minute snapshot and a 50-minute export (10 starting + 40 writing), replayed in seconds.
DEMO_TIMING = Timing(
    snapshot_seconds=20 * 60, export_starting_seconds=10 * 60, export_running_seconds=40 * 60
)
PREFIX = "exports/mydb"


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
    elif record.name == "PurgePrefix":
        purge = out.get("purge", {})
        detail = (
            f"page {purge.get('pages')}: {purge.get('objects_deleted')} old object(s) deleted"
            + (", more to go" if purge.get("more") else "")
        )
    elif record.name == "DiscardFailedExport":
        discard = out.get("discard", {})
        detail = f"removed {discard.get('objects_deleted')} partial object(s) of the failed export"
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
        print(f"     purged: {purged['objects_deleted']} object(s) in {purged['folders'] or '-'}")
    else:
        print(f"  {result.error}")
        print(f"     cause: {result.cause}")


def run(sb: Sandbox, title: str, execution_input: dict[str, Any], name: str) -> RunResult:
    print(f"\n== {title}")
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
    with Sandbox(timing=DEMO_TIMING) as sb:
        sb.add_instance("mydb")
        export_minutes = DEMO_TIMING.export_starting_seconds + DEMO_TIMING.export_running_seconds
        print(
            f"database mydb (PostgreSQL), bucket {sb.settings.bucket}, prefix {PREFIX}/; "
            f"simulated snapshot {fmt_seconds(DEMO_TIMING.snapshot_seconds)}, "
            f"export {fmt_seconds(export_minutes)}"
        )
        first = run(sb, "Run 1: first export into an empty prefix", {}, "night-1")
        second = run(sb, "Run 2: export again, then purge run 1's export", {}, "night-2")
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
        third = run(
            sb, "Run 3: the export fails (injected); run 2's export must survive", {}, "night-3"
        )
        after = sb.listing(PREFIX)
        intact = bool(before) and all(after.get(key) == etag for key, etag in before.items())
        ok = (
            first.status == "SUCCEEDED"
            and second.status == "SUCCEEDED"
            and third.status == "FAILED"
            and third.error == "ExportFailed"
            and intact
        )
        verdict = "complete and byte-for-byte unchanged" if intact else "MISSING OR CHANGED"
        print(f"\nrun 2's export after run 3: {verdict} ({len(before)} objects, compared by ETag)")
    print(f"demo {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s real time")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
