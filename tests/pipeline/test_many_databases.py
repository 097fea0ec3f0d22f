"""Eight databases, eight executions started at once, one account: RDS runs at most five exports
at a time, so some StartExportTask calls are refused and the state machine must wait and retry
(backoff and jitter) until a slot frees, not fail.

The sandbox's simulated clock is shared: every Wait and Retry of every execution moves it on at
once, so how far apart the eight executions reach StartExport in simulated time depends on how
the threads happen to interleave (a lag of a tenth of a second in real time can be an hour
simulated). Left alone, the eight sometimes never overlap six at a time and the quota is never
hit. The test therefore starts with the account's five slots taken by another team's exports,
which end an hour later: whichever execution comes first is refused, whatever the interleaving,
and after that hour the eight still compete for five slots among themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sandbox import export_files
from sandbox.rds_sim import Timing
from sandbox.runtime import RunResult, Sandbox, Settings

QUOTA = 5


@dataclass(frozen=True)
class Target:
    ident: str
    cluster: bool

    @property
    def prefix(self) -> str:
        return f"exports/{self.ident}"

    @property
    def old_export(self) -> str:
        return f"{self.ident}-previous-night-000000"

    def execution_input(self) -> dict[str, Any]:
        key = "db_cluster_identifier" if self.cluster else "db_instance_identifier"
        return {
            key: self.ident,
            "snapshot_prefix": f"{self.ident}-nightly",
            "s3_prefix": self.prefix,
            "keep_snapshots": 1,
        }


# six PostgreSQL instances and two Aurora clusters
TARGETS = [Target(f"db{i}", cluster=False) for i in range(1, 7)] + [
    Target(f"aurora{i}", cluster=True) for i in (7, 8)
]


@pytest.fixture
def timing() -> Timing:
    """Exports of an hour (5 minutes starting, 55 writing), snapshots of 5 minutes."""
    return Timing(snapshot_seconds=300, export_starting_seconds=300, export_running_seconds=3300)


@pytest.fixture
def settings() -> Settings:
    """A stack configured for the eight databases (one schedule each), looking at an hour-long
    export every 15 minutes at most."""
    return Settings(databases=[t.execution_input() for t in TARGETS], poll_max_seconds=900)


def _occupy_the_quota(sandbox: Sandbox) -> list[str]:
    """Five exports of another team's database, started now: every slot is taken for an hour."""
    sandbox.add_instance("analytics")
    rds = sandbox.client("rds")
    ids = []
    for n in range(QUOTA):
        snapshot = rds.create_db_snapshot(
            DBInstanceIdentifier="analytics", DBSnapshotIdentifier=f"analytics-adhoc-{n}"
        )["DBSnapshot"]
        ids.append(f"analytics-adhoc-{n}")
        sandbox.clock.advance(sandbox.rds.timing.snapshot_seconds)  # `available`
        rds.start_export_task(
            ExportTaskIdentifier=f"analytics-adhoc-{n}",
            SourceArn=snapshot["DBSnapshotArn"],
            S3BucketName=sandbox.settings.bucket,
            S3Prefix=f"adhoc/analytics-{n}",
            IamRoleArn=sandbox.role_arn,
            KmsKeyId=sandbox.key_arn,
        )
    return ids


def _quota_retries(result: RunResult) -> int:
    refused = "error ExportQuotaExceeded"
    return sum(1 for s in result.states if s.name == "StartExport" and s.outcome == refused)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Exception\\(QuotaExceeded\\):UserWarning")
def test_eight_databases_at_once_all_export_within_the_quota(sandbox: Sandbox) -> None:
    # Given eight databases, each with its own prefix holding the previous night's export
    s3 = sandbox.client("s3")
    for target in TARGETS:
        if target.cluster:
            sandbox.add_cluster(target.ident)
        else:
            sandbox.add_instance(target.ident)
        export_files.write_export(
            s3,
            bucket=sandbox.settings.bucket,
            s3_prefix=target.prefix,
            export_task_id=target.old_export,
            source_arn=f"arn:aws:rds:us-east-1:123456789012:snapshot:{target.ident}-old",
            kms_key_id=sandbox.key_arn,
        )
    assert sandbox.rds.export_quota == QUOTA
    # And the account's five export slots taken, for the next hour, by another team's exports
    adhoc = _occupy_the_quota(sandbox)
    assert sandbox.rds.running_exports(sandbox.clock.now()) == QUOTA

    # When one execution per database is started, all at once
    started = sandbox.clock.elapsed_seconds
    arns = {t.ident: sandbox.start(t.execution_input(), name=f"nightly-{t.ident}") for t in TARGETS}
    results = {ident: sandbox.wait(arn, timeout=300) for ident, arn in arns.items()}

    # Then all eight succeed
    failed = {i: f"{r.error}: {r.cause}" for i, r in results.items() if r.status != "SUCCEEDED"}
    assert failed == {}
    # And each prefix holds exactly its newest export: the old one purged, nothing else there
    for target in TARGETS:
        out = results[target.ident].output
        assert out is not None
        task_id = out["export"]["task_id"]
        assert task_id.startswith(f"{target.ident}-nightly-")
        assert sandbox.export_folders(target.prefix) == [task_id], (target.ident, out["purge"])
        assert out["purge"]["folders"] == [f"{target.prefix}/{target.old_export}/"]
        assert out["database"] == {
            "kind": "cluster" if target.cluster else "instance",
            "id": target.ident,
        }
    # And RDS never ran more than five exports at once, one export per database in all
    peak = sandbox.rds.peak_concurrent_exports()
    assert peak <= QUOTA
    exports = [task_id for task_id, _, _ in sandbox.rds.export_intervals()]
    assert len(exports) == len(TARGETS) + len(adhoc)
    # And the other team's exports were left alone: each completed into its own prefix
    for n, task_id in enumerate(adhoc):
        assert sandbox.export_folders(f"adhoc/analytics-{n}") == [task_id]
    # And the quota really refused some starts, and every refusal was retried by the state
    # machine (no start-export call refused the task itself, nothing failed on the way)
    retries = {ident: _quota_retries(r) for ident, r in results.items()}
    assert sandbox.rds.quota_refusals > 0
    assert sum(retries.values()) == sandbox.rds.quota_refusals
    print(
        f"\neight databases: peak {peak} concurrent exports; {sandbox.rds.quota_refusals} quota "
        f"refusals retried (at most {max(retries.values())} of the 80 attempts by one "
        f"execution); {sandbox.clock.elapsed_seconds - started:.0f} s simulated from the start "
        "of the eight executions to the end of the last"
    )
