"""AWS Backup in the sandbox: vaults of recovery points of RDS instances and Aurora clusters.

moto 5.2.5 has a `backup` service with plans and vaults, but no recovery points (no
ListRecoveryPointsByBackupVault, no backup jobs). This simulation stands in for that one call:
it answers ListRecoveryPointsByBackupVault in moto's place (through sandbox.faults' request
hook) from the recovery points a test adds, and each recovery point is a real snapshot in
moto's RDS, named `awsbackup:job-<id>` and of snapshot type `awsbackup` as AWS Backup's are, so
the pipeline describes and exports it like any other snapshot.

The answer has the shape of the API reference
(https://docs.aws.amazon.com/aws-backup/latest/devguide/API_ListRecoveryPointsByBackupVault.html):
`RecoveryPoints` with RecoveryPointArn, BackupVaultName, ResourceArn, ResourceType, Status and
CreationDate (seconds since the epoch, rest-json's timestamp), filtered by `resourceArn`.
It also builds the `Backup Job State Change` event AWS Backup would send when the job
completes, in the shape of AWS's sample (tests/fixtures/aws_docs/backup_events.py).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.rds.models import rds_backends

from sandbox import faults
from sandbox.clock import SimClock
from sandbox.rds_sim import ACCOUNT

REGION = "us-east-1"  # as sandbox.runtime


@dataclass
class RecoveryPoint:
    arn: str
    vault: str
    resource_arn: str
    resource_type: str  # "RDS" or "Aurora", as AWS Backup names them
    status: str
    created: datetime
    job_id: str

    def as_api(self) -> dict[str, Any]:
        return {
            "RecoveryPointArn": self.arn,
            "BackupVaultName": self.vault,
            "BackupVaultArn": f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:{self.vault}",
            "ResourceArn": self.resource_arn,
            "ResourceType": self.resource_type,
            "Status": self.status,
            "CreationDate": self.created.timestamp(),
        }


class BackupSimulation:
    """Recovery points by vault; `installed()` answers ListRecoveryPointsByBackupVault."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.points: list[RecoveryPoint] = []
        self._lock = threading.Lock()

    def add_recovery_point(
        self,
        database: str,
        vault: str,
        *,
        cluster: bool = False,
        status: str = "COMPLETED",
        age_hours: float = 0.0,
    ) -> RecoveryPoint:
        """A backup job of `database` into `vault`: its snapshot `awsbackup:job-<id>` in RDS
        (available once the job is COMPLETED) and its recovery point."""
        backend = rds_backends[ACCOUNT][REGION]
        job_id = str(uuid.uuid4())
        ident = f"awsbackup:job-{job_id}"
        taken = self.clock.now() - timedelta(hours=age_hours)
        if cluster:
            # DescribeDBClusterSnapshots has no awsbackup type ("does not apply to Aurora"):
            # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBSnapshots.html
            # so a cluster's Backup snapshot is listed among the manual ones here
            snap: Any = backend.create_db_cluster_snapshot(database, ident, snapshot_type="manual")
            arn, resource = snap.arn, backend.clusters[database].arn
        else:
            snap = backend.create_db_snapshot(database, ident, snapshot_type="awsbackup")
            arn, resource = snap.arn, backend.databases[database].arn
        snap.created = taken
        snap.status = "available" if status == "COMPLETED" else "creating"
        point = RecoveryPoint(
            arn=arn,
            vault=vault,
            resource_arn=resource,
            resource_type="Aurora" if cluster else "RDS",
            status=status,
            created=taken,
            job_id=job_id,
        )
        with self._lock:
            self.points.append(point)
        return point

    def job_event(self, point: RecoveryPoint) -> dict[str, Any]:
        """The `Backup Job State Change` event of `point`'s job, in AWS's sample's shape."""
        when = point.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Backup Job State Change",
            "source": "aws.backup",
            "account": ACCOUNT,
            "time": when,
            "region": REGION,
            "resources": [point.arn],
            "detail": {
                "backupJobId": point.job_id,
                "backupVaultArn": f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:{point.vault}",
                "backupVaultName": point.vault,
                "resourceArn": point.resource_arn,
                "resourceType": point.resource_type,
                "state": point.status,
                "creationDate": when,
                "percentDone": 100 if point.status == "COMPLETED" else 0,
            },
        }

    # --- ListRecoveryPointsByBackupVault in moto's place ---------------------------------
    def _answer(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if event_name != "before-send.backup.ListRecoveryPointsByBackupVault":
            return None
        url = urlparse(request.url)
        vault = unquote(url.path.split("/backup-vaults/", 1)[1].split("/", 1)[0])
        wanted = parse_qs(url.query).get("resourceArn", [None])[0]
        with self._lock:
            points = [
                p.as_api()
                for p in self.points
                if p.vault == vault and (wanted is None or p.resource_arn == wanted)
            ]
        body = json.dumps({"RecoveryPoints": points})
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        return AWSResponse(request.url, 200, headers, MockRawResponse(body))  # type: ignore[arg-type]

    @contextmanager
    def installed(self) -> Iterator[BackupSimulation]:
        faults.install_hook(self._answer)
        try:
            yield self
        finally:
            faults.uninstall_hook(self._answer)
