"""Fixtures of the handler unit tests: moto's in-memory AWS, no state machine."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from botocore import endpoint as botocore_endpoint
from moto import mock_aws
from moto.rds.models import rds_backends

from rds_s3_export import aws
from sandbox import faults

ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = "export-bucket"  # the export bucket of the `s3` fixture


@pytest.fixture(autouse=True)
def sdk_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's sleeps before its retries (S3's, rds_s3_export/aws.py), recorded, not slept."""
    sleeps: list[float] = []
    monkeypatch.setattr(botocore_endpoint, "time", SimpleNamespace(sleep=sleeps.append))
    return sleeps


@pytest.fixture
def injector() -> Iterator[faults.FaultInjector]:
    """A fault injector in front of moto (installed before mock_aws makes its session)."""
    injector = faults.FaultInjector()
    faults.install(injector)
    yield injector
    faults.uninstall(injector)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, injector: faults.FaultInjector) -> Iterator[Any]:
    """moto's S3 with the export bucket `BUCKET` (the functions' EXPORT_BUCKET), behind the
    fault injector `injector`; the handlers' cached clients are fresh."""
    monkeypatch.setenv("EXPORT_BUCKET", BUCKET)
    aws.reset_clients()
    with mock_aws():
        client = aws.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    aws.reset_clients()


def put(s3: Any, key: str, body: bytes = b"x") -> str:
    """Put one object into `BUCKET`; returns its key."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


@pytest.fixture
def rds() -> Iterator[Any]:
    """moto's RDS with the PostgreSQL instance `mydb`, the Aurora cluster `mycluster` and its
    member instance `writer`, and no snapshot: the automated snapshots moto takes when it
    creates a database are removed, so each test makes exactly the ones it needs."""
    aws.reset_clients()
    with mock_aws():
        client = aws.client("rds")
        client.create_db_instance(
            DBInstanceIdentifier="mydb",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="unit-test-password",
        )
        client.create_db_cluster(
            DBClusterIdentifier="mycluster",
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="unit-test-password",
        )
        client.create_db_instance(
            DBInstanceIdentifier="writer",
            DBClusterIdentifier="mycluster",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
        backend = rds_backends[ACCOUNT][REGION]
        backend.database_snapshots.clear()
        backend.cluster_snapshots.clear()
        yield client
    aws.reset_clients()
