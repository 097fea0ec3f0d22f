"""Small RDS helpers shared by the handlers: ARNs, snapshot lookups, tags, export tasks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws
from rds_s3_export.errors import PipelineError

TAG_PIPELINE = "rds-s3-export:pipeline"
TAG_EXECUTION = "rds-s3-export:execution"

SNAPSHOT_KINDS = {"instance": "db-snapshot", "cluster": "db-cluster-snapshot"}


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("TagList", []) if "Key" in t}


def snapshot_fields(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a DBSnapshot / DBClusterSnapshot the pipeline uses."""
    if kind == "db-cluster-snapshot":
        ident, arn, owner = (
            item["DBClusterSnapshotIdentifier"],
            item.get("DBClusterSnapshotArn", ""),
            item.get("DBClusterIdentifier", ""),
        )
    else:
        ident, arn, owner = (
            item["DBSnapshotIdentifier"],
            item.get("DBSnapshotArn", ""),
            item.get("DBInstanceIdentifier", ""),
        )
    created = item.get("SnapshotCreateTime")
    return {
        "id": ident,
        "arn": arn,
        "database_id": owner,
        "status": str(item.get("Status", "unknown")),
        "progress": item.get("PercentProgress"),
        "type": str(item.get("SnapshotType", "")),
        "created": created.isoformat() if created is not None else None,
        "tags": tags_of(item),
    }


def iter_snapshots(
    kind: str, fallback: type[PipelineError], **params: Any
) -> Iterator[dict[str, Any]]:
    """Every snapshot matching `params` (paginated), as `snapshot_fields` dicts."""
    rds = aws.client("rds")
    if kind == "db-cluster-snapshot":
        operation, key = "describe_db_cluster_snapshots", "DBClusterSnapshots"
    else:
        operation, key = "describe_db_snapshots", "DBSnapshots"
    try:
        for page in rds.get_paginator(operation).paginate(**params):
            for item in page.get(key, []):
                fields = snapshot_fields(kind, item)
                # DescribeDB*Snapshots documents TagList on every snapshot. Only a response
                # without it is completed from ListTagsForResource: asking for every snapshot
                # would need a wider IAM grant than the stack gives.
                if "TagList" not in item and fields["arn"]:
                    fields["tags"] = list_tags(fields["arn"])
                yield fields
    except ClientError as err:
        aws.raise_as(err, fallback, operation, repr(params))


def list_tags(arn: str) -> dict[str, str]:
    response = aws.client("rds").list_tags_for_resource(ResourceName=arn)
    return {t["Key"]: t["Value"] for t in response.get("TagList", [])}


def export_tasks(fallback: type[PipelineError]) -> list[dict[str, Any]]:
    """All export tasks RDS knows in this account and region (paginated)."""
    rds = aws.client("rds")
    tasks: list[dict[str, Any]] = []
    try:
        for page in rds.get_paginator("describe_export_tasks").paginate():
            tasks.extend(page.get("ExportTasks", []))
    except ClientError as err:
        aws.raise_as(err, fallback, "rds:DescribeExportTasks", "this account")
    return tasks
