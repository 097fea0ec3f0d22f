"""A small simulation of what RDS does and moto does not.

moto completes snapshots and exports the instant they are asked for and writes no files. The
simulation, installed over moto's RDS backend for the duration of a sandbox, makes them take
(simulated) time and write what RDS writes:

* a DB or cluster snapshot is `creating` with a growing `PercentProgress` for
  `snapshot_seconds`, then `available` (or `failed`, if so injected);
* an export task is `STARTING` for `export_starting_seconds`, `IN_PROGRESS` with progress for
  `export_running_seconds`, then `COMPLETE` (upper case, as the real API), or `FAILED` /
  `CANCELED` with a `FailureCause`, if so injected;
* a COMPLETE export writes RDS's files into the bucket (`sandbox.export_files`: export_info,
  export_tables_info, real Parquet); a FAILED or CANCELED one leaves partial data files
  behind, as RDS can;
* at most `export_quota` exports run at once: a further StartExportTask is refused with a
  generic error, as the real quota has no error code of its own.

Time is read from the sandbox's simulated clock; states advance when anyone describes them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBClusterSnapshot, DBSnapshot, RDSBackend
from moto.s3.models import s3_backends

from rds_s3_export import rules
from sandbox import export_files, iam_replay
from sandbox.clock import SimClock
from sandbox.fixture_db import FixtureDatabase

PROGRESS_CURVES = ("linear", "none-until-done", "slow-first", "fast-first")


def progress_percent(curve: str, fraction: float) -> int:
    """RDS's whole-number PercentProgress after `fraction` (0..1) of the work's time.

    `linear` grows evenly; `none-until-done` stays 0 until the end (as some exports report);
    `slow-first` grows as the square of the time (a slow start, a fast end) and `fast-first`
    as its square root (most of the percentage early, a long tail)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if curve == "linear":
        share = fraction
    elif curve == "none-until-done":
        share = 0.0
    elif curve == "slow-first":
        share = fraction**2
    elif curve == "fast-first":
        share = fraction**0.5
    else:
        raise ValueError(f"unknown progress curve {curve!r}; expected one of {PROGRESS_CURVES}")
    return int(100 * share)


@dataclass
class Timing:
    """Simulated durations, in seconds, and the shape of the reported progress."""

    snapshot_seconds: float = 600.0
    export_starting_seconds: float = 300.0
    export_running_seconds: float = 1200.0
    progress_curve: str = "linear"  # one of PROGRESS_CURVES, for snapshots and exports

    def __post_init__(self) -> None:
        progress_percent(self.progress_curve, 0.0)  # refuses an unknown curve at once


ACCOUNT = "123456789012"  # moto's default account, as in sandbox.runtime


@dataclass
class ExportOutcome:
    status: str = "COMPLETE"  # COMPLETE, FAILED or CANCELED
    failure_cause: str = ""
    table_outcomes: dict[str, str] = field(default_factory=dict)  # "shop.public.orders": FAILED


@dataclass
class _SimSnapshot:
    created: datetime
    duration: float
    outcome: str  # "available" or a failed status such as "failed"


@dataclass
class _SimExport:
    start: datetime
    starting: float
    running: float
    outcome: ExportOutcome
    bucket: str
    prefix: str
    export_only: list[str]
    kms_key_id: str | None
    source_arn: str
    role_arn: str | None
    finished: bool = False

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.starting + self.running)


class QuotaExceeded(RDSClientError):
    def __init__(self, running: int, quota: int) -> None:
        super().__init__(
            "LimitExceededException",
            f"You have reached the maximum number of concurrent export tasks ({running} of "
            f"{quota} running). Try again when one finishes.",
        )


class RdsSimulation:
    def __init__(
        self, clock: SimClock, s3_client: Callable[[], Any], timing: Timing | None = None
    ) -> None:
        self.clock = clock
        self.timing = timing or Timing()
        self.export_quota = rules.CONCURRENT_EXPORTS_MAX
        self._s3_client = s3_client
        self._lock = threading.RLock()
        self._snapshots: dict[tuple[str, str], _SimSnapshot] = {}
        self._exports: dict[str, _SimExport] = {}
        self._snapshot_outcomes: deque[str] = deque()
        self._export_outcomes: deque[ExportOutcome] = deque()
        self.quota_refusals = 0
        # a COMPLETE export also writes this many empty data files (a large export, for the
        # bench), straight into moto's S3 backend: through the API they cost ~1 ms each
        self.extra_export_objects = 0
        # the source database a COMPLETE export writes (None: the small sample ``shop``); the
        # demo sets a sandbox.fixture_db database
        self.database: FixtureDatabase | None = None
        # what an empty table gets (undocumented by AWS: see docs/sandbox.md)
        self.empty_table_files: export_files.EmptyTableFiles = "none"
        # the S3 client RDS writes an export with, given the task's IAM role (a cross-account
        # sandbox assumes the export role); None: the sandbox's own client
        self.writer_for_role: Callable[[str | None], Any] | None = None

    # --- what tests and the demo inject ------------------------------------------------
    def fail_next_snapshot(self, status: str = "failed") -> None:
        self._snapshot_outcomes.append(status)

    def next_export(self, outcome: ExportOutcome) -> None:
        self._export_outcomes.append(outcome)

    # --- what tests and the demo read ---------------------------------------------------
    def export_intervals(self) -> list[tuple[str, datetime, datetime]]:
        with self._lock:
            return [(k, e.start, e.end) for k, e in self._exports.items()]

    def peak_concurrent_exports(self) -> int:
        """The most exports that were running at the same simulated moment."""
        events = []
        for _, start, end in self.export_intervals():
            events += [(start, 1), (end, -1)]
        peak = running = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            running += step
            peak = max(peak, running)
        return peak

    def running_exports(self, at: datetime) -> int:
        return sum(1 for e in self._exports.values() if e.start <= at < e.end)

    # --- the simulation ----------------------------------------------------------------
    def _advance_snapshot(self, kind: str, snapshot: Any) -> None:
        ident = (
            snapshot.db_cluster_snapshot_identifier
            if kind == "cluster"
            else snapshot.db_snapshot_identifier
        )
        sim = self._snapshots.get((kind, ident))
        if sim is None:
            return
        elapsed = (self.clock.now() - sim.created).total_seconds()
        if elapsed >= sim.duration:
            snapshot.status = sim.outcome
            snapshot.percent_progress = (
                100 if sim.outcome == "available" else snapshot.percent_progress
            )
        else:
            snapshot.status = "creating"
            snapshot.percent_progress = (
                progress_percent(self.timing.progress_curve, elapsed / sim.duration)
                if sim.duration
                else 0
            )

    def _register_snapshot(self, kind: str, snapshot: Any, ident: str) -> None:
        outcome = self._snapshot_outcomes.popleft() if self._snapshot_outcomes else "available"
        now = self.clock.now()
        self._snapshots[(kind, ident.lower())] = _SimSnapshot(
            created=now, duration=self.timing.snapshot_seconds, outcome=outcome
        )
        # SnapshotCreateTime on the simulated clock, like everything else the handlers see:
        # moto stamps it with the real time, which the simulated clock runs far ahead of.
        snapshot.created = now.astimezone(UTC).replace(tzinfo=None)  # naive UTC, as moto keeps it
        snapshot.status = "creating"
        snapshot.percent_progress = 0

    def _advance_export(self, task: Any) -> None:
        sim = self._exports.get(task.export_task_identifier)
        if sim is None or sim.finished:
            return
        now = self.clock.now()
        elapsed = (now - sim.start).total_seconds()
        task.task_start_time = sim.start
        if elapsed < sim.starting:
            task.status, task.percent_progress = "STARTING", 0
            return
        if elapsed < sim.starting + sim.running:
            task.status = "IN_PROGRESS"
            task.percent_progress = progress_percent(
                self.timing.progress_curve, (elapsed - sim.starting) / sim.running
            )
            return
        self._finish_export(task, sim)

    def _finish_export(self, task: Any, sim: _SimExport) -> None:
        # RDS writes the files with the export role (the IAM replay records them as its calls)
        with iam_replay.acting_as(iam_replay.EXPORT_ROLE):
            self._write_export(task, sim)

    def _write_export(self, task: Any, sim: _SimExport) -> None:
        outcome = sim.outcome
        ident = task.export_task_identifier
        s3 = (
            self._s3_client()
            if self.writer_for_role is None
            else self.writer_for_role(sim.role_arn)
        )
        if outcome.status == "COMPLETE":
            result = export_files.write_export(
                s3,
                bucket=sim.bucket,
                s3_prefix=sim.prefix,
                export_task_id=ident,
                source_arn=sim.source_arn,
                export_only=sim.export_only,
                table_outcomes=outcome.table_outcomes or None,
                kms_key_id=sim.kms_key_id,
                iam_role_arn=sim.role_arn,
                task_start_time=sim.start,
                task_end_time=sim.end,
                database=self.database,
                empty_table_files=self.empty_table_files,
            )
            backend = s3_backends[ACCOUNT]["aws"]
            for i in range(self.extra_export_objects):
                key = f"{sim.prefix}/{ident}/shop/public.bulk/1/part-{i:06d}.gz.parquet"
                backend.put_object(sim.bucket, key, b"")
            task.total_extracted_data_in_gb = max(1, result.data_bytes // 2**30)
            task.percent_progress = 100
        else:
            # RDS leaves what it had written: a partial data file, no export_info
            key = f"{sim.prefix}/{ident}/shop/public.orders/1/part-00000-partial.gz.parquet"
            s3.put_object(Bucket=sim.bucket, Key=key, Body=b"PAR1 partial PAR1")
            task.failure_cause = outcome.failure_cause or f"simulated {outcome.status}"
        task.status = outcome.status
        task.task_end_time = sim.end
        sim.finished = True

    # --- the patches over moto's backend ------------------------------------------------
    # Each of moto's own methods runs under the simulation's lock too: moto's backend is not
    # thread-safe, and the sandbox runs one execution per thread (a DescribeExportTasks iterating
    # the tasks while another execution's StartExportTask adds one raised "OrderedDict mutated
    # during iteration").
    @contextmanager
    def installed(self) -> Iterator[None]:
        sim = self
        original = {
            name: getattr(RDSBackend, name)
            for name in (
                "create_db_snapshot",
                "create_db_cluster_snapshot",
                "describe_db_snapshots",
                "describe_db_cluster_snapshots",
                "start_export_task",
                "describe_export_tasks",
            )
        }

        def create_db_snapshot(backend: RDSBackend, *args: Any, **kwargs: Any) -> DBSnapshot:
            with sim._lock:
                snapshot = original["create_db_snapshot"](backend, *args, **kwargs)
                if snapshot.snapshot_type == "manual":
                    sim._register_snapshot("instance", snapshot, snapshot.db_snapshot_identifier)
            return snapshot  # type: ignore[no-any-return]

        def create_db_cluster_snapshot(
            backend: RDSBackend, *args: Any, **kwargs: Any
        ) -> DBClusterSnapshot:
            with sim._lock:
                snapshot = original["create_db_cluster_snapshot"](backend, *args, **kwargs)
                if snapshot.snapshot_type == "manual":
                    sim._register_snapshot(
                        "cluster", snapshot, snapshot.db_cluster_snapshot_identifier
                    )
            return snapshot  # type: ignore[no-any-return]

        def describe_db_snapshots(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
            with sim._lock:
                found = list(original["describe_db_snapshots"](backend, *args, **kwargs))
                for snapshot in found:
                    sim._advance_snapshot("instance", snapshot)
            return found

        def describe_db_cluster_snapshots(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
            with sim._lock:
                found = list(original["describe_db_cluster_snapshots"](backend, *args, **kwargs))
                for snapshot in found:
                    sim._advance_snapshot("cluster", snapshot)
            return found

        def start_export_task(backend: RDSBackend, kwargs: dict[str, Any]) -> Any:
            with sim._lock:
                for kind, table in (
                    ("instance", backend.database_snapshots),
                    ("cluster", backend.cluster_snapshots),
                ):
                    for snapshot in table.values():
                        sim._advance_snapshot(kind, snapshot)
                now = sim.clock.now()
                running = sim.running_exports(now)
                if (
                    kwargs["export_task_identifier"] not in backend.export_tasks
                    and running >= sim.export_quota
                ):
                    sim.quota_refusals += 1
                    raise QuotaExceeded(running, sim.export_quota)
                task = original["start_export_task"](backend, kwargs)
                outcome = (
                    sim._export_outcomes.popleft() if sim._export_outcomes else ExportOutcome()
                )
                sim._exports[task.export_task_identifier] = _SimExport(
                    start=now,
                    starting=sim.timing.export_starting_seconds,
                    running=sim.timing.export_running_seconds,
                    outcome=outcome,
                    bucket=kwargs["s3_bucket_name"],
                    prefix=(kwargs.get("s3_prefix") or "").rstrip("/"),
                    export_only=list(kwargs.get("export_only") or []),
                    kms_key_id=kwargs.get("kms_key_id"),
                    source_arn=kwargs["source_arn"],
                    role_arn=kwargs.get("iam_role_arn"),
                )
                task.status, task.percent_progress = "STARTING", 0
                task.task_start_time = now
                return task

        def describe_export_tasks(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
            with sim._lock:
                # moto returns a live view of its OrderedDict; copied under the lock, as another
                # execution's StartExportTask may add to it at the same moment
                found = list(original["describe_export_tasks"](backend, *args, **kwargs))
                # advance every task, not only the ones asked for: files appear on time
                for task in list(backend.export_tasks.values()):
                    sim._advance_export(task)
            return found

        replacements = {
            "create_db_snapshot": create_db_snapshot,
            "create_db_cluster_snapshot": create_db_cluster_snapshot,
            "describe_db_snapshots": describe_db_snapshots,
            "describe_db_cluster_snapshots": describe_db_cluster_snapshots,
            "start_export_task": start_export_task,
            "describe_export_tasks": describe_export_tasks,
        }
        with ExitStack() as stack:
            for name, replacement in replacements.items():
                stack.enter_context(mock.patch.object(RDSBackend, name, replacement))
            yield
