"""``python -m snowflake_sql``: print the Snowflake SQL for an export manifest.

    python -m snowflake_sql --manifest s3://<bucket>/<s3_prefix>/_manifest.json [options]
    python -m snowflake_sql --manifest ./manifest.json [options]

With an ``s3://`` manifest, boto3 reads it with your usual AWS credentials. This package
reads manifests and nothing else: for a manifest from a local sandbox night, the sandbox
runs the night and hands its manifest to :func:`main` (``python -m sandbox.snowflake_night``,
what ``make snowflake-sql`` runs without ``MANIFEST``). The SQL goes to stdout, progress to
stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3

from snowflake_sql.generate import render
from snowflake_sql.procedure import fold


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


CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def chosen_external_id() -> str | None:
    """``snowflake_external_id`` as cdk.json sets it (validated by the stack's own config
    code), or None: then the id Snowflake generated lives only in the deploy command."""
    cdk_json = CDK_JSON
    if not cdk_json.is_file():
        return None
    from infra.config import load_config  # noqa: PLC0415  (only when cdk.json is there)

    return load_config(json.loads(cdk_json.read_text()).get("context", {})).snowflake_external_id


def default_options(manifest: dict[str, Any], **given: str | None) -> dict[str, str]:
    """The options of :func:`snowflake_sql.generate.render`: ``given`` ones, else the
    defaults derived from the manifest (role ``<pipeline>-snowflake`` of the execution's
    account, schema and stage named after the source database) and cdk.json (external id)."""
    account, pipeline = pipeline_of(manifest)
    db_id = fold(str((manifest.get("database") or {}).get("id") or "rds").replace("-", "_"))
    defaults = {
        "integration": fold(pipeline.replace("-", "_")),
        "role_arn": f"arn:aws:iam::{account}:role/{pipeline}-snowflake",
        "external_id": chosen_external_id() or f"{pipeline}-snowflake",
        "database": "RAW",
        "schema": db_id,
        "stage": f"RDS_{db_id}",
        "file_format": "RDS_PARQUET",
        "task_warehouse": "COMPUTE_WH",
        "pipeline": pipeline,
    }
    return {key: given.get(key) or value for key, value in defaults.items()}


def pipeline_of(manifest: dict[str, Any]) -> tuple[str, str]:
    """(account, pipeline) from the execution ARN
    ``arn:aws:states:<region>:<account>:execution:<state machine>:<name>``."""
    parts = str(manifest.get("execution") or "").split(":")
    if len(parts) >= 8 and parts[2] == "states" and parts[5] == "execution":
        return parts[4], parts[6]
    return "<account>", "rds-s3-export"


def main(argv: list[str] | None = None, manifest: dict[str, Any] | None = None) -> int:
    """The CLI; ``manifest`` is given by a caller that already holds one (the sandbox)."""
    parser = argparse.ArgumentParser(
        prog="python -m snowflake_sql", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--manifest", required=manifest is None, help="s3://bucket/key or a local file"
    )
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
        help="a fixed SCHEDULE for the task instead of the manifest's trigger "
        "(e.g. 'USING CRON 0 7 * * * UTC'); see docs/snowflake.md for what each costs",
    )
    parser.add_argument("--error-integration", help="notification integration for task errors")
    parser.add_argument("--notify-email", help="e-mail address alerted when a load fails")
    args = parser.parse_args(argv)
    if not args.external_id and not chosen_external_id():
        _log(
            "no --external-id and no snowflake_external_id in cdk.json: the script names "
            "<pipeline_name>-snowflake; CREATE STORAGE INTEGRATION IF NOT EXISTS keeps an "
            "integration you already made with Snowflake's own id"
        )

    if manifest is None:
        manifest = read_manifest(args.manifest)
    options = default_options(
        manifest,
        integration=args.integration,
        role_arn=args.role_arn,
        external_id=args.external_id,
        database=args.database,
        schema=args.schema,
        stage=args.stage,
        file_format=args.file_format,
        task_warehouse=args.warehouse,
    )
    sql = render(
        manifest,
        **options,
        schedule=args.schedule,
        error_integration=args.error_integration,
        notify_email=args.notify_email,
    )
    sys.stdout.write(sql)
    _log(f"wrote the SQL for export {manifest['export_task_id']} to stdout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
