"""Each snapshot is exported once, however many times its export is asked for.

A run whose snapshot is the one the prefix's manifest names ends `UP_TO_DATE` before it starts
anything (no snapshot, no export, no purge, no event); two runs at once see `AlreadyRunning`.
So RDS's snapshot events, AWS Backup's and the nightly schedule may all fire in one night and
give one export. Events arrive through the stack's own rules (sandbox/events.py matches AWS's
sample events, tests/fixtures/aws_docs, against infra/triggers.py's patterns)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import events
from sandbox.runtime import RunResult, Sandbox, Settings
from tests.fixtures.aws_docs import rds_events

PREFIX = "exports/mydb"
QUIET = {"UP_TO_DATE", "NOT_THIS_DATABASE"}
EXPORTING_STATES = {"StartExport", "PurgePrefix", "PublishManifest", "PruneSnapshots"}


@pytest.fixture
def settings() -> Settings:
    """The schedule exports the newest automated snapshot; automated-snapshot events are on."""
    return Settings(source="latest-automated", snapshot_events=True)


def _out(result: RunResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", f"{result.name}: {result.error}: {result.cause}"
    assert result.output is not None
    return result.output


def _world(sandbox: Sandbox) -> dict[str, Any]:
    """Everything a run could change: objects (with ETags), export tasks, snapshots, events."""
    tasks = sandbox.client("rds").describe_export_tasks()["ExportTasks"]
    return {
        "objects": sandbox.listing(),
        "tasks": sorted(t["ExportTaskIdentifier"] for t in tasks),
        "snapshots": sandbox.snapshots("mydb"),
        "events": len(sandbox.ready_events()),
    }


def _automated_event(sandbox: Sandbox, database: str = "mydb") -> tuple[str, dict[str, Any]]:
    """A new automated snapshot of `database`, and RDS's "automated snapshot created" event
    for it (AWS's sample, tests/fixtures/aws_docs/rds_events.py)."""
    sandbox.clock.advance(3600)  # newer than the one moto took when it made the database
    ident = sandbox.add_automated_snapshot(database, age_hours=0)
    return ident, rds_events.created("instance", "automated", ident)


def test_a_second_run_for_the_same_snapshot_is_up_to_date_and_changes_nothing(
    sandbox: Sandbox,
) -> None:
    # Given last night's export of the newest automated snapshot
    ident, _ = _automated_event(sandbox)
    first = _out(sandbox.run({}))
    assert first["snapshot"]["id"] == ident and first["up_to_date"] is False
    before = _world(sandbox)

    # When the schedule runs again before RDS takes another snapshot
    again = sandbox.run({})

    # Then it succeeds up to date, naming the snapshot and why
    out = _out(again)
    assert out["status"] == "UP_TO_DATE" and out["up_to_date"] is True
    assert out["snapshot"]["id"] == ident
    assert ident in out["reason"] and "_manifest.json" in out["reason"]
    # And it changed nothing: no snapshot, no export, no purge, no manifest, no event
    assert _world(sandbox) == before
    assert not EXPORTING_STATES & {s.name for s in again.states}


def test_a_dry_run_of_an_exported_snapshot_says_up_to_date(sandbox: Sandbox) -> None:
    _automated_event(sandbox)
    _out(sandbox.run({}))
    before = _world(sandbox)
    out = _out(sandbox.run({"dry_run": True}))
    assert (out["status"], out["up_to_date"], out["dry_run"]) == ("UP_TO_DATE", True, True)
    assert _world(sandbox) == before


@pytest.mark.parametrize("settings", [Settings()], ids=["new-snapshot"])
def test_new_snapshot_runs_are_never_up_to_date(sandbox: Sandbox) -> None:
    # Given the default source, a new snapshot each run
    first, second = _out(sandbox.run({})), _out(sandbox.run({}))
    # Then each run made and exported its own snapshot: the check changed nothing
    assert first["up_to_date"] is second["up_to_date"] is False
    assert first["snapshot"]["id"] != second["snapshot"]["id"]
    assert sandbox.export_folders(PREFIX) == [second["export"]["task_id"]]


def _start(sandbox: Sandbox, who: str, event: dict[str, Any]) -> str:
    if who == "schedule":
        return sandbox.start({}, name="schedule")
    (arn,) = events.deliver(sandbox, event, name_prefix=who)
    return arn


@pytest.mark.parametrize("together", [True, False], ids=["same-minute", "one-after-the-other"])
@pytest.mark.parametrize(
    "order",
    [("event", "schedule"), ("schedule", "event"), ("event", "again")],
    ids=["event-then-schedule", "schedule-then-event", "two-events"],
)
def test_events_and_the_schedule_for_one_snapshot_give_one_export(
    sandbox: Sandbox, order: tuple[str, str], together: bool
) -> None:
    # Given a new automated snapshot and RDS's event for it
    ident, event = _automated_event(sandbox)
    tasks_before = _world(sandbox)["tasks"]

    # When the two starts come in this order, in the same minute or one after the other
    if together:
        arns = [_start(sandbox, who, event) for who in order]
        results = [sandbox.wait(arn) for arn in arns]
    else:
        results = [sandbox.wait(_start(sandbox, who, event)) for who in order]

    # Then exactly one run exported, and the other saw AlreadyRunning or up_to_date
    exported = [r for r in results if r.status == "SUCCEEDED" and r.output["status"] == "SUCCEEDED"]
    assert len(exported) == 1, [(r.name, r.status, r.output, r.cause) for r in results]
    (other,) = [r for r in results if r is not exported[0]]
    if other.status == "FAILED":
        assert together and other.error == "AlreadyRunning", other.cause
        assert {s.name for s in other.states if s.type == "Task"} <= {
            "ValidateInput",
            "ConfirmNoOverlap",
        }
    else:
        assert _out(other)["status"] == "UP_TO_DATE", other.output
    # And that export is of the event's snapshot, the only new export, and the manifest's
    out = _out(exported[0])
    assert out["snapshot"]["id"] == ident
    new_tasks = sorted(set(_world(sandbox)["tasks"]) - set(tasks_before))
    assert new_tasks == [out["export"]["task_id"]]
    manifest = sandbox.manifest(PREFIX)
    assert manifest is not None
    assert manifest["snapshot"]["id"] == ident
    assert manifest["export_task_id"] == out["export"]["task_id"]


def test_an_event_for_another_databases_snapshot_ends_quietly(sandbox: Sandbox) -> None:
    # Given last night's export, and a database mydb-2 whose automated snapshot ids
    # (rds:mydb-2-<date>) start with mydb's prefix rds:mydb-
    _automated_event(sandbox)
    _out(sandbox.run({}))
    sandbox.add_instance("mydb-2")
    other, event = _automated_event(sandbox, "mydb-2")
    before = _world(sandbox)

    # When RDS's event for mydb-2's snapshot arrives: mydb's rule matches it
    (arn,) = events.deliver(sandbox, event)
    result = sandbox.wait(arn)

    # Then the run succeeds without exporting, saying whose snapshot it was (no alert)
    out = _out(result)
    assert (out["status"], out["up_to_date"]) == ("NOT_THIS_DATABASE", False)
    assert "is a snapshot of mydb-2, not of the configured instance mydb" in out["reason"]
    assert out["trigger"] == "rds-event"
    assert _world(sandbox) == before
    assert not EXPORTING_STATES & {s.name for s in result.states}
    assert other.startswith("rds:mydb-2-")


def test_the_same_snapshot_named_by_hand_for_another_database_still_fails(
    sandbox: Sandbox,
) -> None:
    # A run started by hand is told plainly (SourceNotFound), as before: only events are quiet
    sandbox.add_instance("mydb-2")
    other, event = _automated_event(sandbox, "mydb-2")
    result = sandbox.run({"source": "snapshot", "snapshot_arn": event["detail"]["SourceArn"]})
    assert (result.status, result.error) == ("FAILED", "SourceNotFound"), result.output
    assert "is a snapshot of mydb-2" in (result.cause or "")
    assert other.startswith("rds:mydb-2-")


def test_an_event_arn_of_another_region_is_not_exported(sandbox: Sandbox) -> None:
    # Given a snapshot of mydb here, and an input naming a snapshot of that name elsewhere
    ident, _ = _automated_event(sandbox)
    before = _world(sandbox)
    arn = f"arn:aws:rds:eu-west-1:123456789012:snapshot:{ident}"
    result = sandbox.run({"source": "snapshot", "snapshot_arn": arn, "trigger": "rds-event"})
    # Then the run does not export this region's snapshot of the same name
    out = _out(result)
    assert out["status"] == "NOT_THIS_DATABASE" and arn in out["reason"]
    assert _world(sandbox) == before
