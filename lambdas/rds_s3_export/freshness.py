"""Each snapshot is exported once: is the run's snapshot the one the current manifest names?

`<s3_prefix>/_manifest.json` names the snapshot its export was made from (`snapshot.id`,
`snapshot.arn`). A run whose source picks an existing snapshot (latest-automated, a named one,
an event's) compares it with that before it starts anything: the same snapshot means the prefix
already holds its export, and the run ends `up_to_date` having changed nothing. For a run an
event started, so does a manifest naming a *newer* snapshot (the event came late). So a schedule
beside event triggers is a catch-up for lost events at the cost of one GetObject, and two events
for one snapshot give one export. `new-snapshot` always makes a new snapshot: never up to date.

Reading the manifest is best effort in one direction only: a manifest that is missing, cannot be
read or names no snapshot makes the run export (one export too many, nothing lost); only a
manifest that names this very snapshot stops it. Throttling is retried by the state machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, settings
from rds_s3_export.errors import SourceNotFound
from rds_s3_export.log import logger
from rds_s3_export.manifest import manifest_key

UP_TO_DATE = "up-to-date"
NOT_THIS_DATABASE = "not-this-database"
SKIPS = ("", UP_TO_DATE, NOT_THIS_DATABASE)  # `$.source.skip`: "" means export


def manifest_snapshot(bucket: str, prefix: str) -> dict[str, Any] | None:
    """The `snapshot` object of `<prefix>/_manifest.json`, or None (see the module docstring)."""
    key = manifest_key(prefix)
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if aws.error_code(err) in aws.THROTTLING_CODES:
            aws.raise_as(err, SourceNotFound, "s3:GetObject", f"s3://{bucket}/{key}")
        if aws.error_code(err) not in aws.S3_MISSING_CODES:
            logger.warning(
                "manifest not readable: the run exports",
                extra={"manifest": f"s3://{bucket}/{key}", "error": aws.describe(err)},
            )
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    snapshot = document.get("snapshot") if isinstance(document, dict) else None
    return snapshot if isinstance(snapshot, dict) else None


def same_snapshot(named: Mapping[str, Any] | None, snapshot: Mapping[str, Any]) -> bool:
    """True when the manifest's snapshot is `snapshot` (a `rds.snapshot_fields` dict): by ARN
    where both have one (unique across accounts and regions), else by id."""
    if not named:
        return False
    if named.get("arn") and snapshot.get("arn"):
        return bool(named["arn"] == snapshot["arn"])
    ident = named.get("id")
    return isinstance(ident, str) and ident.lower() == str(snapshot.get("id", "")).lower()


def newer_than(named: Mapping[str, Any] | None, snapshot: Mapping[str, Any]) -> bool:
    """True when the manifest's snapshot was taken after `snapshot` (both times known)."""
    if not named or not isinstance(named.get("time"), str) or not snapshot.get("created"):
        return False
    try:
        return clock.parse(named["time"]) > clock.parse(str(snapshot["created"]))
    except ValueError:
        return False


def up_to_date(config: Mapping[str, Any], snapshot: Mapping[str, Any]) -> str | None:
    """The reason the run has nothing to do, or None: the prefix's manifest names `snapshot`,
    or, for a run an event started, a snapshot taken after it. RDS events "might be out of
    sequence" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-cloudwatch-events.sample.html):
    an event that arrives late must not replace a newer export with older data. A run started
    by hand exports the snapshot it names, older or not."""
    bucket, prefix = settings.export_bucket_if_set(), config.get("s3_prefix")
    if bucket is None or not prefix:  # invoked outside the stack: nothing to compare with
        return None
    named = manifest_snapshot(bucket, prefix)
    where = f"s3://{bucket}/{manifest_key(prefix)}"
    if same_snapshot(named, snapshot):
        return (
            f"{where} already names snapshot {snapshot['id']} "
            f"({snapshot.get('arn') or 'no ARN'}): its export is the current one, nothing was "
            "created, exported or deleted"
        )
    if config.get("trigger", "manual") != "manual" and named and newer_than(named, snapshot):
        return (
            f"{where} names snapshot {named.get('id')} taken {named.get('time')}, after this "
            f"event's snapshot {snapshot['id']} (taken {snapshot.get('created')}): the event "
            "came late or out of order, and the newer export stays; nothing was created, "
            "exported or deleted"
        )
    return None
