"""`make bench`: polling, purge and cost figures, measured in the sandbox, printed (never asserted).

Everything counted here comes from what the sandbox really did: state transitions and events
from the execution's history (`RunResult.history`), S3 and RDS calls counted at botocore as
the handlers make them, lateness from the simulated clock.

1. Polling, a 20-minute snapshot and a 90-minute export (10 minutes of it STARTING), with the
   default poll bounds (30 s to 300 s), for four progress curves (linear, none until done,
   slow first, fast first), each repeated with the completion shifted by OFFSETS:
   * first night: a database without history (no prior);
   * following nights: the same database night after night, each night's durations shifted,
     the prior being the previous night's (found by ValidateInput as in AWS).
2. The purge phase alone: old exports of 1,000, 10,000 and 100,000 objects beside a new export
   of 10,000 objects, the old one named by the manifest (as the night before left it), so the
   purge holds it back and PurgePreviousExport deletes it after PublishManifest. The purge
   phase is both passes: PurgePrefix up to PublishManifest, and IsPreviousExportPurged up to
   PruneSnapshots (PublishManifest itself is not counted). The objects are written straight
   into moto's S3 backend (a put_object through the API costs ~1 ms each); the purge itself
   runs through the real handlers.
3. The cost of one run in dollars, against one Lambda that sleeps between looks.

`python -m sandbox.bench --quick` runs fewer cases (the linear and none-until-done curves, two
offsets, purges of 1,000 and 10,000 objects); `--polling` prints the polling table alone (the
one docs/operating.md and rds_s3_export/polling.py quote).
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from moto.s3.models import s3_backends

from infra.config import MEMORY_MB  # the stack's memory size, priced below
from rds_s3_export import rules
from rds_s3_export.manifest import manifest_key
from sandbox import faults
from sandbox.rds_sim import PROGRESS_CURVES, Timing
from sandbox.runtime import ACCOUNT, RunResult, Sandbox, Settings

SNAPSHOT_S, STARTING_S, EXPORT_S = 20 * 60, 10 * 60, 90 * 60
OFFSETS = (-90, -30, 0, 45, 120)  # seconds the night's completion is shifted by
# https://aws.amazon.com/step-functions/pricing/ : Standard workflows, per state transition
PRICE_TRANSITION = 0.025 / 1000
# https://aws.amazon.com/lambda/pricing/ : arm64, per GB-second, and per request
PRICE_GB_SECOND = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000
HISTORY_QUOTA = rules.HISTORY_EVENTS_MAX
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html : 900 s at most
LAMBDA_TIMEOUT_S = 900


def _succeeded(result: RunResult) -> dict[str, Any]:
    if result.status != "SUCCEEDED" or result.output is None:
        raise RuntimeError(f"benchmark run failed: {result.error}: {result.cause}")
    return result.output


def transitions(history: list[dict[str, Any]]) -> int:
    """State transitions billed: one per state entered."""
    return sum(1 for e in history if str(e["type"]).endswith("StateEntered"))


class CallCounter:
    """Counts the AWS calls the handlers make (botocore's before-send, beside the faults),
    by the step running in the calling thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._step = threading.local()
        self.calls: Counter[tuple[str, str]] = Counter()  # (step, service) -> calls
        self.counts: dict[str, int] = {}  # the InvocationLog interface

    # the InvocationLog interface: called in the execution's thread before each handler
    def record(self, module: str) -> None:
        self._step.name = module

    # the FaultInjector interface
    def before_send(self, request: Any, event_name: str, **kwargs: Any) -> None:
        step = getattr(self._step, "name", None)
        if step is not None:
            service = event_name.split(".")[1]
            with self._lock:
                self.calls[(step, service)] += 1


@dataclass
class Night:
    late_snapshot: float
    late_export: float
    describes: int
    transitions: int
    events: int
    invocations: int
    task_ms: dict[str, float] = field(default_factory=dict)

    @property
    def late(self) -> float:
        return max(self.late_snapshot, self.late_export)


def _night(sb: Sandbox, database: str, offset: int, curve: str) -> Night:
    sb.rds.timing = Timing(
        snapshot_seconds=SNAPSHOT_S + offset,
        export_starting_seconds=STARTING_S,
        export_running_seconds=EXPORT_S - STARTING_S + offset,
        progress_curve=curve,
    )
    result = sb.run({"db_instance_identifier": database, "s3_prefix": f"exports/{database}"})
    out = _succeeded(result)
    sb.clock.advance(24 * 3600)
    phases, polls = out["phases_seconds"], out["polls"]
    task_ms: dict[str, float] = {}
    for record in result.states:
        if record.type == "Task":
            task_ms[record.name] = task_ms.get(record.name, 0.0) + record.real_ms
    return Night(
        late_snapshot=phases["snapshot"] - (SNAPSHOT_S + offset),
        late_export=phases["export"] - (EXPORT_S + offset),
        describes=polls["snapshot"] + polls["export"],
        transitions=transitions(result.history),
        events=len(result.history),
        invocations=sum(1 for e in result.history if e["type"] == "TaskScheduled"),
        task_ms=task_ms,
    )


def polling(curve: str, offsets: tuple[int, ...]) -> tuple[list[Night], list[Night]]:
    first: list[Night] = []
    later: list[Night] = []
    names = [*(f"first{i}" for i in range(len(offsets))), "nightly"]
    databases = [
        {"db_instance_identifier": n, "s3_prefix": f"exports/{n}", "snapshot_prefix": f"{n}-snap"}
        for n in names
    ]
    with Sandbox(Settings(databases=databases), Timing(progress_curve=curve)) as sb:
        for i, offset in enumerate(offsets):
            sb.add_instance(f"first{i}")
            first.append(_night(sb, f"first{i}", offset, curve))
        sb.add_instance("nightly")
        _night(sb, "nightly", 0, curve)  # the night that gives the first prior
        for offset in offsets:
            later.append(_night(sb, "nightly", offset, curve))
    return first, later


def _row(label: str, nights: list[Night]) -> str:
    lates = [n.late for n in nights]
    return (
        f"  {label:<26}{statistics.median(lates):>7.0f}{max(lates):>7.0f}"
        f"{min(n.describes for n in nights):>7}-{max(n.describes for n in nights):<4}"
        f"{statistics.median(n.transitions for n in nights):>8.0f}"
        f"{statistics.median(n.events for n in nights):>8.0f}"
    )


def _put_many(bucket: str, prefix: str, count: int) -> None:
    """`count` empty objects under `prefix`, straight into moto's S3 backend."""
    backend = s3_backends[ACCOUNT]["aws"]
    for i in range(count):
        backend.put_object(bucket, f"{prefix}/t/1/part-{i:06d}.parquet", b"")


@dataclass
class Purge:
    invocations: int
    pages: int
    s3_calls: int
    rds_calls: int
    events: int
    transitions: int
    deleted: int


def _window(events: list[dict[str, Any]], first: str, after: str) -> list[dict[str, Any]]:
    """The events from the first entry into state `first` up to the entry into `after`."""
    names = [e.get("stateEnteredEventDetails", {}).get("name") for e in events]
    start = names.index(first)
    return events[start : names.index(after, start)]


def purge(old_objects: int, new_objects: int) -> Purge:
    counter = CallCounter()
    sb = Sandbox(timing=Timing(60, 60, 60))
    sb.invocations = counter  # type: ignore[assignment]
    with sb:
        faults.install(counter)  # type: ignore[arg-type]
        try:
            sb.add_instance("mydb")
            bucket, prefix = sb.settings.bucket, "exports/mydb"
            old = "mysnapshot-2020-01-01-00-00-abcdef"
            s3 = sb.client("s3")
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{old}/export_info_{old}.json", Body=b"{}")
            _put_many(bucket, f"{prefix}/{old}", old_objects - 1)
            named = {"export_task_id": old, "export_folder": f"{prefix}/{old}/"}
            s3.put_object(Bucket=bucket, Key=manifest_key(prefix), Body=json.dumps(named))
            sb.rds.extra_export_objects = new_objects
            result = sb.wait(sb.start({}), timeout=1800)  # 100,000 keys take a while in moto
        finally:
            faults.uninstall(counter)  # type: ignore[arg-type]
    out = _succeeded(result)
    if out["purge"]["deferred"] != old:
        raise RuntimeError(f"the purge did not hold back {old}: {out['purge']}")
    # the purge's events: its first pass (PurgePrefix's loop, up to PublishManifest) and its
    # last (IsPreviousExportPurged and PurgePreviousExport's loop, up to PruneSnapshots)
    events = _window(result.history, "PurgePrefix", "PublishManifest") + _window(
        result.history, "IsPreviousExportPurged", "PruneSnapshots"
    )
    return Purge(
        invocations=sum(1 for e in events if e["type"] == "TaskScheduled"),
        pages=int(out["purge"]["pages"]),
        s3_calls=counter.calls[("purge_prefix", "s3")],
        rds_calls=counter.calls[("purge_prefix", "rds")],
        events=len(events),
        transitions=transitions(events),
        deleted=int(out["purge"]["objects_deleted"]),
    )


def cost(night: Night, requests: int) -> tuple[float, float, float]:
    gb_s = sum(night.task_ms.values()) / 1000 * MEMORY_MB / 1024
    return (
        night.transitions * PRICE_TRANSITION,
        gb_s * PRICE_GB_SECOND,
        requests * PRICE_REQUEST,
    )


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    offsets = OFFSETS[:2] if quick else OFFSETS
    curves = PROGRESS_CURVES[:2] if quick else PROGRESS_CURVES
    print(
        f"polling: {SNAPSHOT_S // 60}-minute snapshot, {EXPORT_S // 60}-minute export "
        f"({STARTING_S // 60} of them STARTING), poll bounds 30..300 s, completion shifted by "
        f"{', '.join(f'{o:+d}' for o in offsets)} s"
    )
    print(f"  {'':<26}{'late s':>14}{'describes':>12}{'transit.':>8}{'events':>8}")
    print(f"  {'curve, night':<26}{'median':>7}{'max':>7}{'min-max':>12}{'median':>8}{'median':>8}")
    linear_later: list[Night] = []
    for curve in curves:
        first, later = polling(curve, offsets)
        print(_row(f"{curve}, first night", first))
        print(_row(f"{curve}, nights after", later))
        if curve == "linear":
            linear_later = later
    print(
        "  (first night: no prior, a new database each offset; nights after: one database\n"
        "   night after night, each night's prior the one before, shifted by the offsets)"
    )

    if "--polling" in argv:
        return 0

    print(
        "\npurge phase alone, beside a new export of 10,000 objects (its keys are never listed);\n"
        "  the old export is the one the manifest names: PurgePrefix holds it back and\n"
        "  PurgePreviousExport deletes it after PublishManifest; both passes are counted:"
    )
    print(
        f"  {'old objects':>12}{'calls':>7}{'pages':>7}{'S3':>6}{'RDS':>6}{'events':>8}"
        f"{'transit.':>9}"
    )
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    measured = []
    for size in sizes:
        p = purge(size, 10_000)
        if p.deleted != size:
            raise RuntimeError(f"purged {p.deleted} of {size} objects")
        measured.append(p)
        print(
            f"  {size:>12,}{p.invocations:>7}{p.pages:>7}{p.s3_calls:>6}{p.rds_calls:>6}"
            f"{p.events:>8}{p.transitions:>9}"
        )
    big = measured[-1]
    per_call = big.events / big.invocations
    # the events of the rest of a run: the most a measured 110-minute night took
    other = max((n.events for n in linear_later), default=400)
    calls = (HISTORY_QUOTA - other) / per_call
    print(
        f"  {per_call:.1f} history events per purge call; Standard's {HISTORY_QUOTA:,}-event "
        f"history quota less ~{other} for the rest of the run leaves room for {calls:,.0f} "
        f"calls: at least {calls * 1000:,.0f} old objects in one run even if every call "
        "deleted only one page of 1,000 (a call deletes page after page within its time "
        "budget), and beyond that the run continues in a new execution"
    )

    if linear_later:
        night = linear_later[len(linear_later) // 2]
        requests = night.invocations
        sfn, lam, req = cost(night, requests)
        total_s = SNAPSHOT_S + EXPORT_S
        sleeper_gb_s = total_s * MEMORY_MB / 1024
        hops = -(-total_s // LAMBDA_TIMEOUT_S)
        print(
            f"\ncost of one run (linear, a night with a prior): {night.transitions} transitions "
            f"${sfn:.5f} + Lambda {sum(night.task_ms.values()) / 1000:.1f} s at {MEMORY_MB} MB "
            f"(sandbox-measured task time, moto overhead included) ${lam:.5f} + {requests} "
            f"requests ${req:.6f} = ${sfn + lam + req:.5f}"
        )
        print(
            f"one Lambda sleeping 20 s between looks for the same {total_s // 60} minutes: "
            f"billed for the whole wait, {sleeper_gb_s:,.0f} GB-s = "
            f"${sleeper_gb_s * PRICE_GB_SECOND:.5f}, and it cannot live past "
            f"{LAMBDA_TIMEOUT_S} s: it had to re-invoke itself (its state in the event) "
            f"at least {hops} times, with every hop a place to lose the run"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
