"""Snapshot retention, executed end to end: after a successful export the pipeline deletes its own
manual snapshots beyond the newest `keep_snapshots`, and never anything else."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from moto.rds.models import rds_backends

from rds_s3_export import naming
from rds_s3_export.rds import TAG_EXECUTION, TAG_PIPELINE
from sandbox.rds_sim import Timing
from sandbox.runtime import ACCOUNT, REGION, RunResult, Sandbox, Settings
from tests.helpers import several


def _tags(pipeline: str | None) -> list[dict[str, str]]:
    if pipeline is None:
        return []
    return [
        {"Key": TAG_PIPELINE, "Value": pipeline},
        {"Key": TAG_EXECUTION, "Value": "an-earlier-night"},
    ]


def _seed(
    sandbox: Sandbox,
    ident: str,
    age_days: float,
    *,
    pipeline: str | None = "rds-s3-export",
    cluster: str | None = None,
) -> str:
    """A manual snapshot of `mydb` (or of `cluster`) taken `age_days` ago on the simulated clock.

    Its SnapshotCreateTime is set in moto's backend, as `Sandbox.add_automated_snapshot` does,
    so the order retention sees does not depend on when the test happened to create it."""
    rds = sandbox.client("rds")
    if cluster:
        rds.create_db_cluster_snapshot(
            DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=ident, Tags=_tags(pipeline)
        )
        snapshot: Any = rds_backends[ACCOUNT][REGION].cluster_snapshots[ident]
    else:
        rds.create_db_snapshot(
            DBInstanceIdentifier="mydb", DBSnapshotIdentifier=ident, Tags=_tags(pipeline)
        )
        snapshot = rds_backends[ACCOUNT][REGION].database_snapshots[ident]
    taken = sandbox.clock.now() - timedelta(days=age_days)
    snapshot.created = taken.astimezone(UTC).replace(tzinfo=None)
    return ident


def _own_id(prefix: str, age_days: float, sandbox: Sandbox) -> str:
    """The id the pipeline would have given a snapshot taken `age_days` ago."""
    return naming.snapshot_id(prefix, sandbox.clock.now() - timedelta(days=age_days))


def _ready(sandbox: Sandbox) -> None:
    """Let the seeded snapshots finish (the simulation makes them `creating` at first)."""
    sandbox.clock.advance(sandbox.rds.timing.snapshot_seconds)


MYCLUSTER = {
    "db_cluster_identifier": "mycluster",
    "snapshot_prefix": "mycluster-nightly",
    "s3_prefix": "exports/mycluster",
}


def _succeeded(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
    assert result.output is not None
    return result.output


def test_keeps_the_newest_own_snapshots_and_nothing_else_is_touched(sandbox: Sandbox) -> None:
    # Given a simulated clock well ahead of the real one (SnapshotCreateTime must follow it)
    sandbox.clock.advance(3 * 24 * 3600)
    # And four of the pipeline's own snapshots from earlier nights (one with a run suffix)
    own = [_seed(sandbox, _own_id("mysnapshot", d, sandbox), d) for d in (1, 2, 3)]
    own.append(_seed(sandbox, f"{_own_id('mysnapshot', 5, sandbox)}-0a1b2c", 5))
    # And snapshots that are not its own, although some look alike
    foreign = [
        # taken by hand with the same name pattern, but without the pipeline's tag
        _seed(sandbox, _own_id("mysnapshot", 6, sandbox), 6, pipeline=None),
        # tagged by another pipeline (another stack)
        _seed(sandbox, _own_id("mysnapshot", 7, sandbox), 7, pipeline="other-pipeline"),
        # tagged by this pipeline, but another configuration's prefix that starts the same way
        _seed(sandbox, _own_id("mysnapshot-archive", 8, sandbox), 8),
        # tagged by this pipeline, another prefix altogether
        _seed(sandbox, _own_id("othersnap", 9, sandbox), 9),
    ]
    automated = sandbox.add_automated_snapshot("mydb", age_hours=10)
    _ready(sandbox)
    before = set(sandbox.snapshots("mydb"))
    assert automated in before

    # When the pipeline runs with keep_snapshots 2
    out = _succeeded(sandbox.run({"keep_snapshots": 2}))

    # Then the new snapshot and the newest earlier one are kept, the three older ones deleted
    current = out["snapshot"]["id"]
    expected_pruned = own[1:]
    assert sorted(out["snapshots_pruned"]) == sorted(expected_pruned)
    assert sorted(out["snapshots_kept"]) == sorted([current, own[0]])
    assert out["prune_warnings"] == []
    after = set(sandbox.snapshots("mydb"))
    assert after == (before | {current}) - set(expected_pruned)
    # And every snapshot that is not the pipeline's own is still there, automated ones included
    assert set(foreign) | {automated} <= after
    # And the export itself is in the bucket
    assert sandbox.export_folders("exports/mydb") == [out["export"]["task_id"]]


@pytest.mark.parametrize("settings", [several(MYCLUSTER)], ids=["mydb+mycluster"])
def test_keep_zero_on_a_cluster_keeps_only_the_snapshot_just_exported(sandbox: Sandbox) -> None:
    # Given an Aurora cluster with two of the pipeline's own cluster snapshots and a hand-made one
    sandbox.add_cluster("mycluster")
    own = [
        _seed(sandbox, _own_id("mycluster-nightly", d, sandbox), d, cluster="mycluster")
        for d in (1, 2)
    ]
    by_hand = _seed(sandbox, "before-upgrade", 3, pipeline=None, cluster="mycluster")
    _ready(sandbox)
    before = set(sandbox.snapshots("mycluster", cluster=True))

    # When the pipeline runs with keep_snapshots 0
    out = _succeeded(sandbox.run({"db_cluster_identifier": "mycluster", "keep_snapshots": 0}))

    # Then both earlier cluster snapshots are deleted, and only the one just exported is kept
    current = out["snapshot"]["id"]
    assert sorted(out["snapshots_pruned"]) == sorted(own)
    assert out["snapshots_kept"] == [current]
    after = set(sandbox.snapshots("mycluster", cluster=True))
    assert after == (before | {current}) - set(own)
    assert by_hand in after
    assert sandbox.export_folders("exports/mycluster") == [out["export"]["task_id"]]


def test_keep_zero_never_deletes_the_snapshot_just_exported_even_when_it_is_older(
    sandbox: Sandbox,
) -> None:
    # Given two of the pipeline's own snapshots, 3 days and 1 day old
    older = _seed(sandbox, _own_id("mysnapshot", 3, sandbox), 3)
    newer = _seed(sandbox, _own_id("mysnapshot", 1, sandbox), 1)
    _ready(sandbox)

    # When the older one is exported by name with keep_snapshots 0
    out = _succeeded(
        sandbox.run({"source": "snapshot", "snapshot_identifier": older, "keep_snapshots": 0})
    )

    # Then the newer one is deleted and the one just exported is kept
    assert out["snapshot"]["id"] == older
    assert out["snapshots_pruned"] == [newer]
    assert out["snapshots_kept"] == [older]
    assert older in sandbox.snapshots("mydb")
    assert newer not in sandbox.snapshots("mydb")


def test_keep_all_keeps_every_snapshot(timing: Timing) -> None:
    # Given a stack configured to keep every snapshot
    with Sandbox(Settings(keep_snapshots="all"), timing) as sandbox:
        sandbox.add_instance("mydb")
        own = [_seed(sandbox, _own_id("mysnapshot", d, sandbox), d) for d in (1, 2)]
        _ready(sandbox)

        # When the pipeline runs with the stack's default, and again with "all" in the input
        first = _succeeded(sandbox.run({}))
        second = _succeeded(sandbox.run({"keep_snapshots": "all"}))

        # Then nothing is pruned and every snapshot, both new ones included, is still there
        for out in (first, second):
            assert out["snapshots_pruned"] == []
            assert out["prune_warnings"] == []
        expected = {*own, first["snapshot"]["id"], second["snapshot"]["id"]}
        assert expected <= set(sandbox.snapshots("mydb"))


def test_a_snapshot_an_export_is_still_reading_is_not_deleted(sandbox: Sandbox) -> None:
    # Given two of the pipeline's own earlier snapshots
    busy = _seed(sandbox, _own_id("mysnapshot", 2, sandbox), 2)
    idle = _seed(sandbox, _own_id("mysnapshot", 1, sandbox), 1)
    _ready(sandbox)
    # And a long ad-hoc export of the older one, still running when the pipeline ends
    timing = sandbox.rds.timing
    normal = timing.export_running_seconds
    timing.export_running_seconds = 7 * 24 * 3600
    busy_arn = sandbox.client("rds").describe_db_snapshots(DBSnapshotIdentifier=busy)[
        "DBSnapshots"
    ][0]["DBSnapshotArn"]
    sandbox.client("rds").start_export_task(
        ExportTaskIdentifier="adhoc-analysis",
        SourceArn=busy_arn,
        S3BucketName=sandbox.settings.bucket,
        S3Prefix="adhoc",
        IamRoleArn=sandbox.role_arn,
        KmsKeyId=sandbox.key_arn,
    )
    timing.export_running_seconds = normal

    # When the pipeline runs with keep_snapshots 0
    out = _succeeded(sandbox.run({"keep_snapshots": 0}))

    # Then the snapshot being exported is kept, the idle one deleted
    task = sandbox.client("rds").describe_export_tasks(ExportTaskIdentifier="adhoc-analysis")
    assert task["ExportTasks"][0]["Status"] == "IN_PROGRESS"
    assert out["snapshots_pruned"] == [idle]
    assert sorted(out["snapshots_kept"]) == sorted([busy, out["snapshot"]["id"]])
    assert busy in sandbox.snapshots("mydb")
    assert idle not in sandbox.snapshots("mydb")


def test_a_failure_to_delete_is_a_warning_not_a_failed_run(sandbox: Sandbox) -> None:
    # Given two of the pipeline's own earlier snapshots
    own = [_seed(sandbox, _own_id("mysnapshot", d, sandbox), d) for d in (1, 2)]
    _ready(sandbox)
    # And RDS refusing both deletions, once for lack of permission, once for the state
    sandbox.faults.api("rds", "DeleteDBSnapshot", "AccessDenied", "not authorized", times=1)
    sandbox.faults.api(
        "rds", "DeleteDBSnapshot", "InvalidDBSnapshotState", "snapshot is being copied", times=1
    )

    # When the pipeline runs with keep_snapshots 0
    out = _succeeded(sandbox.run({"keep_snapshots": 0}))

    # Then the run succeeds with its export in place, and both refusals are warnings
    assert sandbox.export_folders("exports/mydb") == [out["export"]["task_id"]]
    assert out["snapshots_pruned"] == []
    warnings = " | ".join(out["prune_warnings"])
    assert len(out["prune_warnings"]) == 2
    assert "AccessDenied" in warnings
    assert "InvalidDBSnapshotState" in warnings
    assert all(ident in warnings for ident in own)
    # And both snapshots are still there, to be pruned by a later run
    assert set(own) <= set(sandbox.snapshots("mydb"))


def test_a_crashed_prune_is_a_warning_not_a_failed_run(sandbox: Sandbox) -> None:
    # Given an earlier own snapshot, and a prune function that crashes every time
    earlier = _seed(sandbox, _own_id("mysnapshot", 1, sandbox), 1)
    _ready(sandbox)
    sandbox.faults.crash("prune_snapshots", times=None)

    # When the pipeline runs with keep_snapshots 0
    out = _succeeded(sandbox.run({"keep_snapshots": 0}))

    # Then the run succeeds with its export, and the output says pruning did not complete
    assert sandbox.export_folders("exports/mydb") == [out["export"]["task_id"]]
    assert out["snapshots_pruned"] == []
    assert len(out["prune_warnings"]) == 1
    assert "PruneSnapshots did not complete" in out["prune_warnings"][0]
    assert earlier in sandbox.snapshots("mydb")
