"""Every source (new-snapshot, latest-automated, a named snapshot) for an RDS instance and for an
Aurora cluster, executed end to end in the sandbox. Each test looks at the bucket and at which
snapshots exist afterwards, not only at the execution's status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from moto.rds.models import rds_backends

from rds_s3_export import naming
from rds_s3_export.rds import TAG_EXECUTION, TAG_PIPELINE
from sandbox.runtime import ACCOUNT, REGION, RunResult, Sandbox, Settings
from tests.helpers import several

SAMPLE_TABLE_FOLDERS = {"shop/public.customers", "shop/public.orders", "shop/public.order_items"}
KINDS = ("instance", "cluster")


@pytest.fixture
def settings() -> Settings:
    """A stack configured for every database these tests name (a run may name only those)."""
    return several(
        {
            "db_cluster_identifier": "mycluster",
            "snapshot_prefix": "mycluster-nightly",
            "s3_prefix": "exports/mycluster",
        },
        {
            "db_instance_identifier": "otherdb",
            "snapshot_prefix": "othersnap",
            "s3_prefix": "exports/otherdb",
        },
        {
            "db_cluster_identifier": "othercluster",
            "snapshot_prefix": "otherclustersnap",
            "s3_prefix": "exports/othercluster",
        },
        {
            "db_instance_identifier": "mycluster-writer",
            "snapshot_prefix": "writer",
            "s3_prefix": "exports/writer",
        },
    )


@dataclass(frozen=True)
class Database:
    """The database a test exports: the fixture's instance `mydb` or a new Aurora cluster."""

    kind: str
    ident: str
    prefix: str
    execution_input: dict[str, Any]

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"

    @property
    def snapshot_kind(self) -> str:
        return "cluster-snapshot" if self.cluster else "snapshot"


def _database(sandbox: Sandbox, kind: str) -> Database:
    if kind == "cluster":
        sandbox.add_cluster("mycluster")
        return Database(
            "cluster",
            "mycluster",
            "exports/mycluster",
            {
                "db_cluster_identifier": "mycluster",
                "snapshot_prefix": "mycluster-nightly",
                "s3_prefix": "exports/mycluster",
            },
        )
    return Database("instance", "mydb", "exports/mydb", {"db_instance_identifier": "mydb"})


def _manual_snapshot(sandbox: Sandbox, db: Database, ident: str) -> str:
    """A manual snapshot taken by hand (no pipeline tag), made `available`; returns its ARN."""
    rds = sandbox.client("rds")
    if db.cluster:
        arn = rds.create_db_cluster_snapshot(
            DBClusterIdentifier=db.ident, DBClusterSnapshotIdentifier=ident
        )["DBClusterSnapshot"]["DBClusterSnapshotArn"]
    else:
        arn = rds.create_db_snapshot(DBInstanceIdentifier=db.ident, DBSnapshotIdentifier=ident)[
            "DBSnapshot"
        ]["DBSnapshotArn"]
    sandbox.clock.advance(sandbox.rds.timing.snapshot_seconds)
    return str(arn)


def _export_task(sandbox: Sandbox, task_id: str) -> dict[str, Any]:
    tasks = sandbox.client("rds").describe_export_tasks(ExportTaskIdentifier=task_id)
    return dict(tasks["ExportTasks"][0])


def _assert_only_this_export(sandbox: Sandbox, prefix: str, task_id: str) -> None:
    """The prefix holds exactly one export folder, complete, with every sample table's data."""
    assert sandbox.export_folders(prefix) == [task_id]
    listing = sandbox.listing(f"{prefix}/{task_id}/")
    assert f"{prefix}/{task_id}/export_info_{task_id}.json" in listing
    assert any(f"/export_tables_info_{task_id}_from_" in key for key in listing)
    tables = {"/".join(key.split("/")[-4:-2]) for key in listing if key.endswith(".gz.parquet")}
    assert tables == SAMPLE_TABLE_FOLDERS


def _succeeded(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
    assert result.output is not None
    return result.output


# --- new-snapshot --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_new_snapshot_is_created_tagged_waited_for_and_exported(
    sandbox: Sandbox, kind: str
) -> None:
    # Given an instance or an Aurora cluster with only the automated snapshot RDS took
    db = _database(sandbox, kind)
    before = sandbox.snapshots(db.ident, cluster=db.cluster)

    # When the pipeline runs with source new-snapshot
    result = sandbox.run({**db.execution_input, "source": "new-snapshot"}, name="night-1")

    # Then one new snapshot of the right kind exists, tagged as the pipeline's, and was waited for
    out = _succeeded(result)
    snapshot = out["snapshot"]
    assert out["database"] == {"kind": kind, "id": db.ident}
    assert snapshot["created"] is True
    assert snapshot["source"] == "new-snapshot"
    assert f":{db.snapshot_kind}:{snapshot['id']}" in snapshot["arn"]
    assert sandbox.snapshots(db.ident, cluster=db.cluster) == sorted([*before, snapshot["id"]])
    tags = sandbox.client("rds").list_tags_for_resource(ResourceName=snapshot["arn"])["TagList"]
    assert {"Key": TAG_PIPELINE, "Value": sandbox.settings.pipeline_name} in tags
    assert {"Key": TAG_EXECUTION, "Value": "night-1"} in tags
    assert result.visits("DescribeSnapshotStatus") >= 2  # it was `creating` at first
    # And the export read exactly that snapshot and wrote every table into the prefix
    task_id = out["export"]["task_id"]
    assert _export_task(sandbox, task_id)["SourceArn"] == snapshot["arn"]
    _assert_only_this_export(sandbox, db.prefix, task_id)


# --- latest-automated ----------------------------------------------------------------------


def _seed_automated(sandbox: Sandbox, db: Database) -> str:
    """Automated snapshots of several ages; returns the id latest-automated must pick."""
    # the one moto took when the database was created becomes 6 hours old
    sandbox.clock.advance(6 * 3600)
    sandbox.add_automated_snapshot(db.ident, age_hours=30, cluster=db.cluster)
    expected = sandbox.add_automated_snapshot(db.ident, age_hours=2, cluster=db.cluster)
    # newer, but still being taken: must be ignored
    sandbox.add_automated_snapshot(db.ident, age_hours=0.5, cluster=db.cluster, status="creating")
    return expected


@pytest.mark.parametrize("kind", KINDS)
def test_latest_automated_exports_the_newest_available_one_and_creates_nothing(
    sandbox: Sandbox, kind: str
) -> None:
    # Given automated snapshots 30 h, 6 h and 2 h old, and a newer one still `creating`
    db = _database(sandbox, kind)
    expected = _seed_automated(sandbox, db)
    before = sandbox.snapshots(db.ident, cluster=db.cluster)

    # When the pipeline runs with source latest-automated
    result = sandbox.run({**db.execution_input, "source": "latest-automated"})

    # Then it exported the newest *available* one, 2 h old
    out = _succeeded(result)
    assert out["snapshot"]["id"] == expected
    assert out["snapshot"]["created"] is False
    assert out["snapshot"]["source"] == "latest-automated"
    # And created no snapshot, and deleted none
    assert sandbox.snapshots(db.ident, cluster=db.cluster) == before
    assert out["snapshots_pruned"] == []
    # And did not wait for a snapshot at all
    assert result.visits("WaitForSnapshot") == 0
    assert result.visits("DescribeSnapshotStatus") == 0
    assert out["polls"]["snapshot"] == 0
    # And its export task id is valid for RDS although the snapshot id starts with "rds:"
    task_id = out["export"]["task_id"]
    assert expected.startswith("rds:")
    assert naming.is_export_task_id(task_id)
    assert ":" not in task_id
    assert _export_task(sandbox, task_id)["SourceArn"] == out["snapshot"]["arn"]
    _assert_only_this_export(sandbox, db.prefix, task_id)


@pytest.mark.parametrize("kind", KINDS)
def test_latest_automated_without_an_available_snapshot_is_source_not_found(
    sandbox: Sandbox, kind: str
) -> None:
    # Given a database whose only automated snapshot is still being taken
    db = _database(sandbox, kind)
    backend = rds_backends[ACCOUNT][REGION]
    table = backend.cluster_snapshots if db.cluster else backend.database_snapshots
    for ident in sandbox.snapshots(db.ident, cluster=db.cluster):  # moto's creation-time one
        del table[ident]
    sandbox.clock.advance(3600)
    creating = sandbox.add_automated_snapshot(
        db.ident, age_hours=0.2, cluster=db.cluster, status="creating"
    )

    # When the pipeline runs with source latest-automated
    result = sandbox.run({**db.execution_input, "source": "latest-automated"})

    # Then it fails SourceNotFound, saying what it looked for and what it found
    assert result.status == "FAILED"
    assert result.error == "SourceNotFound"
    assert result.cause is not None
    assert f"no available automated snapshot of {kind} {db.ident}" in result.cause
    assert f"{creating} (creating)" in result.cause
    # And nothing was created or written
    assert sandbox.snapshots(db.ident, cluster=db.cluster) == [creating]
    assert sandbox.listing() == {}


# --- a named snapshot ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_named_snapshot_of_the_configured_database_is_exported_and_kept(
    sandbox: Sandbox, kind: str
) -> None:
    # Given a manual snapshot taken by hand before a migration
    db = _database(sandbox, kind)
    arn = _manual_snapshot(sandbox, db, "before-migration")
    before = sandbox.snapshots(db.ident, cluster=db.cluster)

    # When the pipeline exports it by name
    result = sandbox.run(
        {**db.execution_input, "source": "snapshot", "snapshot_identifier": "before-migration"}
    )

    # Then that snapshot was exported, without creating or waiting for another one
    out = _succeeded(result)
    assert out["snapshot"]["id"] == "before-migration"
    assert out["snapshot"]["arn"] == arn
    assert out["snapshot"]["created"] is False
    assert result.visits("DescribeSnapshotStatus") == 0
    task_id = out["export"]["task_id"]
    assert task_id.startswith("before-migration-")
    assert _export_task(sandbox, task_id)["SourceArn"] == arn
    _assert_only_this_export(sandbox, db.prefix, task_id)
    # And it is still there afterwards: it carries no pipeline tag, retention leaves it alone
    assert sandbox.snapshots(db.ident, cluster=db.cluster) == before


def _refused(result: RunResult, error: str) -> str:
    assert result.status == "FAILED", result.output
    assert result.error == error, result.cause
    assert result.cause is not None
    return result.cause


@pytest.mark.parametrize("kind", KINDS)
def test_named_snapshot_is_refused_unless_it_is_one_of_the_configured_database(
    sandbox: Sandbox, kind: str
) -> None:
    # Given the configured database, a second database of the same kind with a snapshot
    # `other-snap`, and an instance snapshot `instance-snap` of the fixture's instance `mydb`
    db = _database(sandbox, kind)
    if db.cluster:
        sandbox.add_cluster("othercluster")
        other = Database("cluster", "othercluster", "exports/othercluster", {})
    else:
        sandbox.add_instance("otherdb")
        other = Database("instance", "otherdb", "exports/otherdb", {})
    _manual_snapshot(sandbox, other, "other-snap")
    _manual_snapshot(sandbox, Database("instance", "mydb", "exports/mydb", {}), "instance-snap")
    before = {d.ident: sandbox.snapshots(d.ident, cluster=d.cluster) for d in (db, other)}

    def run(name: str) -> RunResult:
        return sandbox.run(
            {**db.execution_input, "source": "snapshot", "snapshot_identifier": name}
        )

    # When it is asked for another database's snapshot
    # Then it fails SourceNotFound, naming the snapshot and both databases
    cause = _refused(run("other-snap"), "SourceNotFound")
    assert f"snapshot_identifier other-snap is a snapshot of {other.ident}" in cause
    assert f"not of the configured {kind} {db.ident}" in cause

    # When it is asked for a snapshot that does not exist
    # Then it fails SourceNotFound, naming the snapshot, the kind looked for and the database
    cause = _refused(run("no-such-snapshot"), "SourceNotFound")
    assert f"snapshot_identifier no-such-snapshot: no db-{db.snapshot_kind} of that name" in cause
    assert f"configured database is {kind} {db.ident}" in cause

    if db.cluster:
        # When a cluster is configured and an instance snapshot is named
        # Then it is not found either: a cluster exports only cluster snapshots
        cause = _refused(run("instance-snap"), "SourceNotFound")
        assert "snapshot_identifier instance-snap: no db-cluster-snapshot of that name" in cause

    # And nothing was exported, created or deleted
    assert sandbox.listing() == {}
    assert {d.ident: sandbox.snapshots(d.ident, cluster=d.cluster) for d in (db, other)} == before


# --- Aurora member instances ---------------------------------------------------------------


def test_an_aurora_member_instance_is_refused_with_a_pointer_to_its_cluster(
    sandbox: Sandbox,
) -> None:
    # Given an Aurora cluster with one member instance (moto keeps DBClusterIdentifier on it)
    sandbox.add_cluster("mycluster")
    sandbox.client("rds").create_db_instance(
        DBInstanceIdentifier="mycluster-writer",
        DBClusterIdentifier="mycluster",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    member = sandbox.client("rds").describe_db_instances(DBInstanceIdentifier="mycluster-writer")
    assert member["DBInstances"][0]["DBClusterIdentifier"] == "mycluster"
    cluster_before = sandbox.snapshots("mycluster", cluster=True)
    instance_before = sandbox.snapshots("mycluster-writer")
    member_input = {"db_instance_identifier": "mycluster-writer", "s3_prefix": "exports/writer"}

    for source in (
        {"source": "new-snapshot"},
        {"source": "latest-automated"},
        {"source": "snapshot", "snapshot_identifier": "any-snapshot"},
    ):
        # When the member instance is given as the database, with any source
        result = sandbox.run({**member_input, **source})

        # Then the run fails InvalidInput, pointing at db_cluster_identifier
        cause = _refused(result, "InvalidInput")
        assert "member of Aurora cluster mycluster" in cause, source
        assert "db_cluster_identifier=mycluster" in cause, source

    # And no snapshot was created, nothing was written
    assert sandbox.snapshots("mycluster", cluster=True) == cluster_before
    assert sandbox.snapshots("mycluster-writer") == instance_before
    assert sandbox.listing() == {}
