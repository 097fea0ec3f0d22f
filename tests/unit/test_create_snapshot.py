"""create_snapshot (CreateSnapshot), called directly on moto's RDS: which snapshot each source
resolves to, and what it refuses. moto makes snapshots `available` at once; creation times are
set in its backend so the order does not depend on when the test ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.rds.models import rds_backends

from rds_s3_export import naming
from rds_s3_export.errors import SnapshotFailed, SourceNotFound
from rds_s3_export.rds import TAG_EXECUTION, TAG_PIPELINE
from rds_s3_export.steps import create_snapshot

ACCOUNT, REGION = "123456789012", "us-east-1"
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def _snapshot(
    database: str,
    ident: str,
    age_hours: float,
    *,
    cluster: bool = False,
    automated: bool = True,
    status: str = "available",
) -> str:
    backend = rds_backends[ACCOUNT][REGION]
    kind = "automated" if automated else "manual"
    if cluster:
        snap: Any = backend.create_db_cluster_snapshot(database, ident, snapshot_type=kind)
    else:
        snap = backend.create_db_snapshot(database, ident, snapshot_type=kind)
    snap.created = (NOW - timedelta(hours=age_hours)).replace(tzinfo=None)
    snap.status = status
    return ident


def _config(kind: str = "instance", **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "database_kind": kind,
        "database_id": "mycluster" if kind == "cluster" else "mydb",
        "source": "new-snapshot",
        "snapshot_identifier": None,
        "snapshot_prefix": "nightly",
        "dry_run": False,
        "pipeline_name": "rds-s3-export",
        "snapshot_timeout_seconds": 3600,
        "poll": {"min_seconds": 30, "max_seconds": 300},
    }
    config.update(changes)
    return config


def _plan(execution: str = "run-1") -> dict[str, Any]:
    return {
        "execution_name": execution,
        "started_at": NOW.isoformat(),
        "snapshot_id": naming.snapshot_id("nightly", NOW),
        "run_suffix": naming.run_suffix(f"arn:execution:{execution}"),
    }


# --- latest-automated ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_latest_automated_is_the_newest_available_automated_snapshot(rds: Any, kind: str) -> None:
    # Given automated snapshots 30 h and 3 h old, a newer one still creating, a newer manual one
    cluster = kind == "cluster"
    db = "mycluster" if cluster else "mydb"
    _snapshot(db, f"rds:{db}-old", 30, cluster=cluster)
    expected = _snapshot(db, f"rds:{db}-newest-available", 3, cluster=cluster)
    _snapshot(db, f"rds:{db}-still-creating", 0.5, cluster=cluster, status="creating")
    _snapshot(db, "manual-newer", 1, cluster=cluster, automated=False)

    # When the source is resolved
    found = create_snapshot.latest_automated(_config(kind, source="latest-automated"))

    # Then it is the newest available automated one
    assert found["id"] == expected
    assert found["type"] == "automated"


def test_latest_automated_ignores_other_databases(rds: Any) -> None:
    # Given the only automated snapshots belong to another instance
    rds.create_db_instance(
        DBInstanceIdentifier="otherdb",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
    )
    rds_backends[ACCOUNT][REGION].database_snapshots.clear()
    _snapshot("otherdb", "rds:otherdb-1", 1)

    # When latest-automated is resolved for mydb, Then there is none to be found
    with pytest.raises(SourceNotFound, match="no available automated snapshot of instance mydb"):
        create_snapshot.latest_automated(_config(source="latest-automated"))


def test_latest_automated_without_an_available_one_says_what_it_found(rds: Any) -> None:
    # Given one automated snapshot still being taken and one failed
    _snapshot("mydb", "rds:mydb-a", 1, status="creating")
    _snapshot("mydb", "rds:mydb-b", 20, status="failed")

    # When it is resolved, Then SourceNotFound lists them with their statuses
    with pytest.raises(SourceNotFound) as raised:
        create_snapshot.latest_automated(_config(source="latest-automated"))
    message = str(raised.value)
    assert "rds:mydb-a (creating)" in message
    assert "rds:mydb-b (failed)" in message
    assert "backup retention" in message


def test_latest_automated_yields_a_valid_export_task_id(rds: Any) -> None:
    # Given an automated snapshot, whose id starts with "rds:"
    ident = _snapshot("mydb", "rds:mydb-2026-03-04-03-10", 2)

    # When the source is resolved in full
    source = create_snapshot.resolve(
        {"config": _config(source="latest-automated"), "plan": _plan()}
    )

    # Then nothing was created, the snapshot is ready, and the task id is valid for RDS
    assert source["snapshot_id"] == ident
    assert source["created"] is False
    assert source["status"]["state"] == "done"
    assert naming.is_export_task_id(source["export_task_id"])
    assert source["export_task_id"].startswith("rds-mydb-2026-03-04-03-10-")


# --- a named snapshot ----------------------------------------------------------------------


def test_named_snapshot_of_the_database_is_found_case_insensitively(rds: Any) -> None:
    # Given a manual snapshot of mydb, and a configuration that spells the instance in capitals
    _snapshot("mydb", "before-upgrade", 5, automated=False)
    config = _config(database_id="MyDB", source="snapshot", snapshot_identifier="before-upgrade")

    # When it is resolved, Then it is that snapshot (RDS identifiers ignore case)
    assert create_snapshot.named(config)["id"] == "before-upgrade"


def test_named_snapshot_of_another_database_is_source_not_found(rds: Any) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier="otherdb",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
    )
    _snapshot("otherdb", "their-snapshot", 5, automated=False)
    config = _config(source="snapshot", snapshot_identifier="their-snapshot")
    with pytest.raises(SourceNotFound, match="is a snapshot of otherdb, not of the configured"):
        create_snapshot.named(config)


@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_named_snapshot_that_does_not_exist_is_source_not_found(rds: Any, kind: str) -> None:
    config = _config(kind, source="snapshot", snapshot_identifier="nope")
    expected = "db-cluster-snapshot" if kind == "cluster" else "db-snapshot"
    with pytest.raises(SourceNotFound, match=f"no {expected} of that name exists"):
        create_snapshot.named(config)


def test_a_named_automated_snapshot_can_be_exported(rds: Any) -> None:
    # Given an automated snapshot named explicitly
    ident = _snapshot("mydb", "rds:mydb-2026-03-01-00-00", 50)
    config = _config(source="snapshot", snapshot_identifier=ident)

    # When resolved in full, Then it is used and its export task id is valid
    source = create_snapshot.resolve({"config": config, "plan": _plan()})
    assert source["snapshot_id"] == ident
    assert naming.is_export_task_id(source["export_task_id"])


def test_a_named_snapshot_that_failed_is_snapshot_failed(rds: Any) -> None:
    _snapshot("mydb", "broken", 5, automated=False, status="failed")
    config = _config(source="snapshot", snapshot_identifier="broken")
    with pytest.raises(SnapshotFailed, match="broken is failed"):
        create_snapshot.resolve({"config": config, "plan": _plan()})


# --- new-snapshot --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_new_snapshot_is_created_with_the_pipeline_tags(rds: Any, kind: str) -> None:
    # When a new snapshot is resolved
    source = create_snapshot.resolve({"config": _config(kind), "plan": _plan("run-1")})

    # Then it exists, named from the start time, tagged with the pipeline and the execution
    assert source["snapshot_id"] == "nightly-2026-03-04-05-06"
    assert source["kind"] == ("db-cluster-snapshot" if kind == "cluster" else "db-snapshot")
    assert source["created"] is True
    tags = rds.list_tags_for_resource(ResourceName=source["snapshot_arn"])["TagList"]
    assert {"Key": TAG_PIPELINE, "Value": "rds-s3-export"} in tags
    assert {"Key": TAG_EXECUTION, "Value": "run-1"} in tags


def test_a_retry_adopts_its_own_snapshot_and_another_run_gets_its_own_id(rds: Any) -> None:
    # Given run-1 created its snapshot
    first = create_snapshot.resolve({"config": _config(), "plan": _plan("run-1")})

    # When run-1 is retried, Then it adopts that snapshot
    again = create_snapshot.resolve({"config": _config(), "plan": _plan("run-1")})
    assert again["snapshot_id"] == first["snapshot_id"]
    assert again["adopted"] is True
    assert again["created"] is False

    # When another run starts in the same minute, Then it gets the id with its run suffix
    other = create_snapshot.resolve({"config": _config(), "plan": _plan("run-2")})
    assert other["snapshot_id"] == f"{first['snapshot_id']}-{_plan('run-2')['run_suffix']}"
    assert other["created"] is True
