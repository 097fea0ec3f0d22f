"""The event triggers' patterns against AWS's own sample events (tests/fixtures/aws_docs):
those that must start an export, and near misses that must not. Matching is moto's EventBridge
pattern matcher (sandbox/events.py), not this project's code. The input each rule's target
sends is then validated as a run would validate it."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import PipelineConfig, load_config
from infra.triggers import Trigger, Where, triggers
from rds_s3_export import rules
from rds_s3_export.inputs import build_config
from sandbox.events import matches, render_input
from tests.fixtures.aws_docs import backup_events, rds_events

WHERE = Where(partition="aws", region=rds_events.REGION, account=rds_events.ACCOUNT)
BACKUP_WHERE = Where(partition="aws", region=backup_events.REGION, account=backup_events.ACCOUNT)
EVENTS_ON = {"snapshot_events": "true", "snapshot_events_manual": "true", "backup_vault": "nightly"}
CLUSTER = {
    "db_instance_identifier": "",
    "db_cluster_identifier": "mycluster",
    "snapshot_prefix": "mycluster-nightly",
    "s3_prefix": "exports/mycluster",
}


def _config(**context: Any) -> PipelineConfig:
    return load_config({**EVENTS_ON, **context})


def _started(found: list[Trigger], event: dict[str, Any]) -> list[str]:
    return [t.name for t in found if matches(t.pattern, event)]


def test_without_the_event_keys_there_is_no_trigger() -> None:
    assert triggers(load_config({}), WHERE) == []
    assert triggers(load_config({"snapshot_events": "false", "backup_vault": ""}), WHERE) == []


def test_manual_snapshot_events_need_snapshot_events() -> None:
    with pytest.raises(ValueError, match="snapshot_events_manual"):
        load_config({"snapshot_events_manual": "true"})
    with pytest.raises(ValueError, match="backup_vault"):
        load_config({"backup_vault": "my vault!"})


@pytest.mark.parametrize(
    "sample",
    [
        rds_events.DB_SNAPSHOT_DELETED,
        rds_events.DB_INSTANCE_FAILOVER,
        rds_events.DB_PARAMETER_GROUP,
        rds_events.DB_CLUSTER_SNAPSHOT_CREATING,
        backup_events.COMPLETED,
        backup_events.FAILED,
        backup_events.RUNNING,
    ],
    ids=["snapshot-deleted", "failover", "parameter-group", "cluster-creating", *"CFR"],
)
@pytest.mark.parametrize("database", ["instance", "cluster"])
def test_awss_own_samples_start_nothing(sample: dict[str, Any], database: str) -> None:
    # Given the stack with every event trigger, for an instance or a cluster
    config = _config(**(CLUSTER if database == "cluster" else {}))
    # When AWS's sample event arrives, as AWS prints it, Then no rule starts a run
    assert _started(triggers(config, WHERE) + triggers(config, BACKUP_WHERE), sample) == []


@pytest.mark.parametrize(
    ("kind", "snapshot", "snapshot_id", "expected"),
    [
        ("instance", "automated", "rds:mydb-2018-10-06-12-24", ["AutomatedSnapshot"]),
        ("instance", "manual", "before-migration", ["ManualSnapshot"]),
        ("cluster", "automated", "rds:mycluster-2018-10-06-12-24", ["AutomatedSnapshot"]),
        ("cluster", "manual", "before-migration", ["ManualSnapshot"]),
        # near misses: another database's automated snapshot, the pipeline's own manual one
        ("instance", "automated", "rds:otherdb-2018-10-06-12-24", []),
        ("instance", "manual", "mysnapshot-2018-10-06-12-24", []),
        ("cluster", "manual", "mycluster-nightly-2018-10-06-12-24", []),
        # a manual snapshot named like an automated one is still a manual event
        ("instance", "manual", "rds:mydb-2018-10-06-12-24", ["ManualSnapshot"]),
        # the prefix cannot tell mydb from mydb-2: the run checks (NOT_THIS_DATABASE)
        ("instance", "automated", "rds:mydb-2-2018-10-06-12-24", ["AutomatedSnapshot"]),
    ],
)
def test_snapshot_created_events_start_their_rule(
    kind: str, snapshot: str, snapshot_id: str, expected: list[str]
) -> None:
    config = _config(**(CLUSTER if kind == "cluster" else {}))
    event = rds_events.created(kind, snapshot, snapshot_id)
    assert _started(triggers(config, WHERE), event) == expected


@pytest.mark.parametrize(
    ("kind", "top"),
    [
        ("instance", {"account": "210987654321"}),
        ("instance", {"region": "eu-west-1"}),
        ("cluster", {"region": "eu-west-1"}),
    ],
)
def test_another_accounts_or_regions_snapshot_starts_nothing(
    kind: str, top: dict[str, str]
) -> None:
    config = _config(**(CLUSTER if kind == "cluster" else {}))
    ident = "rds:mycluster-2018-10-06-12-24" if kind == "cluster" else "rds:mydb-2018-10-06-12-24"
    assert (
        _started(triggers(config, WHERE), rds_events.created(kind, "automated", ident, **top)) == []
    )


def test_an_instance_event_never_starts_a_cluster_rule_and_back() -> None:
    instance_rules = triggers(_config(), WHERE)
    cluster_rules = triggers(_config(**CLUSTER), WHERE)
    assert (
        _started(cluster_rules, rds_events.created("instance", "automated", "rds:mycluster-1"))
        == []
    )
    assert _started(instance_rules, rds_events.created("cluster", "automated", "rds:mydb-1")) == []


def test_without_manual_opt_in_manual_snapshots_start_nothing() -> None:
    config = load_config({"snapshot_events": "true"})
    event = rds_events.created("instance", "manual", "before-migration")
    assert [t.name for t in triggers(config, WHERE)] == ["AutomatedSnapshot"]
    assert _started(triggers(config, WHERE), event) == []


@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_a_completed_backup_job_of_the_database_into_the_vault_starts_its_rule(kind: str) -> None:
    config = _config(**(CLUSTER if kind == "cluster" else {}))
    found = triggers(config, BACKUP_WHERE)
    ident = "mycluster" if kind == "cluster" else "mydb"
    arn_type = "cluster" if kind == "cluster" else "db"
    database_arn = f"arn:aws:rds:{backup_events.REGION}:{backup_events.ACCOUNT}:{arn_type}:{ident}"
    other_arn = database_arn.replace(f":{ident}", f":{ident}-2")
    # Then the completed job of this database into the vault starts the backup rule
    completed = backup_events.for_database(backup_events.COMPLETED, database_arn, "nightly")
    assert _started(found, completed) == ["BackupJob"]
    # And near misses do not: a job that failed or is running, of another database (even one
    # whose name starts with this one's), or into another vault
    for near_miss in (
        backup_events.for_database(backup_events.FAILED, database_arn, "nightly"),
        backup_events.for_database(backup_events.RUNNING, database_arn, "nightly"),
        backup_events.for_database(backup_events.COMPLETED, other_arn, "nightly"),
        backup_events.for_database(backup_events.COMPLETED, database_arn, "weekly"),
    ):
        assert _started(found, near_miss) == []


@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_the_rds_rules_input_is_a_valid_run_of_that_snapshot(kind: str) -> None:
    # Given an automated snapshot-created event of the configured database
    config = _config(**(CLUSTER if kind == "cluster" else {}))
    ident = "rds:mycluster-2018-10-06-12-24" if kind == "cluster" else "rds:mydb-2018-10-06-12-24"
    event = rds_events.created(kind, "automated", ident)
    (trigger,) = [t for t in triggers(config, WHERE) if matches(t.pattern, event)]
    # When the target renders its input
    execution_input = render_input(trigger, event)
    # Then it names the event's snapshot by ARN, says an event started it, and validates
    assert execution_input == {
        "source": "snapshot",
        "snapshot_arn": event["detail"]["SourceArn"],
        "trigger": "rds-event",
    }
    run = build_config(execution_input, config.pipeline_defaults(), config.pipeline_settings())
    assert (run.snapshot_identifier, run.snapshot_arn) == (ident, event["detail"]["SourceArn"])
    assert run.database_id == ("mycluster" if kind == "cluster" else "mydb")
    assert run.trigger in rules.TRIGGERS


def test_with_several_databases_each_rule_starts_a_run_of_its_own_database() -> None:
    config = _config(
        databases='[{"db_instance_identifier": "orders", "s3_prefix": "exports/orders"},'
        ' {"db_cluster_identifier": "billing", "s3_prefix": "exports/billing",'
        ' "snapshot_prefix": "billing-nightly"}]',
        snapshot_prefix="orders-nightly",
    )
    found = triggers(config, WHERE)
    assert len({t.name for t in found}) == len(found) == 6
    event = rds_events.created("cluster", "automated", "rds:billing-2018-10-06-12-24")
    (trigger,) = [t for t in found if matches(t.pattern, event)]
    execution_input = render_input(trigger, event)
    assert execution_input["db_cluster_identifier"] == "billing"
    assert execution_input["source"] == "snapshot"
    run = build_config(execution_input, config.pipeline_defaults(), config.pipeline_settings())
    assert run.s3_prefix == "exports/billing"


def test_a_database_of_source_backup_needs_the_vault() -> None:
    with pytest.raises(ValueError, match="backup_vault"):
        load_config({"source": "backup"})
    config = load_config({"source": "backup", "backup_vault": "nightly"})
    assert config.pipeline_settings()["backup_vault"] == "nightly"
    assert "backup_vault" not in load_config({}).pipeline_settings()  # unchanged without it
