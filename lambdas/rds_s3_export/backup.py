"""`source: backup`: a recovery point of the configured database in the stack's AWS Backup vault.

AWS Backup keeps an RDS instance's or an Aurora (or Multi-AZ DB) cluster's backups as RDS
snapshots named `awsbackup:job-<id>`; the recovery point's ARN is the snapshot's ARN
(`arn:aws:rds:<region>:<account>:snapshot:awsbackup:job-...`, `...:cluster-snapshot:...`), and
RDS exports such snapshots like any other. The vault is read with one call,
ListRecoveryPointsByBackupVault filtered by the database's ARN
(https://docs.aws.amazon.com/aws-backup/latest/devguide/API_ListRecoveryPointsByBackupVault.html):

* no recovery point named: the newest COMPLETED one of the database;
* a recovery point named (`recovery_point_arn`): that one, if the vault holds it for the
  database and it is COMPLETED.

The snapshot is then looked up in RDS and checked to be the configured database's, as a named
snapshot is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, rules
from rds_s3_export.errors import SourceNotFound

COMPLETED = "COMPLETED"  # RecoveryPointByBackupVault.Status, of the API reference above


def database_arn(config: dict[str, Any]) -> str:
    """The configured database's ARN, as AWS Backup names the resource it backed up."""
    rds, ident = aws.client("rds"), config["database_id"]
    try:
        if config["database_kind"] == "cluster":
            return str(
                rds.describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]["DBClusterArn"]
            )
        found = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        return str(found["DBInstanceArn"])
    except ClientError as err:
        aws.raise_as(err, SourceNotFound, "describe", f"database {ident}")


def recovery_points(vault: str, resource_arn: str) -> list[dict[str, Any]]:
    """Every recovery point of `resource_arn` in `vault` (paginated)."""
    backup = aws.client("backup")
    points: list[dict[str, Any]] = []
    try:
        for page in backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
            BackupVaultName=vault, ByResourceArn=resource_arn
        ):
            points.extend(
                p for p in page.get("RecoveryPoints", []) if p.get("ResourceArn") == resource_arn
            )
    except ClientError as err:
        aws.raise_as(
            err, SourceNotFound, "backup:ListRecoveryPointsByBackupVault", f"vault {vault}"
        )
    return points


def recovery_point(config: dict[str, Any]) -> tuple[str, str]:
    """(snapshot ARN, snapshot id) of the run's recovery point; SourceNotFound if there is
    none to export (the message names the vault, the database and what was found)."""
    vault, kind = config["backup_vault"], config["database_kind"]
    resource = database_arn(config)
    points = recovery_points(vault, resource)
    where = f"vault {vault} for {kind} {config['database_id']} ({resource})"
    wanted = config.get("snapshot_arn")
    if wanted:
        point = next((p for p in points if p.get("RecoveryPointArn") == wanted), None)
        if point is None:
            raise SourceNotFound(f"recovery_point_arn {wanted} is not a recovery point in {where}")
        if point.get("Status") != COMPLETED:
            raise SourceNotFound(
                f"recovery point {wanted} in {where} is {point.get('Status')}, not {COMPLETED}"
            )
    else:
        done = [p for p in points if p.get("Status") == COMPLETED and p.get("CreationDate")]
        if not done:
            others = ", ".join(
                sorted(f"{p.get('RecoveryPointArn')} ({p.get('Status')})" for p in points)
            )
            raise SourceNotFound(
                f"source backup: no {COMPLETED} recovery point in {where}"
                + (f"; found only {others}" if others else "")
            )
        point = max(done, key=lambda p: _when(p["CreationDate"]))
    try:
        return rules.snapshot_arn(point["RecoveryPointArn"], kind)
    except rules.RuleError as err:
        raise SourceNotFound(
            f"recovery point {point['RecoveryPointArn']} in {where} is not an RDS snapshot: {err}"
        ) from err


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
