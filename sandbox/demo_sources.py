"""`python -m sandbox.demo_sources`: the sources and options beyond a nightly instance snapshot.

Three runs on the local sandbox (moto, no AWS account):

1. an Aurora cluster: a new *cluster* snapshot is created, waited for and exported;
2. `latest-automated`: last night's automated snapshot is exported as it is; nothing is created
   and there is no snapshot wait (a newer automated snapshot still being taken is passed over);
3. `export_only`: only two of the three tables are exported; the previous export under the
   prefix (run 2's) is purged once the new one is complete;
4. an event-started run (`-c snapshot_events=true`): RDS announces tonight's automated snapshot
   (AWS's sample event shape, RDS-EVENT-0091), the stack's rule matches it and starts a run of
   that very snapshot;
5. the nightly schedule (source latest-automated) as a catch-up: the snapshot is the one the
   manifest names already, so the run ends UP_TO_DATE having changed nothing.

Each run prints the states it went through (the polling loops folded into one line each), its
outcome, and the bucket's tree under its prefix. Exit status 0 when all five did what they
should.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sandbox import events
from sandbox.rds_sim import Timing
from sandbox.runtime import ACCOUNT, REGION, RunResult, Sandbox, Settings

# A 15-minute snapshot and a 45-minute export, replayed in about a second each.
TIMING = Timing(
    snapshot_seconds=15 * 60, export_starting_seconds=5 * 60, export_running_seconds=40 * 60
)
MYDB = {"db_instance_identifier": "mydb"}
# The stack: instance mydb and cluster mycluster, each with its own prefixes; a run started by
# hand may choose its export_only; automated-snapshot events on (-c snapshot_events=true)
SETTINGS = Settings(
    databases=[
        {"db_instance_identifier": "mydb", "s3_prefix": "exports/mydb"},
        {
            "db_cluster_identifier": "mycluster",
            "snapshot_prefix": "mycluster-nightly",
            "s3_prefix": "exports/mycluster",
        },
    ],
    snapshot_prefix="mysnapshot",
    allow_export_only_override=True,
    snapshot_events=True,
)
LOOPS = {"WaitForSnapshot": "DescribeSnapshotStatus", "WaitForExport": "DescribeExportStatus"}


def hm(seconds: float) -> str:
    minutes = int(seconds) // 60
    return (
        f"{minutes // 60}h{minutes % 60:02d}m"
        if minutes >= 60
        else f"{minutes}m{int(seconds) % 60:02d}s"
    )


def path(result: RunResult) -> str:
    """The states a run went through, Choice states left out, each polling loop on one line."""
    names = [s.name for s in result.states if s.type != "Choice"]
    out: list[str] = []
    i = 0
    while i < len(names):
        name = names[i]
        if name in LOOPS:
            polls = 0
            while i + 1 < len(names) and names[i] == name and names[i + 1] == LOOPS[name]:
                polls += 1
                i += 2
            out.append(f"[{name} > {LOOPS[name]}] x{polls}")
            continue
        failed = next(
            (s.outcome for s in result.states if s.name == name and s.outcome != "ok"), ""
        )
        out.append(
            f"{name} ({failed})" if failed and name in {"Failed", "FailedWithReason"} else name
        )
        i += 1
    return " > ".join(out)


def show(
    sb: Sandbox, title: str, execution_input: dict[str, Any], prefix: str, arn: str = ""
) -> RunResult:
    """Run `execution_input` (or wait for the execution `arn` already started) and print it."""
    print(f"\n== {title}")
    print(f"   input: {json.dumps(execution_input)}")
    t0 = time.monotonic()
    result = sb.wait(arn) if arn else sb.run(execution_input)
    print(f"   states: {path(result)}")
    if result.status == "SUCCEEDED" and result.output and result.output["status"] != "SUCCEEDED":
        out = result.output
        print(f"   => SUCCEEDED, {out['status']} (up_to_date: {str(out['up_to_date']).lower()})")
        print(f"      {out['reason']}")
    elif result.status == "SUCCEEDED" and result.output:
        out = result.output
        snap = out["snapshot"]
        how = "created" if snap["created"] else "used as it is"
        phases = ", ".join(f"{k} {hm(v)}" for k, v in out["phases_seconds"].items())
        real = time.monotonic() - t0
        print(f"   => SUCCEEDED in {hm(result.simulated_seconds)} simulated, {real:.1f} s real")
        print(f"      snapshot {snap['id']} ({how}); phases: {phases}")
        print(f"      export {out['export']['s3_uri']}")
        purge = out["purge"]
        print(
            f"      purged {purge['objects_deleted']} object(s) of "
            f"{purge['folders'] or 'no older export'}; "
            f"snapshots pruned: {out['snapshots_pruned'] or 'none'}"
        )
    else:
        print(f"   => {result.status} {result.error}: {result.cause}")
    print("   bucket:")
    for line in sb.tree(prefix).splitlines():
        print(f"     {line}")
    return result


def snapshot_created_event(snapshot_id: str) -> dict[str, Any]:
    """RDS's "automated DB snapshot created" event (RDS-EVENT-0091) in the shape of AWS's sample
    DB snapshot event (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-cloudwatch-events.sample.html)."""
    arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{snapshot_id}"
    return {
        "version": "0",
        "id": "demo-automated-snapshot-created",
        "detail-type": "RDS DB Snapshot Event",
        "source": "aws.rds",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [arn],
        "detail": {
            "EventCategories": ["creation"],
            "SourceType": "SNAPSHOT",
            "SourceArn": arn,
            "SourceIdentifier": snapshot_id,
            "Message": "Automated snapshot created",
            "EventID": "RDS-EVENT-0091",
        },
    }


def check(label: str, ok: bool, failures: list[str]) -> None:
    print(f"   {'ok  ' if ok else 'FAIL'} {label}")
    if not ok:
        failures.append(label)


def succeeded(result: RunResult) -> dict[str, Any]:
    """The run's output if it succeeded, else an empty dict (every check then fails)."""
    return (result.output or {}) if result.status == "SUCCEEDED" else {}


def main() -> int:
    started = time.monotonic()
    failures: list[str] = []
    print("rds-s3-export, sources and options: the real ASL file and handlers on moto")
    print("(no AWS account, no credentials)")
    with Sandbox(SETTINGS, timing=TIMING) as sb:
        sb.add_instance("mydb")
        sb.add_cluster("mycluster")

        # 1. Aurora: the cluster is the database; its snapshots are cluster snapshots
        cluster_input = {
            "db_cluster_identifier": "mycluster",
            "snapshot_prefix": "mycluster-nightly",
            "s3_prefix": "exports/mycluster",
        }
        title = "Run 1: an Aurora cluster (new cluster snapshot)"
        first = succeeded(show(sb, title, cluster_input, "exports/mycluster"))
        arn = first.get("snapshot", {}).get("arn", "")
        check("a cluster snapshot was created and exported", ":cluster-snapshot:" in arn, failures)

        # 2. latest-automated: last night's automated backup; a newer one is still being taken
        sb.clock.advance(8 * 3600)
        sb.add_automated_snapshot("mydb", age_hours=30)
        expected = sb.add_automated_snapshot("mydb", age_hours=5)
        creating = sb.add_automated_snapshot("mydb", age_hours=0.25, status="creating")
        print(f"\n   automated snapshots of mydb: {', '.join(sb.snapshots('mydb'))}")
        print(f"   ({creating} is still being taken)")
        before = sb.snapshots("mydb")
        title = "Run 2: source latest-automated"
        run2 = show(sb, title, {**MYDB, "source": "latest-automated"}, "exports/mydb")
        picked = succeeded(run2).get("snapshot", {}).get("id")
        check(f"picked {expected}, the newest available", picked == expected, failures)
        check(
            "created no snapshot and never waited for one",
            sb.snapshots("mydb") == before and run2.visits("DescribeSnapshotStatus") == 0,
            failures,
        )

        # 3. export_only: two of the three tables; run 2's export is purged afterwards
        tables = ["shop.public.orders", "shop.public.customers"]
        third = succeeded(
            show(sb, "Run 3: export_only", {**MYDB, "export_only": tables}, "exports/mydb")
        )
        exported = {k.split("/")[4] for k in sb.listing("exports/mydb") if k.endswith(".parquet")}
        check(
            "only public.orders and public.customers were exported",
            bool(third) and exported == {"public.orders", "public.customers"},
            failures,
        )
        check(
            "run 2's export was purged",
            bool(third) and len(sb.export_folders("exports/mydb")) == 1,
            failures,
        )

        # 4. an event: RDS took tonight's automated snapshot and says so on EventBridge
        sb.clock.advance(20 * 3600)
        tonight = sb.add_automated_snapshot("mydb", age_hours=0)
        event = snapshot_created_event(tonight)
        print(
            f"\n   EventBridge: {event['detail-type']} {event['detail']['EventID']} for {tonight}"
        )
        (arn,) = events.deliver(sb, event, name_prefix="rds-event") or ("",)
        execution_input = (
            json.loads(sb.client("stepfunctions").describe_execution(executionArn=arn)["input"])
            if arn
            else {}
        )
        run4 = succeeded(
            show(sb, "Run 4: started by the event", execution_input, "exports/mydb", arn)
        )
        check(
            f"the rule started a run of {tonight} and it was exported",
            run4.get("snapshot", {}).get("id") == tonight and run4.get("status") == "SUCCEEDED",
            failures,
        )

        # 5. the nightly schedule comes after: a catch-up that finds nothing to do
        folders = sb.export_folders("exports/mydb")
        schedule = {**MYDB, "source": "latest-automated"}  # a schedule of source latest-automated
        run5 = succeeded(
            show(sb, "Run 5: the nightly schedule (catch-up)", schedule, "exports/mydb")
        )
        check(
            "the schedule ended UP_TO_DATE and changed nothing",
            run5.get("status") == "UP_TO_DATE" and sb.export_folders("exports/mydb") == folders,
            failures,
        )

    verdict = "passed" if not failures else "FAILED: " + "; ".join(failures)
    print(f"\ndemo {verdict} in {time.monotonic() - started:.1f} s real time")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
