"""ValidateInput: defaults merged in, every key checked, ids planned, overlapping runs refused.

Runs first, before anything is created. Its result replaces the state: `config` (the validated
configuration), `plan` (ids and times of this run) and `purge` (the purge loop's start state).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, naming, polling, settings
from rds_s3_export.errors import AlreadyRunning, InvalidInput, SourceNotFound
from rds_s3_export.inputs import Config, build_config
from rds_s3_export.log import bind, correlated, logger


def plan_run(config: Config, execution: dict[str, Any]) -> dict[str, Any]:
    """Ids and times of this run, derived from the execution (stable across retries)."""
    for key in ("id", "name", "start_time"):
        if not isinstance(execution.get(key), str):
            raise InvalidInput(f"execution context lacks {key} (state machine misconfigured)")
    started = clock.parse(execution["start_time"])
    return {
        "execution_id": execution["id"],
        "execution_name": execution["name"],
        "started_at": clock.isoformat(started),
        "snapshot_id": naming.snapshot_id(config.snapshot_prefix, started),
        "run_suffix": naming.run_suffix(execution["id"]),
    }


def check_database(config: Config) -> None:
    """The database exists, and an instance is not an Aurora cluster member (Aurora has only
    cluster snapshots, whatever the source: the input must name the cluster)."""
    rds = aws.client("rds")
    try:
        if config.database_kind == "cluster":
            rds.describe_db_clusters(DBClusterIdentifier=config.database_id)
            return
        found = rds.describe_db_instances(DBInstanceIdentifier=config.database_id)
    except ClientError as err:
        aws.raise_as(err, SourceNotFound, "describe", f"database {config.database_id}")
    for instance in found.get("DBInstances", []):
        cluster = instance.get("DBClusterIdentifier")
        if cluster:
            raise InvalidInput(
                f"db_instance_identifier {config.database_id} is a member of Aurora cluster "
                f"{cluster}; Aurora is exported from cluster snapshots: give "
                f"db_cluster_identifier={cluster} instead"
            )


def check_bucket_exists(config: Config) -> None:
    """The stack's export bucket can be listed under the prefix, checked on every run (and a
    dry run's promise that a real run would find it): a missing or unreadable bucket fails at
    once, before a snapshot is made. A misconfigured stack: InvalidInput naming the bucket."""
    bucket = settings.export_bucket()
    try:
        aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{config.s3_prefix}/", MaxKeys=1)
    except ClientError as err:
        aws.raise_as(
            err,
            InvalidInput,
            "s3:ListObjectsV2",
            f"export bucket s3://{bucket}/{config.s3_prefix}/",
        )


def _conflicts(mine: Config, other: Config) -> bool:
    return other.database_id == mine.database_id or other.s3_prefix == mine.s3_prefix


def _millis(moment: datetime) -> datetime:
    """`moment` cut to whole milliseconds, the precision ListExecutions reports. The context
    object's StartTime can be finer (microseconds); compared as is, two runs
    started within one millisecond would each see the other as the older and both refuse."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def check_not_running(config: Config, execution: dict[str, Any]) -> None:
    """Refuse to run beside an older execution for the same database or the same prefix.

    Every execution looks at the others still RUNNING; of two that overlap, the older one (by
    start time, then name) goes on and the younger fails fast with AlreadyRunning. No lock to
    leak: a finished, failed, timed-out or aborted execution is simply no longer RUNNING.
    Dry runs change nothing, so they neither block nor are blocked.
    """
    state_machine = execution.get("state_machine")
    if config.dry_run or not isinstance(state_machine, str):
        return
    sfn = aws.client("stepfunctions")
    my_key = (_millis(clock.parse(execution["start_time"])), execution["name"])
    try:
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=state_machine, statusFilter="RUNNING"
        ):
            for item in page.get("executions", []):
                if item["executionArn"] == execution["id"]:
                    continue
                if (_millis(item["startDate"]), item["name"]) >= my_key:
                    continue  # a younger run: it yields to this one
                detail = sfn.describe_execution(executionArn=item["executionArn"])
                _refuse_if_overlapping(config, item, detail.get("input") or "{}")
    except ClientError as err:
        # Throttling becomes Throttled, which the state machine retries. Anything else means
        # the overlap cannot be ruled out, and then the run does not start.
        aws.raise_as(
            err,
            InvalidInput,
            "states:ListExecutions/DescribeExecution (the overlapping-run check)",
            f"state machine {state_machine}",
        )


def _refuse_if_overlapping(config: Config, item: dict[str, Any], other_input: str) -> None:
    """Raise AlreadyRunning if the older RUNNING execution `item` exports the same database or
    into the same prefix as `config`."""
    try:
        other = build_config(
            json.loads(other_input), settings.pipeline_defaults(), settings.pipeline_settings()
        )
    except (InvalidInput, ValueError):
        return  # that run will fail its own validation
    if not other.dry_run and _conflicts(config, other):
        raise AlreadyRunning(
            f"execution {item['name']} (started {clock.isoformat(item['startDate'])}) "
            f"is still exporting database {other.database_id} to prefix "
            f"{other.s3_prefix}; this run would overlap it. Start again after it ends."
        )


def validate(event: dict[str, Any]) -> dict[str, Any]:
    config = build_config(
        event.get("input"), settings.pipeline_defaults(), settings.pipeline_settings()
    )
    bind(database=config.database_id)
    execution = event.get("execution") or {}
    plan = plan_run(config, execution)
    check_database(config)
    check_bucket_exists(config)  # before a snapshot is made, not hours later at the export
    check_not_running(config, execution)
    validated = config.as_dict()
    # the polling loops' prior: how long this database's snapshot and export took last time
    validated["poll"]["expected_seconds"] = polling.expected_durations(
        state_machine=execution.get("state_machine"),
        execution_id=execution["id"],
        database_id=config.database_id,
        bucket=settings.export_bucket(),
        s3_prefix=config.s3_prefix,
    )
    logger.info("validated", extra={"config": validated, "plan": plan})
    return {
        "config": validated,
        "plan": plan,
        "purge": {"cursor": "", "pages": 0, "objects_deleted": 0, "folders": [], "warnings": []},
        # the start state of DiscardFailedExport's loop (used only if the export fails)
        "discard": {"folder": "", "objects_deleted": 0, "more": False},
    }


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return validate(event)
