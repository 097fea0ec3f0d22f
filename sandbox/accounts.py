"""Two accounts in the sandbox: the database's (the pipeline) and the data platform's (issue 19).

In a cross-account deployment the export lands in a bucket of the data platform's account: the
data stack (bucket, export KMS key, Snowflake's read-only role) is there, the pipeline stack
(functions, state machine, export role) beside the database. `Sandbox(data_account_id=...)`
builds the same split on moto. RDS exports to a bucket of another account through the export
role, and encrypts with a key of another account given by its key ARN, when the bucket policy
and the key policy allow the role (the RDS guide's cross-account bucket and KMS key sections:
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html, and
StartExportTask's KmsKeyId:
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_StartExportTask.html).

How moto keeps accounts apart (moto 5.2, verified in tests/pipeline/test_cross_account.py):

* every request lands in one account's backends, chosen from the request's access key: the
  sandbox's fake key belongs to no account, so its calls land in moto's fallback account
  (`sandbox.runtime.ACCOUNT`, or the sandbox's `pipeline_account_id` through seam 13 of
  sandbox/seams.py); the credentials STS AssumeRole returns
  for `arn:aws:iam::<account>:role/<name>` land in `<account>` (moto does not require the
  role to exist, nor check any trust or permission);
* S3 bucket names are global: a bucket made in the data account is found by name from any
  account (`s3_backends.bucket_accounts`), and ListBuckets lists it only in its own account;
* KMS keys are per account, and moto does not resolve a key ARN of another account (AWS does,
  when the key policy allows: https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html);
  S3 records the SSE-KMS key id it is given without calling KMS. The Snowflake reader here
  therefore checks each object's key itself: its ARN names the data account and the key is
  found there.

The role names the sandbox gives the pipeline's roles are decided in `PipelineRoles`, and
only there.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from infra.config import CROSS_ACCOUNT_ROLES
from rds_s3_export.manifest import manifest_key

PARTITION = "aws"
# An AWS account ID is 12 digits: https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-identifiers.html
ACCOUNT_ID = re.compile(r"\d{12}")
# The role CloudFormation deploys a CDK stack with in a bootstrapped environment (the data
# stack is deployed into the data account with it):
# https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
CDK_DEPLOY_ROLE = "cdk-hnb659fds-cfn-exec-role-{account}-{region}"


def check_account_id(value: str, name: str) -> str:
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        raise ValueError(f"{name} must be a 12-digit AWS account ID, not {value!r}")
    return value


def role_arn(account: str, name: str) -> str:
    """An IAM role's ARN: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html"""
    return f"arn:{PARTITION}:iam::{account}:role/{name}"


def account_of(arn: str) -> str:
    """The account field (the fifth) of an ARN."""
    return arn.split(":")[4]


@dataclass(frozen=True)
class PipelineRoles:
    """The names of the pipeline's roles in a cross-account deployment, deterministic so that
    the data stack can name them (in the bucket and key policies) before the pipeline stack
    exists. The names are the stack's (infra.config.CROSS_ACCOUNT_ROLES, which
    PipelineConfig.role_names() reads): `<pipeline_name>-rds-export` for the export role, and
    `<pipeline_name>-<suffix>` for each function the data account's policies name. A function
    they do not name (its role keeps a generated name in the stack) gets `<pipeline_name>-<step
    module with hyphens>` here."""

    pipeline_name: str
    account: str

    def export_role_name(self) -> str:
        return f"{self.pipeline_name}-{CROSS_ACCOUNT_ROLES['export_role']}"

    def function_role_name(self, module: str) -> str:
        suffix = CROSS_ACCOUNT_ROLES.get(module, module.replace("_", "-"))
        return f"{self.pipeline_name}-{suffix}"

    def export_role_arn(self) -> str:
        return role_arn(self.account, self.export_role_name())

    def function_role_arn(self, module: str) -> str:
        return role_arn(self.account, self.function_role_name(module))


class AssumedRoleClients:
    """Clients under the credentials of one role, assumed once with STS AssumeRole (in moto:
    clients whose calls land in the role's account)."""

    def __init__(
        self, sts: Callable[[], Any], make_client: Callable[..., Any], arn: str, session: str
    ) -> None:
        self.role_arn = arn
        self._sts = sts
        self._make_client = make_client
        self._session = session
        self._credentials: dict[str, str] | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if self._credentials is None:
                found = self._sts().assume_role(
                    RoleArn=self.role_arn, RoleSessionName=self._session
                )["Credentials"]
                self._credentials = {
                    "aws_access_key_id": found["AccessKeyId"],
                    "aws_secret_access_key": found["SecretAccessKey"],
                    "aws_session_token": found["SessionToken"],
                }
            made = self._clients.get(service)
            if made is None:
                made = self._make_client(service, **self._credentials)
                self._clients[service] = made
            return made


class ReadRefused(ValueError):
    """What the manifest lists cannot be read as the manifest says, from the data account."""


@dataclass(frozen=True)
class ManifestRead:
    """What a reader got from a published export: the manifest and every file it lists."""

    export_task_id: str
    files: int
    bytes: int
    rows: dict[str, int]  # table target -> rows read from the files' Parquet footers
    key_arns: frozenset[str]  # the SSE-KMS keys of the manifest and of every file


def _check_encryption(kms: Any, head: dict[str, Any], where: str, account: str) -> str:
    """The object's SSE-KMS key, which must be a key of `account` that `kms` finds."""
    key = head.get("SSEKMSKeyId")
    if head.get("ServerSideEncryption") != "aws:kms" or not key:
        raise ReadRefused(f"{where} is not SSE-KMS encrypted")
    if account_of(key) != account:
        raise ReadRefused(f"{where} is encrypted with {key}, a key outside account {account}")
    try:
        kms.describe_key(KeyId=key)
    except kms.exceptions.NotFoundException as error:
        raise ReadRefused(f"{where}: key {key} is not found in account {account}") from error
    return str(key)


def read_published_export(
    clients: Callable[[str], Any], bucket: str, s3_prefix: str
) -> ManifestRead:
    """Read `_manifest.json` and every file it lists as the principal `clients` (service ->
    client) call as (the Snowflake role), checking each file's size and Parquet row count
    against the manifest, and its SSE-KMS key against that principal's own account (see the
    module docstring)."""
    account = str(clients("sts").get_caller_identity()["Account"])
    s3, kms = clients("s3"), clients("kms")
    key = manifest_key(s3_prefix)
    found = s3.get_object(Bucket=bucket, Key=key)
    keys = {_check_encryption(kms, found, key, account)}
    manifest = json.loads(found["Body"].read())
    files = total = 0
    rows: dict[str, int] = {}
    for table in manifest["tables"]:
        if table.get("files_omitted"):
            raise ReadRefused(f"{table['target']}: the manifest does not list its files")
        read = 0
        for entry in table.get("files", []):
            path = f"{table['folder']}{entry['path']}"
            got = s3.get_object(Bucket=bucket, Key=path)
            keys.add(_check_encryption(kms, got, path, account))
            body = got["Body"].read()
            if len(body) != entry["size"]:
                raise ReadRefused(f"{path}: {len(body)} bytes, the manifest says {entry['size']}")
            in_file = pq.read_metadata(io.BytesIO(body)).num_rows
            if in_file != entry["rows"]:
                raise ReadRefused(f"{path}: {in_file} rows, the manifest says {entry['rows']}")
            files, total, read = files + 1, total + len(body), read + in_file
        if read != table["row_count"]:
            raise ReadRefused(
                f"{table['target']}: {read} rows, the manifest says {table['row_count']}"
            )
        rows[table["target"]] = read
    return ManifestRead(manifest["export_task_id"], files, total, rows, frozenset(keys))
