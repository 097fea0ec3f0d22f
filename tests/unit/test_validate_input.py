"""validate_input's look at the database, on moto's RDS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.rds.models import rds_backends

from rds_s3_export.errors import InvalidInput, SourceNotFound
from rds_s3_export.inputs import build_config
from rds_s3_export.steps import validate_input

ACCOUNT, REGION = "123456789012", "us-east-1"
DEFAULTS = {"snapshot_prefix": "mysnapshot", "s3_prefix": "exports/writer"}


@pytest.mark.parametrize("source", ["new-snapshot", "latest-automated", "snapshot"])
def test_an_aurora_member_instance_is_refused_for_every_source(rds: Any, source: str) -> None:
    # Given an instance that is a member of cluster mycluster
    config = build_config(
        {
            "db_instance_identifier": "writer",
            "source": source,
            **({"snapshot_identifier": "rds:writer-1"} if source == "snapshot" else {}),
        },
        DEFAULTS,
        {},
    )
    backend = rds_backends[ACCOUNT][REGION]
    before = (sorted(backend.database_snapshots), sorted(backend.cluster_snapshots))

    # When it is checked, Then InvalidInput points at db_cluster_identifier, nothing created
    with pytest.raises(InvalidInput, match="give db_cluster_identifier=mycluster instead"):
        validate_input.check_database(config)
    assert (sorted(backend.database_snapshots), sorted(backend.cluster_snapshots)) == before


def test_the_cluster_itself_passes(rds: Any) -> None:
    config = build_config({"db_cluster_identifier": "mycluster"}, DEFAULTS, {})
    validate_input.check_database(config)  # raises nothing


def test_a_missing_database_is_source_not_found(rds: Any) -> None:
    config = build_config({"db_instance_identifier": "nosuchdb"}, DEFAULTS, {})
    with pytest.raises(SourceNotFound, match="nosuchdb"):
        validate_input.check_database(config)


class _OneOtherRun:
    """ListExecutions / DescribeExecution of a state machine where one other run is RUNNING."""

    def __init__(self, name: str, start: Any) -> None:
        arn = f"{_SM.replace(':stateMachine:', ':execution:')}:{name}"
        self.item = {"executionArn": arn, "name": name, "startDate": start, "status": "RUNNING"}

    def get_paginator(self, operation: str) -> _OneOtherRun:
        return self

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        return [{"executions": [self.item]}]

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"input": "{}"}


_SM = "arn:aws:states:us-east-1:123456789012:stateMachine:rds-s3-export"


@pytest.mark.parametrize(("other", "refused"), [("run-a", True), ("run-c", False)])
def test_the_recheck_orders_two_runs_of_one_millisecond_as_both_runs_see_them(
    monkeypatch: pytest.MonkeyPatch, other: str, refused: bool
) -> None:
    # Given this run "run-b", whose first check found no other run (the other one, started in
    # the same millisecond, was not listed yet), and that other run now listed as RUNNING
    from datetime import UTC, datetime

    from rds_s3_export import aws
    from rds_s3_export.errors import AlreadyRunning

    defaults = {"db_instance_identifier": "mydb", "snapshot_prefix": "p", "s3_prefix": "x/mydb"}
    monkeypatch.setenv("PIPELINE_DEFAULTS", json.dumps(defaults))
    monkeypatch.setenv("PIPELINE_SETTINGS", "{}")
    fake = _OneOtherRun(other, datetime(2026, 1, 1, 2, 15, 33, 627000, tzinfo=UTC))
    monkeypatch.setattr(aws, "client", lambda service: fake)
    config = build_config({}, defaults, {}).as_dict()
    event = {
        "recheck": {"config": config},
        "execution": {
            "id": f"{_SM.replace(':stateMachine:', ':execution:')}:run-b",
            "name": "run-b",
            "start_time": "2026-01-01T02:15:33.627400Z",
            "state_machine": _SM,
        },
    }
    # When this run rechecks (ConfirmNoOverlap), Then it yields exactly when the other run,
    # checking now, would go on: the one whose name sorts first goes on
    if refused:
        with pytest.raises(AlreadyRunning, match=f"execution {other} "):
            validate_input.lambda_handler(event, None)
    else:
        assert validate_input.lambda_handler(event, None) == {"checked": True}
