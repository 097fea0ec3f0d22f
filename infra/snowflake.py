"""The role a Snowflake storage integration assumes to read the exports (optional).

Made only when both `snowflake_iam_user_arn` and `snowflake_external_id` are set: the values
Snowflake shows (DESC INTEGRATION: STORAGE_AWS_IAM_USER_ARN, STORAGE_AWS_EXTERNAL_ID) after
`CREATE STORAGE INTEGRATION ... STORAGE_AWS_ROLE_ARN = '<this role's ARN>'`. The role's name is
fixed (`<pipeline_name>-snowflake`), so its ARN is known before the first deploy and the
integration can be created first; docs/snowflake.md gives the order of steps.

What the role may do follows Snowflake's documented policy for an S3 storage integration
(https://docs.snowflake.com/en/user-guide/data-load-s3-config-storage-integration), reduced to
reading:

* trust: only that IAM user, and only with `sts:ExternalId` equal to the configured id;
* `s3:GetObject`, `s3:GetObjectVersion` on `<prefix>/*` of each configured prefix;
* `s3:ListBucket` on the bucket, only for listings under those prefixes (`s3:prefix` is
  `<prefix>/*` or `<prefix>/`); `s3:GetBucketLocation` on the bucket (it has no prefix);
* `kms:Decrypt` on the export key, only through S3 in this region (`kms:ViaService`): the
  exports are SSE-KMS, and a reader without it gets AccessDenied on every object. A key the
  stack creates keeps CDK's default key policy, which lets IAM policies of the account grant
  its use; an imported key's policy must allow it too (see docs/snowflake.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import PipelineConfig
from infra.policies import ScopedPolicy, acknowledge
from infra.storage import ExportLocation
from rds_s3_export.manifest import MANIFEST_NAME

READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")


class SnowflakeAccess(Construct):
    """The read-only role for Snowflake's storage integration and its policy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        storage: ExportLocation,
        iam_user_arn: str,
        external_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        prefixes = config.s3_prefixes
        self.role = iam.Role(
            self,
            "Role",
            # IAM role names are at most 64 characters; pipeline_name has at most 48
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
            role_name=config.snowflake_role_name,
            description=f"{config.pipeline_name}: read by Snowflake's storage integration",
            assumed_by=iam.ArnPrincipal(iam_user_arn),
            external_ids=[external_id],
        )
        policy = ScopedPolicy(self, "ReadExports", self.role)
        policy.allow(READ_ACTIONS, [storage.prefix_objects_arn(p) for p in prefixes])
        policy.allow(
            ["s3:ListBucket"],
            [storage.bucket.bucket_arn],
            conditions={
                "StringLike": {"s3:prefix": [v for p in prefixes for v in (f"{p}/*", f"{p}/")]}
            },
        )
        policy.allow(["s3:GetBucketLocation"], [storage.bucket.bucket_arn])
        policy.allow(
            ["kms:Decrypt"],
            [storage.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
        )
        self.policy = policy.policy


class ManifestNotification(Construct):
    """The bucket tells Snowflake's stage when a manifest is written, and of nothing else.

    Made only when `snowflake_stage_sqs_arn` is set: the SQS queue Snowflake shows as the
    stage's `directory_notification_channel` (DESC STAGE) for a directory table with
    AUTO_REFRESH (https://docs.snowflake.com/en/user-guide/data-load-dirtables-auto-s3). One
    notification per prefix, for `<s3_prefix>/_manifest.json` only (key name filter: prefix
    and suffix, https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html),
    so the export's own files never wake the task: PublishManifest writes the manifest after
    every file of the export is there. The queue belongs to Snowflake, whose policy lets S3
    send to it; nothing here grants more.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        storage: ExportLocation,
    ) -> None:
        super().__init__(scope, construct_id)
        arn = config.snowflake_stage_sqs_arn
        if not arn:
            raise ValueError("ManifestNotification needs snowflake_stage_sqs_arn")
        queue = sqs.Queue.from_queue_arn(self, "StageChannel", arn)
        for prefix in config.s3_prefixes:
            key = f"{prefix}/{MANIFEST_NAME}"
            storage.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.SqsDestination(queue),
                s3.NotificationKeyFilter(prefix=key, suffix=MANIFEST_NAME),
            )
        # CDK puts the notification on the bucket with a custom resource whose Lambda role it
        # makes itself, one per stack, with the AWS managed basic-execution policy (logs only)
        stack = Stack.of(self)
        handler = next(
            c for c in stack.node.children if c.node.id.startswith("BucketNotificationsHandler")
        )
        role = handler.node.find_child("Role")
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's own bucket-notification handler (a custom resource run at deploy time only): "
            "its role's managed policy grants CloudWatch Logs writes and nothing else; CDK "
            "offers no way to replace it.",
        )


def snowflake_side(
    scope: Construct, config: PipelineConfig, storage: ExportLocation
) -> tuple[SnowflakeAccess | None, ManifestNotification | None]:
    """The Snowflake role (with the integration's user and external id) and the manifest's
    notification (with the stage's queue), each only when its keys are set; made in the stack
    that holds the bucket (the pipeline's, or with data_account_id the data stack)."""
    access = None
    if config.snowflake_iam_user_arn and config.snowflake_external_id:
        access = SnowflakeAccess(
            scope,
            "Snowflake",
            config=config,
            storage=storage,
            iam_user_arn=config.snowflake_iam_user_arn,
            external_id=config.snowflake_external_id,
        )
    notification = None
    if config.snowflake_stage_sqs_arn:
        notification = ManifestNotification(
            scope, "ManifestNotification", config=config, storage=storage
        )
    return access, notification


def stage_outputs(
    scope: Construct,
    *,
    bucket_name: str,
    key_arn: str,
    prefixes: Sequence[str],
    snowflake: SnowflakeAccess | None,
) -> None:
    """What a Snowflake administrator copies from the stack that holds the bucket: the stage
    URL, the key its integration decrypts with, and the role (when the stack made it)."""
    CfnOutput(
        scope,
        "SnowflakeStageUrl",
        value=", ".join(f"s3://{bucket_name}/{prefix}/" for prefix in prefixes),
        description="URL for a Snowflake external stage (its storage integration needs "
        "kms:Decrypt on KmsKeyArn)",
    )
    CfnOutput(scope, "KmsKeyArn", value=key_arn)
    if snowflake is not None:
        CfnOutput(
            scope,
            "SnowflakeRoleArn",
            value=snowflake.role.role_arn,
            description="STORAGE_AWS_ROLE_ARN of the Snowflake storage integration",
        )
