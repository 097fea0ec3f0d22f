"""`source: backup`: the newest completed recovery point of the configured database in the
stack's AWS Backup vault, or a named one, for an instance and an Aurora cluster, run end to end
in the sandbox. AWS Backup's recovery points are simulated (sandbox/backup_sim.py: moto 5.2.5
has no recovery points); each is a real `awsbackup:job-<id>` snapshot in moto's RDS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import events
from sandbox.backup_sim import BackupSimulation
from sandbox.runtime import RunResult, Sandbox, Settings
from tests.fixtures.aws_docs import rds_events
from tests.helpers import several

VAULT = "nightly"
MYDB = {"db_instance_identifier": "mydb"}
CLUSTER = {
    "db_cluster_identifier": "mycluster",
    "snapshot_prefix": "mycluster-nightly",
    "s3_prefix": "exports/mycluster",
}


@pytest.fixture
def settings() -> Settings:
    return several(CLUSTER, backup_vault=VAULT, snapshot_events=True)


@pytest.fixture
def backup(sandbox: Sandbox) -> Iterator[BackupSimulation]:
    with BackupSimulation(sandbox.clock).installed() as simulation:
        yield simulation


def _out(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.name}: {result.error}: {result.cause}"
    assert result.output is not None
    return result.output


def _database(sandbox: Sandbox, kind: str) -> tuple[str, dict[str, Any], str]:
    if kind == "cluster":
        sandbox.add_cluster("mycluster")
        return "mycluster", dict(CLUSTER), "exports/mycluster"
    return "mydb", {"db_instance_identifier": "mydb"}, "exports/mydb"


@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_the_newest_completed_recovery_point_in_the_vault_is_exported(
    sandbox: Sandbox, backup: BackupSimulation, kind: str
) -> None:
    # Given recovery points of the database 30 h and 2 h old, a newer one still RUNNING, one
    # in another vault, and one of another database
    ident, run_input, prefix = _database(sandbox, kind)
    cluster = kind == "cluster"
    backup.add_recovery_point(ident, VAULT, cluster=cluster, age_hours=30)
    expected = backup.add_recovery_point(ident, VAULT, cluster=cluster, age_hours=2)
    backup.add_recovery_point(ident, VAULT, cluster=cluster, status="RUNNING")
    backup.add_recovery_point(ident, "weekly", cluster=cluster, age_hours=1)
    sandbox.add_instance("otherdb")
    backup.add_recovery_point("otherdb", VAULT, age_hours=1)

    # When the pipeline runs with source backup
    out = _out(sandbox.run({**run_input, "source": "backup"}))

    # Then it exported the newest COMPLETED recovery point of this database in this vault
    assert out["snapshot"]["arn"] == expected.arn
    assert out["snapshot"]["id"].startswith("awsbackup:job-")
    assert out["snapshot"]["source"] == "backup" and out["snapshot"]["created"] is False
    task = sandbox.client("rds").describe_export_tasks(
        ExportTaskIdentifier=out["export"]["task_id"]
    )
    assert task["ExportTasks"][0]["SourceArn"] == expected.arn
    assert sandbox.export_folders(prefix) == [out["export"]["task_id"]]
    manifest = sandbox.manifest(prefix)
    assert manifest is not None and manifest["snapshot"]["arn"] == expected.arn

    # And a second run finds nothing new: up to date
    again = _out(sandbox.run({**run_input, "source": "backup"}))
    assert (again["status"], again["up_to_date"]) == ("UP_TO_DATE", True)


def test_a_named_recovery_point_must_be_a_completed_one_of_the_database_in_the_vault(
    sandbox: Sandbox, backup: BackupSimulation
) -> None:
    elsewhere = backup.add_recovery_point("mydb", "weekly")
    running = backup.add_recovery_point("mydb", VAULT, status="RUNNING")
    good = backup.add_recovery_point("mydb", VAULT, age_hours=5)
    for point, says in (
        (elsewhere, "is not a recovery point in vault nightly"),
        (running, "is RUNNING"),
    ):
        result = sandbox.run({**MYDB, "source": "backup", "recovery_point_arn": point.arn})
        assert (result.status, result.error) == ("FAILED", "SourceNotFound"), result.output
        assert says in (result.cause or "") and point.arn in (result.cause or "")
    out = _out(sandbox.run({**MYDB, "source": "backup", "recovery_point_arn": good.arn}))
    assert out["snapshot"]["arn"] == good.arn


def test_without_a_recovery_point_the_run_says_what_it_looked_for(
    sandbox: Sandbox, backup: BackupSimulation
) -> None:
    backup.add_recovery_point("mydb", VAULT, status="RUNNING")
    result = sandbox.run({**MYDB, "source": "backup"})
    assert (result.status, result.error) == ("FAILED", "SourceNotFound")
    cause = result.cause or ""
    assert "no COMPLETED recovery point in vault nightly for instance mydb" in cause
    assert "(RUNNING)" in cause
    assert sandbox.listing() == {}


def test_one_night_of_every_trigger_gives_one_export(  # the night
    sandbox: Sandbox, backup: BackupSimulation
) -> None:
    # Given the night's automated snapshot of mydb (03:10), then its AWS Backup job (an hour
    # later), completed into the vault
    sandbox.clock.advance(3 * 3600)  # after the snapshot moto took when it made the database
    automated = sandbox.add_automated_snapshot("mydb", age_hours=1)
    point = backup.add_recovery_point("mydb", VAULT)
    sandbox.add_instance("mydb-2")
    sandbox.clock.advance(600)
    tasks_before = {
        t["ExportTaskIdentifier"]
        for t in sandbox.client("rds").describe_export_tasks()["ExportTasks"]
    }

    # When the job's event, RDS's event of the automated snapshot arriving late (events
    # "might be out of sequence"), RDS's event of a near miss (mydb-2's automated snapshot,
    # which mydb's rule matches by prefix), the job's event again, and the schedule (source
    # backup: the catch-up) all arrive in one night
    near_miss = sandbox.add_automated_snapshot("mydb-2", age_hours=0)
    starts: list[Callable[[], list[str]]] = [
        lambda: events.deliver(sandbox, backup.job_event(point), name_prefix="backup-job"),
        lambda: events.deliver(
            sandbox, rds_events.created("instance", "automated", automated), "late"
        ),
        lambda: events.deliver(
            sandbox, rds_events.created("instance", "automated", near_miss), "rds"
        ),
        lambda: events.deliver(sandbox, backup.job_event(point), name_prefix="backup-again"),
        lambda: [sandbox.start({**MYDB, "source": "backup"}, name="nightly")],
    ]
    results = []
    for start in starts:  # one after the other (same-minute starts: test_each_snapshot_once)
        started = start()
        assert len(started) == 1
        results.append(sandbox.wait(started[0]))

    # Then exactly one export, of the recovery point, and the manifest names it
    statuses = [_out(r)["status"] for r in results]
    assert statuses == [
        "SUCCEEDED",
        "UP_TO_DATE",
        "NOT_THIS_DATABASE",
        "UP_TO_DATE",
        "UP_TO_DATE",
    ]
    assert "came late or out of order" in _out(results[1])["reason"]
    out = _out(results[0])
    assert out["snapshot"]["arn"] == point.arn
    tasks = {
        t["ExportTaskIdentifier"]
        for t in sandbox.client("rds").describe_export_tasks()["ExportTasks"]
    }
    assert tasks - tasks_before == {out["export"]["task_id"]}
    manifest = sandbox.manifest("exports/mydb")
    assert manifest is not None and manifest["snapshot"]["arn"] == point.arn
