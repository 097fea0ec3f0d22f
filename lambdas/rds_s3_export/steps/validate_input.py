"""ValidateInput: defaults merged in, every key checked, ids planned, overlapping runs refused.

Runs first, before anything is created. Its result replaces the state: `config` (the validated
configuration), `plan` (ids and times of this run) and `purge` (the purge loop's start state).

An input `{"continue_purge": {...}}` is the state machine continuing a long purge in a new
execution (the previous one would have run out of history): its configuration is validated
again, its pieces checked, and the purge goes on where it stopped (see `continuation`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, naming, polling, s3layout, settings
from rds_s3_export.errors import AlreadyRunning, InvalidInput, SourceNotFound
from rds_s3_export.inputs import Config, build_config
from rds_s3_export.log import bind, correlated, logger
from rds_s3_export.steps import shaped


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


def check_not_running(config: Config, execution: dict[str, Any], parent: str | None = None) -> None:
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
                if item["executionArn"] in (execution["id"], parent):
                    continue  # itself, or the execution that handed its purge to this one
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
        raw = json.loads(other_input)
        if isinstance(raw, dict) and CONTINUE_KEY in raw:
            raw = input_of((raw[CONTINUE_KEY] or {}).get("config"))
        other = build_config(raw, settings.pipeline_defaults(), settings.pipeline_settings())
    except (InvalidInput, ValueError, TypeError, AttributeError):
        return  # that run will fail its own validation
    if not other.dry_run and _conflicts(config, other):
        raise AlreadyRunning(
            f"execution {item['name']} (started {clock.isoformat(item['startDate'])}) "
            f"is still exporting database {other.database_id} to prefix "
            f"{other.s3_prefix}; this run would overlap it. Start again after it ends."
        )


CONTINUE_KEY = "continue_purge"
# Step Functions adds this key to the input of an execution another one started
STARTED_BY_KEY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
_CONFIG_INPUT_KEYS = ("source", "snapshot_prefix", "s3_prefix", "export_only", "dry_run")


def input_of(config: Any) -> dict[str, Any]:
    """The execution input that gives `config` (a validated configuration, as carried in the
    state), so that a continued run's configuration is validated again like any input."""
    if not isinstance(config, dict):
        raise InvalidInput(f"{CONTINUE_KEY}.config must be an object")
    key = "db_cluster_identifier" if config.get("database_kind") == "cluster" else None
    raw: dict[str, Any] = {key or "db_instance_identifier": config.get("database_id")}
    raw.update({k: config.get(k) for k in _CONFIG_INPUT_KEYS})
    raw["keep_snapshots"] = config.get("keep_snapshots")  # null: keep every snapshot
    if config.get("snapshot_arn") and config.get("source") == "backup":
        raw["recovery_point_arn"] = config["snapshot_arn"]
    elif config.get("snapshot_arn"):  # it names the snapshot, and is checked against it
        raw["snapshot_arn"] = config["snapshot_arn"]
    elif config.get("snapshot_identifier") is not None:
        raw["snapshot_identifier"] = config["snapshot_identifier"]
    if config.get("trigger"):
        raw["trigger"] = config["trigger"]
    return raw


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{CONTINUE_KEY}.{name} must be an object")
    return value


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{CONTINUE_KEY}.purge.{name} must be a whole number >= 0")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{CONTINUE_KEY}.purge.{name} must be a list of strings")
    return list(value)


def continuation(raw: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """The state of a run that continues an earlier execution's purge.

    Only the purge's counters, report lists and held-back folder (`deferred`, kept until the
    manifest names the new export) are carried over; the plan is made again (the new export is
    verified again, RDS is asked again, and must report the new export COMPLETE into this bucket
    and prefix), so a forged input cannot widen what is deleted."""
    unknown = sorted(set(raw) - {CONTINUE_KEY, STARTED_BY_KEY})
    if unknown:
        raise InvalidInput(f"unknown key(s) {', '.join(unknown)} beside {CONTINUE_KEY}")
    body = _object(raw[CONTINUE_KEY], "")
    config = build_config(
        input_of(body.get("config")), settings.pipeline_defaults(), settings.pipeline_settings()
    )
    if config.dry_run:
        raise InvalidInput(f"{CONTINUE_KEY}: a dry run is never continued")
    plan, source, export = (_object(body.get(k), k) for k in ("plan", "source", "export"))
    purge = _object(body.get("purge"), "purge")
    task_id = export.get("export_task_id")
    if not isinstance(task_id, str) or not s3layout.could_be_export_folder(task_id):
        raise InvalidInput(f"{CONTINUE_KEY}.export.export_task_id is not an export task id")
    check_database(config)
    check_bucket_exists(config)
    parent = raw.get(STARTED_BY_KEY)
    check_not_running(config, execution, parent if isinstance(parent, str) else None)
    carried = {
        "cursor": "",
        "pages": _count(purge.get("pages"), "pages"),
        "objects_deleted": _count(purge.get("objects_deleted"), "objects_deleted"),
        "folders": _strings(purge.get("folders", []), "folders"),
        "warnings": _strings(purge.get("warnings", []), "warnings"),
        "continuations": _count(purge.get("continuations", 0), "continuations") + 1,
        "counts_are_lower_bounds": purge.get("counts_are_lower_bounds") is True,
    }
    if isinstance(purge.get("started_at"), str):
        carried["started_at"] = clock.isoformat(clock.parse(purge["started_at"]))
    if "deferred" in purge:  # the folder the manifest named when the run's purge began
        deferred = purge["deferred"]
        if deferred is not None and not (
            isinstance(deferred, str) and s3layout.could_be_export_folder(deferred)
        ):
            raise InvalidInput(f"{CONTINUE_KEY}.purge.deferred is not an export task id")
        carried["deferred"] = deferred
    logger.info("continuing a purge", extra={"config": config.as_dict(), "purge": carried})
    return {
        "config": config.as_dict(),
        "plan": plan,
        "source": source,
        "export": export,
        "purge": carried,
        "discard": {"folder": "", "objects_deleted": 0, "more": False},
    }


def recheck(event: dict[str, Any]) -> dict[str, Any]:
    """The overlapping-run check again, once this run's ValidateInput is done (the state
    ConfirmNoOverlap, before anything is created).

    ValidateInput's check sees only the runs that existed when it listed them. Two runs started
    in the same millisecond are ordered by name; if the one that sorts first started its check
    before the other existed, the other, seeing it, defers to it too: both would go on and
    export the same snapshot twice. By the time either run gets here both are listed, and the
    order is the same in both runs' eyes: exactly one goes on."""
    config = build_config(
        input_of(event["recheck"].get("config")),
        settings.pipeline_defaults(),
        settings.pipeline_settings(),
    )
    check_not_running(config, event.get("execution") or {})
    return {"checked": True}


RECHECK_FIELDS = ("checked",)


def validate(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("input")
    if isinstance(raw, dict) and CONTINUE_KEY in raw:
        return continuation(raw, event.get("execution") or {})
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
        "purge": {
            "cursor": "",
            "pages": 0,
            "objects_deleted": 0,
            "folders": [],
            "warnings": [],
            "continuations": 0,  # > 0: this execution continues an earlier one's purge
        },
        # the start state of DiscardFailedExport's loop (used only if the export fails)
        "discard": {"folder": "", "objects_deleted": 0, "more": False},
    }


# The state as ValidateInput leaves it (it replaces the execution input). `source` and `export`
# are empty until CreateSnapshot and StartExport fill them, except in a continued purge.
RESULT_FIELDS = ("config", "plan", "source", "export", "purge", "discard")
RESULT_DEFAULTS: dict[str, Any] = {"source": {}, "export": {}}


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event.get("recheck"), dict):
        return shaped(recheck(event), RECHECK_FIELDS)
    return shaped(validate(event), RESULT_FIELDS, RESULT_DEFAULTS)
