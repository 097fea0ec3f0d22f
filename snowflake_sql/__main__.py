"""``python -m snowflake_sql``: print the Snowflake SQL for an export manifest.

    python -m snowflake_sql --manifest s3://<bucket>/<s3_prefix>/_manifest.json [options]
    python -m snowflake_sql --manifest ./manifest.json [options]
    python -m snowflake_sql [options]          # no manifest: one local sandbox night

With an ``s3://`` manifest, boto3 reads it with your usual AWS credentials. Without
``--manifest`` nothing leaves the machine: one night of the pipeline runs on the local
sandbox (moto), and the manifest is built from what it left in the bucket. The SQL goes to
stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3

import sandbox  # noqa: F401  (only puts lambdas/, the Lambda package root, on sys.path)
from snowflake_sql.generate import fold, render


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_manifest(location: str) -> dict[str, Any]:
    """The manifest at ``s3://bucket/key`` (boto3, the user's credentials) or a local path."""
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise SystemExit(f"--manifest {location!r} is not s3://<bucket>/<key>")
        _log(f"reading s3://{bucket}/{key}")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        data = json.loads(body)
    else:
        _log(f"reading {location}")
        data = json.loads(Path(location).read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{location} does not hold a JSON object")
    return data


def sandbox_manifest() -> dict[str, Any]:
    """Run one sandbox night and build the manifest of the export it left in the bucket."""
    # imported here: the sandbox needs the local extras (moto, pyarrow); reading a manifest
    # does not
    from rds_s3_export.manifest import build_manifest  # noqa: PLC0415
    from sandbox.rds_sim import Timing  # noqa: PLC0415
    from sandbox.runtime import Sandbox  # noqa: PLC0415

    timing = Timing(snapshot_seconds=300, export_starting_seconds=120, export_running_seconds=600)
    _log("no --manifest: running one night of the pipeline on the local sandbox (moto)")
    with Sandbox(timing=timing) as sb:
        sb.add_instance("mydb")
        result = sb.run({})
        if result.status != "SUCCEEDED" or not result.output:
            raise SystemExit(f"sandbox run {result.status}: {result.error} {result.cause}")
        out = result.output
        bucket = sb.settings.bucket
        prefix = str(sb.settings.defaults["s3_prefix"]).strip("/")
        task_id = str(out["export"]["task_id"])
        folder = f"{prefix}/{task_id}/"
        s3 = sb.client("s3")
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        info: dict[str, Any] = {}
        tables: list[dict[str, Any]] = []
        for key in sorted(keys):
            name = key[len(folder) :]
            if name == f"export_info_{task_id}.json":
                info = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            elif name.startswith(f"export_tables_info_{task_id}_from_"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                tables += json.loads(body)["perTableStatus"]
        snapshot = out.get("snapshot") or {}
        _log(f"export {task_id}: {len(keys)} object(s) under s3://{bucket}/{folder}")
        return build_manifest(
            bucket=bucket,
            s3_prefix=prefix,
            export_task_id=task_id,
            export_info=info,
            tables_info=tables,
            data_keys=keys,
            database={"kind": "instance", "id": "mydb"},
            snapshot={
                "id": snapshot.get("id"),
                "arn": snapshot.get("arn") or info.get("sourceArn"),
                "time": info.get("snapshotTime"),
            },
            execution=result.arn,
            written_at=str(info.get("taskEndTime", "")),
        )


def pipeline_of(manifest: dict[str, Any]) -> tuple[str, str]:
    """(account, pipeline) from the execution ARN
    ``arn:aws:states:<region>:<account>:execution:<state machine>:<name>``."""
    parts = str(manifest.get("execution") or "").split(":")
    if len(parts) >= 8 and parts[2] == "states" and parts[5] == "execution":
        return parts[4], parts[6]
    return "<account>", "rds-s3-export"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snowflake_sql", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--manifest", help="s3://bucket/key or a local file (default: sandbox)")
    parser.add_argument("--role-arn", help="IAM role Snowflake assumes (default from manifest)")
    parser.add_argument("--external-id", help="external id in the role's trust policy")
    parser.add_argument("--integration", help="storage integration name")
    parser.add_argument("--database", default="RAW", help="Snowflake database (default RAW)")
    parser.add_argument("--schema", help="Snowflake schema (default: the source database id)")
    parser.add_argument("--stage", help="stage name (default RDS_<database id>)")
    parser.add_argument("--file-format", default="RDS_PARQUET", help="Parquet file format name")
    parser.add_argument("--warehouse", default="COMPUTE_WH", help="the task's warehouse")
    parser.add_argument(
        "--schedule",
        default="USING CRON 0 7 * * * UTC",
        help="the task's SCHEDULE; set it well after the pipeline's usual end",
    )
    args = parser.parse_args(argv)

    manifest = read_manifest(args.manifest) if args.manifest else sandbox_manifest()
    account, pipeline = pipeline_of(manifest)
    db_id = fold(str((manifest.get("database") or {}).get("id") or "rds").replace("-", "_"))
    sql = render(
        manifest,
        integration=args.integration or fold(pipeline.replace("-", "_")),
        role_arn=args.role_arn or f"arn:aws:iam::{account}:role/{pipeline}-snowflake",
        external_id=args.external_id or f"{pipeline}-snowflake",
        database=args.database,
        schema=args.schema or db_id,
        stage=args.stage or f"RDS_{db_id}",
        file_format=args.file_format,
        task_warehouse=args.warehouse,
        schedule=args.schedule,
        pipeline=pipeline,
    )
    sys.stdout.write(sql)
    _log(f"wrote the SQL for export {manifest['export_task_id']} to stdout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
