"""prune_snapshots: which snapshots retention may delete (pure rules), and the handler on moto's
RDS. "Own" = manual, of the configured database, named `<snapshot_prefix>-YYYY-mm-dd-HH-MM`
(optionally `-<run suffix>`) and tagged with the pipeline's name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.rds.models import rds_backends

from rds_s3_export import clock
from rds_s3_export.errors import PipelineError
from rds_s3_export.rds import TAG_EXECUTION, TAG_PIPELINE
from rds_s3_export.steps import prune_snapshots

ACCOUNT, REGION = "123456789012", "us-east-1"
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


# --- the id rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ident", "own"),
    [
        ("nightly-2026-03-04-05-06", True),
        ("nightly-2026-03-04-05-06-0a1b2c", True),  # another run took that minute
        ("nightly-full-2026-03-04-05-06", False),  # another configuration's prefix
        ("nightly-2026-03-04-05-06-copy", False),
        ("nightly-2026-03-04-05", False),
        ("nightly-before-upgrade", False),
        ("nightlyx-2026-03-04-05-06", False),
        ("other-2026-03-04-05-06", False),
        ("rds:nightly-2026-03-04-05-06", False),
        ("xnightly-2026-03-04-05-06", False),
    ],
)
def test_only_ids_the_pipeline_gives_match_its_prefix(ident: str, own: bool) -> None:
    assert bool(prune_snapshots.own_id_pattern("nightly").match(ident)) is own


def test_the_prefix_is_matched_as_rds_stores_it_in_lower_case() -> None:
    assert prune_snapshots.own_id_pattern("Nightly.DB").match("nightly.db-2026-03-04-05-06")
    assert not prune_snapshots.own_id_pattern("Nightly.DB").match("nightlyxdb-2026-03-04-05-06")


# --- the selection rule --------------------------------------------------------------------


def _snap(ident: str, age_days: float) -> dict[str, Any]:
    return {
        "id": ident,
        "arn": f"arn:aws:rds:us-east-1:123456789012:snapshot:{ident}",
        "created": clock.isoformat(NOW - timedelta(days=age_days)),
    }


# deliberately not in age order, and ids that sort differently from their age
SNAPS = [_snap("b", 2), _snap("e", 0), _snap("a", 3), _snap("d", 1), _snap("c", 4)]


def _ids(selected: list[dict[str, Any]]) -> list[str]:
    return sorted(s["id"] for s in selected)


@pytest.mark.parametrize(
    ("keep", "doomed"),
    [(0, ["a", "b", "c", "d"]), (1, ["a", "b", "c", "d"]), (2, ["a", "b", "c"]), (5, []), (9, [])],
)
def test_everything_beyond_the_newest_keep_is_selected_by_creation_time(
    keep: int, doomed: list[str]
) -> None:
    # `e` is the newest and the one just exported: never selected
    assert _ids(prune_snapshots.select_for_deletion(SNAPS, keep, "e", set())) == doomed


def test_the_snapshot_just_exported_is_never_selected_even_when_old() -> None:
    assert _ids(prune_snapshots.select_for_deletion(SNAPS, 0, "c", set())) == ["a", "b", "d", "e"]


def test_a_snapshot_a_running_export_reads_is_never_selected() -> None:
    in_use = {_snap("a", 3)["arn"]}
    assert _ids(prune_snapshots.select_for_deletion(SNAPS, 0, "e", in_use)) == ["b", "c", "d"]


# --- the handler on moto -------------------------------------------------------------------


def _create(rds: Any, ident: str, age_days: float, pipeline: str | None = "rds-s3-export") -> str:
    tags = [] if pipeline is None else [{"Key": TAG_PIPELINE, "Value": pipeline}]
    tags += [{"Key": TAG_EXECUTION, "Value": "earlier"}] if pipeline else []
    rds.create_db_snapshot(DBInstanceIdentifier="mydb", DBSnapshotIdentifier=ident, Tags=tags)
    snap = rds_backends[ACCOUNT][REGION].database_snapshots[ident]
    snap.created = (NOW - timedelta(days=age_days)).replace(tzinfo=None)
    return ident


def _event(keep: int | str, current: str) -> dict[str, Any]:
    return {
        "config": {
            "database_kind": "instance",
            "database_id": "mydb",
            "snapshot_prefix": "nightly",
            "pipeline_name": "rds-s3-export",
            "keep_snapshots": keep,
        },
        "source": {"snapshot_id": current},
    }


def test_prune_deletes_only_own_snapshots_beyond_keep(rds: Any) -> None:
    # Given three own snapshots and look-alikes that are not the pipeline's own
    current = _create(rds, "nightly-2026-03-04-05-06", 0)
    older = _create(rds, "nightly-2026-03-03-05-06", 1)
    oldest = _create(rds, "nightly-2026-03-02-05-06-0a1b2c", 2)
    untagged = _create(rds, "nightly-2026-03-01-05-06", 3, pipeline=None)
    foreign = _create(rds, "nightly-2026-02-28-05-06", 4, pipeline="another-stack")
    other_prefix = _create(rds, "nightly-full-2026-02-27-05-06", 5)

    # When pruned with keep_snapshots 1
    result = prune_snapshots.prune(_event(1, current))

    # Then the two older own snapshots are deleted, everything else is left
    assert sorted(result["deleted"]) == sorted([older, oldest])
    assert result["kept"] == [current]
    assert result["warnings"] == []
    left = {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]}
    assert {current, untagged, foreign, other_prefix} <= left
    assert not {older, oldest} & left


def test_prune_with_keep_all_deletes_nothing(rds: Any) -> None:
    current = _create(rds, "nightly-2026-03-04-05-06", 0)
    older = _create(rds, "nightly-2026-03-03-05-06", 1)
    result = prune_snapshots.prune(_event("all", current))
    assert result["deleted"] == []
    assert 'keep_snapshots is "all"' in result["skipped"]
    left = {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]}
    assert {current, older} <= left


def test_prune_never_deletes_automated_snapshots(rds: Any) -> None:
    # Given an automated snapshot whose id even follows the own pattern
    backend = rds_backends[ACCOUNT][REGION]
    auto = backend.create_db_snapshot("mydb", "nightly-2026-03-01-00-00", snapshot_type="automated")
    auto.tags = [{"Key": TAG_PIPELINE, "Value": "rds-s3-export"}]
    current = _create(rds, "nightly-2026-03-04-05-06", 0)

    # When pruned with keep 0, Then the automated one is left alone
    assert prune_snapshots.prune(_event(0, current))["deleted"] == []
    assert "nightly-2026-03-01-00-00" in backend.database_snapshots


def test_a_listing_failure_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given RDS cannot be listed
    def fail(config: dict[str, Any]) -> list[dict[str, Any]]:
        raise PipelineError("describe_db_snapshots failed: AccessDenied")

    monkeypatch.setattr(prune_snapshots, "own_snapshots", fail)

    # When pruned, Then nothing is deleted and the failure is a warning, not an exception
    result = prune_snapshots.prune(_event(0, "nightly-2026-03-04-05-06"))
    assert result["deleted"] == []
    assert result["warnings"] == [
        "could not list snapshots to prune: describe_db_snapshots failed: AccessDenied"
    ]
