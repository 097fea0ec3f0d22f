"""The event triggers' patterns and inputs, as plain data: what infra/events.py deploys and what
the sandbox and the tests match AWS's sample events against.

Pure Python (no CDK): the account, region and partition are parameters, CDK tokens at synth and
plain strings in the sandbox and the tests.

Every rule is scoped as narrowly as the event allows:

* **RDS snapshot events.** RDS sends them to the default bus as `RDS DB Snapshot Event` (a DB
  instance's snapshots) and `RDS DB Cluster Snapshot Event` (an Aurora or Multi-AZ cluster's),
  best effort: https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-rds.html. The rule
  takes one event id, "snapshot created", from AWS's RDS event category tables
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html):

  - a DB instance's snapshots (the "DB snapshot events" table): RDS-EVENT-0091 when an
    automated one has been created, RDS-EVENT-0042 when a manual one has;
  - a DB cluster's snapshots (the "DB cluster snapshot events" table): RDS-EVENT-0169 for an
    automated one, RDS-EVENT-0075 for a manual one. (RDS-EVENT-0090, -0040, -0168 and -0074
    say a snapshot is being created: not yet exportable.)

  The event carries the snapshot's ARN (`detail.SourceArn`), not the database's: an automated
  snapshot of `mydb` is `rds:mydb-<date>`, so the rule matches the ARN prefix
  `...:snapshot:rds:mydb-`, which database `mydb-2`'s `rds:mydb-2-<date>` matches too. The run
  checks the snapshot's database and ends quietly (NOT_THIS_DATABASE) when it is another's.
  Manual snapshots may have any name: that rule matches every manual snapshot of the account
  and region but the pipeline's own (`<snapshot_prefix>-...`, which the run that made it is
  exporting already), and relies on the same check.

* **AWS Backup.** `Backup Job State Change` with `state: COMPLETED`, the configured database's
  ARN as `detail.resourceArn` and the configured vault as `detail.backupVaultName`; best
  effort, every 5 minutes: https://docs.aws.amazon.com/aws-backup/latest/devguide/eventbridge.html.
  Its run is `source: backup`: the newest completed recovery point of the database in that
  vault (the one the event reports, or a newer one).

The execution input is the database's own (as its schedule passes it) with the source set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from infra.config import Database, PipelineConfig

RDS_SOURCE: Final = "aws.rds"
BACKUP_SOURCE: Final = "aws.backup"
DETAIL_TYPES: Final = {
    "instance": "RDS DB Snapshot Event",
    "cluster": "RDS DB Cluster Snapshot Event",
}
BACKUP_DETAIL_TYPE: Final = "Backup Job State Change"
# "snapshot created", by kind of database and of snapshot (see the module docstring)
SNAPSHOT_CREATED: Final = {
    ("instance", "automated"): "RDS-EVENT-0091",
    ("instance", "manual"): "RDS-EVENT-0042",
    ("cluster", "automated"): "RDS-EVENT-0169",
    ("cluster", "manual"): "RDS-EVENT-0075",
}
ARN_TYPES: Final = {"instance": "snapshot", "cluster": "cluster-snapshot"}
DATABASE_ARN_TYPES: Final = {"instance": "db", "cluster": "cluster"}
# The InputPathsMap variable of the snapshot's ARN (JSON dot notation, as the InputTransformer
# reference requires: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html)
ARN_VARIABLE: Final = "snapshot_arn"


@dataclass(frozen=True)
class Where:
    """The account, region and partition the stack is deployed to (tokens at synth)."""

    partition: str
    region: str
    account: str

    def rds_arn(self, resource_type: str, name: str) -> str:
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{resource_type}:{name}"


@dataclass(frozen=True)
class Trigger:
    """One EventBridge rule and what its target starts the state machine with."""

    name: str  # a short id, unique per stack: the construct id and the rule's description
    description: str
    pattern: dict[str, Any]
    input_template: str  # JSON, with `<snapshot_arn>` where the event's value goes, if any
    input_paths: dict[str, str]


def _input(config: PipelineConfig, database: Database, **values: Any) -> dict[str, Any]:
    return {**config.schedule_input(database), **values}


def snapshot_trigger(
    config: PipelineConfig, database: Database, where: Where, snapshot: str, index: int
) -> Trigger:
    """The rule for `database`'s `snapshot` ("automated" or "manual") snapshot-created events."""
    kind, arn_type = database.kind, ARN_TYPES[database.kind]
    if snapshot == "automated":
        # automated snapshot ids are rds:<database>-<date>
        arn_filter: dict[str, Any] = {
            "prefix": where.rds_arn(arn_type, f"rds:{database.identifier}-")
        }
    else:  # every manual one but the pipeline's own, which its own run is already exporting
        arn_filter = {
            "anything-but": {"prefix": where.rds_arn(arn_type, f"{database.snapshot_prefix}-")}
        }
    pattern = {
        "source": [RDS_SOURCE],
        "detail-type": [DETAIL_TYPES[kind]],
        "account": [where.account],
        "region": [where.region],
        "detail": {
            "EventID": [SNAPSHOT_CREATED[(kind, snapshot)]],
            "SourceArn": [arn_filter],
        },
    }
    marker = "__SNAPSHOT_ARN__"
    template = json.dumps(
        _input(config, database, source="snapshot", snapshot_arn=marker, trigger="rds-event"),
        sort_keys=True,
    ).replace(json.dumps(marker), f"<{ARN_VARIABLE}>")  # unquoted: EventBridge quotes it
    return Trigger(
        name=f"{snapshot.capitalize()}Snapshot{'' if index == 0 else index + 1}",
        description=(
            f"{config.pipeline_name}: export {kind} {database.identifier}'s {snapshot} "
            f"snapshots as they are created ({SNAPSHOT_CREATED[(kind, snapshot)]})"
        ),
        pattern=pattern,
        input_template=template,
        input_paths={ARN_VARIABLE: "$.detail.SourceArn"},
    )


def backup_trigger(
    config: PipelineConfig, database: Database, where: Where, vault: str, index: int
) -> Trigger:
    """The rule for `database`'s completed AWS Backup jobs into `vault`."""
    pattern = {
        "source": [BACKUP_SOURCE],
        "detail-type": [BACKUP_DETAIL_TYPE],
        "account": [where.account],
        "region": [where.region],
        "detail": {
            "state": ["COMPLETED"],
            "backupVaultName": [vault],
            "resourceArn": [where.rds_arn(DATABASE_ARN_TYPES[database.kind], database.identifier)],
        },
    }
    template = json.dumps(
        _input(config, database, source="backup", trigger="backup-event"), sort_keys=True
    )
    return Trigger(
        name=f"BackupJob{'' if index == 0 else index + 1}",
        description=(
            f"{config.pipeline_name}: export {database.kind} {database.identifier}'s AWS Backup "
            f"recovery points in vault {vault} as their jobs complete"
        ),
        pattern=pattern,
        input_template=template,
        input_paths={},
    )


def triggers(config: PipelineConfig, where: Where) -> list[Trigger]:
    """Every rule the configuration asks for; none without the event context keys."""
    found: list[Trigger] = []
    for index, database in enumerate(config.databases):
        if config.snapshot_events:
            found.append(snapshot_trigger(config, database, where, "automated", index))
            if config.snapshot_events_manual:
                found.append(snapshot_trigger(config, database, where, "manual", index))
        if config.backup_vault:
            found.append(backup_trigger(config, database, where, config.backup_vault, index))
    return found
