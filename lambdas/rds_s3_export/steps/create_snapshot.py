"""CreateSnapshot: the snapshot this run exports.

* `new-snapshot`: create a manual snapshot `<prefix>-YYYY-mm-dd-HH-MM`, tagged as the
  pipeline's own and with the execution's name (as `naming.tag_value` makes it a valid RDS
  tag value: a name such as `rerun(2)` has characters RDS refuses). A retry of the same
  execution adopts the
  snapshot it already created; another execution in the same minute gets `-<run suffix>`.
* `latest-automated`: the newest *available* automated snapshot of the database.
* `snapshot`: the named snapshot (by id, or by ARN as an event names it), if it belongs to the
  configured database.
* `backup`: a recovery point of the database in the stack's AWS Backup vault (the newest
  completed one, or the one named), an RDS snapshot `awsbackup:job-...` (rds_s3_export.backup).

Before anything is started, a snapshot that already exists is compared with the one the
prefix's manifest names (rds_s3_export.freshness): the same one ends the run `up_to_date`
(`skip: up-to-date`). A run started by an event whose snapshot is not one of the configured
database's ends quietly (`skip: not-this-database`) instead of failing: an event pattern cannot
always tell (the prefix `rds:mydb-` of automated snapshot ids also matches database `mydb-2`).

With `dry_run` nothing is created: the result says what would be used.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, backup, clock, freshness, naming, status
from rds_s3_export.errors import SnapshotFailed, SourceNotFound
from rds_s3_export.log import correlated, logger
from rds_s3_export.rds import SNAPSHOT_KINDS, TAG_EXECUTION, TAG_PIPELINE, iter_snapshots
from rds_s3_export.steps import shaped


def _describe_one(kind: str, snapshot_id: str) -> dict[str, Any] | None:
    key = "DBClusterSnapshotIdentifier" if kind == "db-cluster-snapshot" else "DBSnapshotIdentifier"
    params: dict[str, Any] = {key: snapshot_id}
    if kind == "db-snapshot" and snapshot_id.startswith("awsbackup:"):
        # DescribeDBSnapshots returns automated and manual snapshots unless SnapshotType says
        # otherwise; AWS Backup's are type awsbackup (which does not apply to Aurora, whose
        # Backup snapshots are listed without it):
        # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBSnapshots.html
        params["SnapshotType"] = "awsbackup"
    try:
        return next(iter_snapshots(kind, SnapshotFailed, **params), None)
    except SourceNotFound:
        return None


def _create(kind: str, config: dict[str, Any], plan: dict[str, Any], snapshot_id: str) -> None:
    rds = aws.client("rds")
    tags = [
        {"Key": TAG_PIPELINE, "Value": config["pipeline_name"]},
        {"Key": TAG_EXECUTION, "Value": naming.tag_value(plan["execution_name"])},
    ]
    if kind == "db-cluster-snapshot":
        rds.create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=snapshot_id,
            DBClusterIdentifier=config["database_id"],
            Tags=tags,
        )
    else:
        rds.create_db_snapshot(
            DBSnapshotIdentifier=snapshot_id,
            DBInstanceIdentifier=config["database_id"],
            Tags=tags,
        )


ALREADY_EXISTS = frozenset({"DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExistsFault"})


def create_or_adopt(config: dict[str, Any], plan: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create this run's snapshot, or adopt it if a retry finds it already made by this run."""
    kind = SNAPSHOT_KINDS[config["database_kind"]]
    candidates = [plan["snapshot_id"], f"{plan['snapshot_id']}-{plan['run_suffix']}"]
    for snapshot_id in candidates:
        try:
            _create(kind, config, plan, snapshot_id)
        except ClientError as err:
            if aws.error_code(err) not in ALREADY_EXISTS:
                aws.raise_as(
                    err, SnapshotFailed, f"create {kind}", f"database {config['database_id']}"
                )
            existing = _describe_one(kind, snapshot_id)
            mine = naming.tag_value(plan["execution_name"])
            if existing and existing["tags"].get(TAG_EXECUTION) == mine:
                logger.info("adopting own snapshot", extra={"snapshot": snapshot_id})
                return existing, True
            continue  # taken by another run in the same minute: try the next candidate
        created = _describe_one(kind, snapshot_id)
        if created is None:
            raise SnapshotFailed(f"{kind} {snapshot_id} was created but cannot be described")
        return created, False
    raise SnapshotFailed(
        f"could not create a snapshot of {config['database_id']}: ids {', '.join(candidates)} "
        "are taken by other runs"
    )


def latest_automated(config: dict[str, Any]) -> dict[str, Any]:
    kind = SNAPSHOT_KINDS[config["database_kind"]]
    key = "DBClusterIdentifier" if kind == "db-cluster-snapshot" else "DBInstanceIdentifier"
    automated = [
        s
        for s in iter_snapshots(
            kind, SourceNotFound, **{key: config["database_id"], "SnapshotType": "automated"}
        )
        if s["type"] == "automated"
    ]
    snapshots = [s for s in automated if s["status"] == "available" and s["created"]]
    if not snapshots:
        others = ", ".join(sorted(f"{s['id']} ({s['status']})" for s in automated))
        raise SourceNotFound(
            f"source latest-automated: no available automated snapshot of "
            f"{config['database_kind']} {config['database_id']}"
            + (f"; found only {others}" if others else "")
            + ". Is automated backup enabled (backup retention > 0)? Or use source new-snapshot."
        )
    return max(snapshots, key=lambda s: clock.parse(s["created"]))


def _not_its_own(config: dict[str, Any], found: dict[str, Any]) -> str | None:
    """Why `found` is not a snapshot this run may export, or None."""
    # RDS identifiers are case-insensitive (stored in lower case)
    if found["database_id"].lower() != config["database_id"].lower():
        return (
            f"snapshot_identifier {found['id']} is a snapshot of {found['database_id']}, not of "
            f"the configured {config['database_kind']} {config['database_id']}: refusing to "
            "export another database's snapshot into this prefix"
        )
    given = config.get("snapshot_arn")
    if given and found["arn"] and given != found["arn"]:
        return (
            f"snapshot_arn {given} is not snapshot {found['id']} of this account and region "
            f"({found['arn']}): refusing to export a snapshot the ARN does not name"
        )
    return None


def named(config: dict[str, Any]) -> dict[str, Any]:
    """The named snapshot; SourceNotFound if it is missing or not the configured database's."""
    found, reason = find_named(config)
    if reason:
        raise SourceNotFound(reason)
    return found


def find_named(config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The named snapshot, and why it is not one this run may export (None: it is).
    SourceNotFound if no snapshot has that name."""
    kind = SNAPSHOT_KINDS[config["database_kind"]]
    found = _describe_one(kind, config["snapshot_identifier"])
    if found is None:
        raise SourceNotFound(
            f"snapshot_identifier {config['snapshot_identifier']}: no {kind} of that name exists "
            f"(the configured database is {config['database_kind']} {config['database_id']})"
        )
    return found, _not_its_own(config, found)


def resolve(event: dict[str, Any]) -> dict[str, Any]:
    config, plan = event["config"], event["plan"]
    kind = SNAPSHOT_KINDS[config["database_kind"]]
    now = clock.now()
    created = adopted = False
    skip, reason = "", None
    if config["source"] == "new-snapshot":
        if config["dry_run"]:
            snapshot = {"id": plan["snapshot_id"], "arn": "", "status": "not created (dry run)"}
            snapshot["progress"] = None
        else:
            snapshot, adopted = create_or_adopt(config, plan)
            created = not adopted
    else:
        if config["source"] == "latest-automated":
            snapshot = latest_automated(config)
        else:
            if config["source"] == "backup":  # a recovery point: an RDS snapshot, by ARN
                arn, ident = backup.recovery_point(config)
                config = {**config, "snapshot_identifier": ident, "snapshot_arn": arn}
            snapshot, reason = find_named(config)
            if reason and config.get("trigger", "manual") == "manual":
                raise SourceNotFound(reason)  # by hand: say so; from an event: end quietly
        if reason:
            skip = freshness.NOT_THIS_DATABASE
        else:
            reason = freshness.up_to_date(config, snapshot)
            skip = freshness.UP_TO_DATE if reason else ""

    state = status.snapshot_state(snapshot["status"])
    if state == "failed" and not skip:
        raise SnapshotFailed(f"{kind} {snapshot['id']} is {snapshot['status']}")
    result = {
        "kind": kind,
        "snapshot_id": snapshot["id"],
        "snapshot_arn": snapshot["arn"],
        "export_task_id": naming.export_task_id(
            snapshot["id"], plan["run_suffix"], naming.minute_stamp(clock.parse(plan["started_at"]))
        ),
        "source": config["source"],
        "created": created,
        "adopted": adopted,
        "skip": skip,
        "skip_reason": reason or "",
        **status.loop_start(
            now=now,
            timeout_seconds=config["snapshot_timeout_seconds"],
            min_wait_seconds=config["poll"]["min_seconds"],
            state="done" if config["dry_run"] else state,
            raw_status=snapshot["status"],
            progress=snapshot.get("progress"),
        ),
    }
    if skip:
        logger.info("nothing to export", extra={"skip": skip, "reason": reason})
    logger.info("source resolved", extra={"source": result})
    return result


# `$.source`: the snapshot chosen, its export task id, and the start of its polling loop
RESULT_FIELDS = (
    "kind",
    "snapshot_id",
    "snapshot_arn",
    "export_task_id",
    "source",
    "created",
    "adopted",
    "skip",  # "" (export it), "up-to-date" or "not-this-database": the run ends quietly
    "skip_reason",
    *status.LOOP_FIELDS,
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(resolve(event), RESULT_FIELDS)
