"""Where exports land: the bucket, the KMS key, and the role RDS writes with.

Defaults owned here:

* the bucket blocks all public access, refuses plain HTTP (and TLS below 1.2), encrypts with
  SSE-KMS under the export key (with an S3 Bucket Key, to keep KMS calls and cost down), logs
  its access to a separate bucket, and is retained when the stack is deleted;
* versioning is off on purpose: the purge step deletes the previous export once a newer one is
  complete, and with versioning every deleted export would stay billed as non-current versions.
  The history of the data lives in the database's snapshots, not in old Parquet files;
* the key rotates yearly and is retained. Its policy is CDK's default (the account's root may
  use it, so the account's IAM policies grant its use): it names no role of this stack, since
  KMS refuses a key policy whose principals do not exist yet or are not yet visible
  (https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html). Each role's
  own IAM policy grants what it does with the key, the start-export function's CreateGrant only
  for grants RDS makes (`kms:GrantIsForAWSResource`), which is how StartExportTask uses a key;
* the export role is assumable by `export.rds.amazonaws.com` (AWS's documented trust policy,
  without conditions), may touch only the configured prefixes, and only the start-export
  function may pass it to RDS (`iam:PassRole`).

An existing bucket (`bucket_name`) or key (`kms_key_arn`) is imported instead; the stack then
cannot change its policies (see "cdk deploy" in docs/deploy.md for what they need).

With `data_account_id` (cross-account delivery) the bucket and the key belong to the data
stack (infra/data_stack.py, in the data account): this construct then names them, the bucket by
its fixed name and the key by its alias ARN, and creates only the export role, with its fixed
name (`PipelineConfig.role_names`), which the data account's policies name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import PipelineConfig
from infra.policies import ScopedPolicy, Wildcard

EXPORT_SERVICE = "export.rds.amazonaws.com"
ACCESS_LOG_EXPIRATION = Duration.days(365)
INCOMPLETE_UPLOAD_EXPIRATION = Duration.days(7)

# The object-level actions AWS documents for the export role (StartExportTask, IamRoleArn).
EXPORT_OBJECT_ACTIONS = ("s3:PutObject*", "s3:GetObject*", "s3:DeleteObject*")
# What RDS needs of the key to write SSE-KMS objects and encrypt the export (no wildcards).
EXPORT_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)


class ExportLocation(Protocol):
    """Where the exports are: a bucket and its key (ExportStorage in the pipeline's stack,
    DataStorage in the data stack)."""

    @property
    def bucket(self) -> s3.IBucket: ...

    @property
    def key(self) -> kms.IKey: ...

    def prefix_objects_arn(self, prefix: str) -> Wildcard: ...


def prefix_objects(bucket: s3.IBucket, prefix: str) -> Wildcard:
    """Every object under `prefix/` (and nothing else in the bucket)."""
    return Wildcard(
        bucket.arn_for_objects(f"{prefix}/*"),
        f"Objects under the configured export prefix '{prefix}/' only: RDS names each "
        "export folder after its export task, and a run's files are not known in advance.",
    )


def create_export_key(scope: Construct, config: PipelineConfig) -> kms.Key:
    """The export key (id `ExportKey`), rotated yearly, retained, alias
    `alias/<pipeline_name>-export`."""
    return kms.Key(
        scope,
        "ExportKey",
        description=f"{config.pipeline_name}: encrypts RDS snapshot exports in S3",
        alias=config.export_key_alias,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )


def create_export_bucket(
    scope: Construct, key: kms.IKey, bucket_name: str | None = None
) -> s3.Bucket:
    """The export bucket (id `ExportBucket`) and its access-log bucket (see the module
    docstring). Ownership is bucket-owner-enforced: ACLs are off and every object belongs to
    the bucket's account, whoever wrote it (a cross-account export role included), so the
    bucket's account can read it:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html"""
    # The access-log target (cdk-nag accepts an access-log target without logging of its
    # own: logging the log bucket would loop).
    access_logs = s3.Bucket(
        scope,
        "AccessLogBucket",
        encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write SSE-KMS
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=False,
        lifecycle_rules=[s3.LifecycleRule(expiration=ACCESS_LOG_EXPIRATION)],
        removal_policy=RemovalPolicy.RETAIN,
    )
    return s3.Bucket(
        scope,
        "ExportBucket",
        bucket_name=bucket_name,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=False,  # see the module docstring
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="export-bucket/",
        lifecycle_rules=[
            s3.LifecycleRule(abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRATION)
        ],
        removal_policy=RemovalPolicy.RETAIN,
    )


# Why the pipeline's IAM policies name every key of the data account (cross-account delivery).
DATA_KEY_REASON = (
    "The export key is the data stack's, in the data account, and its ARN is not known before "
    "that stack is deployed (IAM policies name a key by its ARN only: "
    "https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html). A "
    "principal of this account may use a key of another account only when the key's own "
    "policy allows it too, and only the data stack's key policy names this role."
)


class ExportStorage(Construct):
    """The export bucket, its KMS key and the RDS export role."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.key_is_owned = config.kms_key_arn is None and not config.cross_account
        self.key: kms.IKey
        self.bucket: s3.IBucket
        if config.cross_account:
            # the data stack's bucket and key, in the data account (infra/data_stack.py)
            # named by its ARN once the data stack exists (kms_key_arn, its output KmsKeyArn),
            # before that by its alias ARN (StartExportTask's KmsKeyId accepts one). `key.key_arn`
            # is what the functions are given.
            self.key = kms.Key.from_key_arn(
                self, "ExportKey", config.kms_key_arn or config.data_key_alias_arn
            )
            self.bucket = s3.Bucket.from_bucket_attributes(
                self,
                "ExportBucket",
                bucket_name=config.data_bucket_name,
                account=config.data_account_id,
                region=config.region,
            )
        else:
            self.key = (
                kms.Key.from_key_arn(self, "ExportKey", config.kms_key_arn)
                if config.kms_key_arn
                else create_export_key(self, config)
            )
            self.bucket = (
                s3.Bucket.from_bucket_name(self, "ExportBucket", config.bucket_name)
                if config.bucket_name
                else create_export_bucket(self, self.key)
            )
        self.export_role, self.export_role_policy = self._create_export_role()

    @property
    def key_resource(self) -> str | Wildcard:
        """The key as IAM policies name it: its ARN; in cross-account delivery without
        kms_key_arn, every key of the data account in this region (see DATA_KEY_REASON)."""
        if self._config.cross_account and not self._config.kms_key_arn:
            config = self._config
            keys = f"arn:aws:kms:{config.region}:{config.data_account_id}:key/*"
            return Wildcard(keys, DATA_KEY_REASON)
        return self.key.key_arn

    def prefix_objects_arn(self, prefix: str) -> Wildcard:
        """Every object under `prefix/` (and nothing else in the bucket)."""
        return prefix_objects(self.bucket, prefix)

    def s3_conditions(
        self, conditions: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """`conditions` of a statement on the bucket; in cross-account delivery also
        `s3:ResourceAccount` = the data account
        (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html):
        the bucket's name is fixed and known in advance, and a bucket of that name in any other
        account (made before the data stack's) never receives an export or a manifest."""
        merged: dict[str, Any] = {k: dict(v) for k, v in (conditions or {}).items()}
        if self._config.cross_account:
            merged.setdefault("StringEquals", {})["s3:ResourceAccount"] = (
                self._config.data_account_id
            )
        return merged or None

    def _create_export_role(self) -> tuple[iam.Role, iam.Policy]:
        role = iam.Role(
            self,
            "ExportRole",
            # a fixed name only in cross-account delivery: the data account's policies name it
            role_name=self._config.role_names().get("export_role"),
            description=f"{self._config.pipeline_name}: assumed by RDS to write snapshot exports",
            # Assumed by the RDS export service, with exactly the trust policy AWS documents for
            # it, which has no condition:
            # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html
            # ("Providing access to an Amazon S3 bucket using an IAM role"). No AWS page says
            # RDS sends aws:SourceAccount or aws:SourceArn when it assumes this role (RDS's
            # confused-deputy page covers resource policies that name RDS:
            # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/cross-service-confused-deputy-prevention.html),
            # and a condition on a key RDS does not send would refuse every export. What limits
            # the role's use is iam:PassRole: only the start-export function may pass it.
            assumed_by=iam.ServicePrincipal(EXPORT_SERVICE),
        )
        policy = ScopedPolicy(self, "ExportRolePolicy", role)
        policy.allow(
            EXPORT_OBJECT_ACTIONS,
            [self.prefix_objects_arn(prefix) for prefix in self._config.s3_prefixes],
            conditions=self.s3_conditions(),
            action_wildcard_reason=(
                "AWS documents s3:PutObject*, s3:GetObject* and s3:DeleteObject* as the "
                "object permissions of the snapshot export role (StartExportTask, IamRoleArn); "
                "they apply only under the configured export prefixes."
            ),
        )
        policy.allow(
            ["s3:ListBucket", "s3:GetBucketLocation"],
            [self.bucket.bucket_arn],
            conditions=self.s3_conditions(),
        )
        policy.allow(EXPORT_KEY_ACTIONS, [self.key_resource])
        return role, policy.policy
