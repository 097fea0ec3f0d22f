"""PruneSnapshots: keep only the newest `keep_snapshots` of the pipeline's own snapshots.

"Own" means a manual snapshot of the configured database whose id starts with
`<snapshot_prefix>-` and which carries the pipeline's tag. Never deleted: automated
snapshots, snapshots without the tag, the snapshot just exported, and any snapshot an export
still running reads from. `keep_snapshots: "all"` keeps everything; `0` keeps none but the
one just exported.

The export is already complete when this runs, so a failure to delete is a warning in the
output, not a failed run.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from rds_s3_export import aws, clock, naming, rules, status
from rds_s3_export.errors import PipelineError, Throttled
from rds_s3_export.log import correlated, logger
from rds_s3_export.rds import SNAPSHOT_KINDS, TAG_PIPELINE, export_tasks, iter_snapshots
from rds_s3_export.steps import shaped


def own_id_pattern(snapshot_prefix: str) -> re.Pattern[str]:
    """The ids this pipeline gives snapshots with `snapshot_prefix`, and no others:
    `<prefix>-YYYY-mm-dd-HH-MM`, or with `-<run suffix>` when another run took that minute.

    A bare `startswith(prefix + "-")` would also match another configuration's snapshots whose
    prefix merely starts the same way (`nightly` vs `nightly-full-2024-...`)."""
    stamp = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}"
    suffix = rf"(?:-[0-9a-f]{{{naming.RUN_SUFFIX_LEN}}})?"
    return re.compile(rf"^{re.escape(snapshot_prefix.lower())}-{stamp}{suffix}$")


def own_snapshots(config: dict[str, Any]) -> list[dict[str, Any]]:
    kind = SNAPSHOT_KINDS[config["database_kind"]]
    key = "DBClusterIdentifier" if kind == "db-cluster-snapshot" else "DBInstanceIdentifier"
    params = {key: config["database_id"], "SnapshotType": "manual"}
    own_id = own_id_pattern(config["snapshot_prefix"])
    return [
        s
        for s in iter_snapshots(kind, PipelineError, **params)
        if s["type"] == "manual"
        and own_id.match(s["id"].lower())
        and s["tags"].get(TAG_PIPELINE) == config["pipeline_name"]
        and s["created"]
    ]


def select_for_deletion(
    snapshots: list[dict[str, Any]], keep: int, current_id: str, in_use: set[str]
) -> list[dict[str, Any]]:
    """Own snapshots beyond the newest `keep`, never the current one or one in use."""
    newest_first = sorted(snapshots, key=lambda s: clock.parse(s["created"]), reverse=True)
    return [
        s
        for s in newest_first[keep:]
        if s["id"] != current_id and s["arn"] not in in_use and s["id"] not in in_use
    ]


def prune(event: dict[str, Any]) -> dict[str, Any]:
    config, source = event["config"], event["source"]
    started = clock.now()
    keep = config["keep_snapshots"]
    result: dict[str, Any] = {"deleted": [], "kept": [], "warnings": [], "skipped": ""}
    if keep == rules.KEEP_ALL:
        result["skipped"] = 'keep_snapshots is "all": every snapshot is kept'
        result["elapsed_seconds"] = 0
        return result
    kind = SNAPSHOT_KINDS[config["database_kind"]]
    try:
        snapshots = own_snapshots(config)
        in_use = {
            str(t.get("SourceArn"))
            for t in export_tasks(PipelineError)
            if str(t.get("Status", "")).upper() in status.EXPORT_RUNNING
        }
    except Throttled:
        raise  # the state machine retries it; only when retries are spent is it a warning
    except PipelineError as err:
        result["warnings"].append(f"could not list snapshots to prune: {err}")
        result["elapsed_seconds"] = clock.seconds_between(clock.isoformat(started), clock.now())
        return result
    doomed = select_for_deletion(snapshots, int(keep), source["snapshot_id"], in_use)
    rds = aws.client("rds")
    for snap in doomed:
        try:
            if kind == "db-cluster-snapshot":
                rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap["id"])
            else:
                rds.delete_db_snapshot(DBSnapshotIdentifier=snap["id"])
            result["deleted"].append(snap["id"])
        except ClientError as err:
            result["warnings"].append(f"could not delete {kind} {snap['id']}: {aws.describe(err)}")
    deleted = set(result["deleted"])
    result["kept"] = sorted(s["id"] for s in snapshots if s["id"] not in deleted)
    result["elapsed_seconds"] = clock.seconds_between(clock.isoformat(started), clock.now())
    logger.info("pruned snapshots", extra={"prune": result})
    return result


# `$.prune`: what was deleted and kept; `skipped` says why nothing was looked at
RESULT_FIELDS = (
    "deleted",
    "kept",
    "warnings",
    "skipped",
    "elapsed_seconds",
)


@correlated
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return shaped(prune(event), RESULT_FIELDS)
