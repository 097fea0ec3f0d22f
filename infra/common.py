"""Small helpers the constructs share: ARNs built from names (no lookups), log groups."""

from __future__ import annotations

from typing import cast

from aws_cdk import ArnFormat, Aws, CfnElement, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from infra.config import Database, PipelineConfig
from infra.policies import Wildcard, acknowledge

DEAD_LETTER_RETENTION = Duration.days(14)


def rds_arn(scope: Construct, resource_type: str, name: str) -> str:
    """`arn:<partition>:rds:<region>:<account>:<resource_type>:<name>` of this stack's account."""
    return Stack.of(scope).format_arn(
        service="rds",
        resource=resource_type,
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def database_arn(scope: Construct, database: Database) -> str:
    """The ARN of the instance (`db:`) or cluster (`cluster:`)."""
    return rds_arn(scope, "cluster" if database.kind == "cluster" else "db", database.identifier)


def snapshot_type(database: Database) -> str:
    return "cluster-snapshot" if database.kind == "cluster" else "snapshot"


def own_snapshots(scope: Construct, database: Database) -> Wildcard:
    """The snapshots this pipeline creates of `database`: `<snapshot_prefix>-*`."""
    return Wildcard(
        rds_arn(scope, snapshot_type(database), f"{database.snapshot_prefix}-*"),
        f"The pipeline names each snapshot it creates '{database.snapshot_prefix}-<UTC minute>' "
        "(plus a run suffix on a clash), a new id per run, so its snapshots are matched by the "
        "configured snapshot prefix.",
    )


def automated_snapshots(scope: Construct, database: Database) -> Wildcard:
    """The automated snapshots RDS takes of `database`: `rds:<identifier>-*`."""
    return Wildcard(
        rds_arn(scope, snapshot_type(database), f"rds:{database.identifier}-*"),
        f"RDS names the automated snapshots of '{database.identifier}' "
        f"'rds:{database.identifier}-<timestamp>'; the pipeline reads and exports the latest "
        "one when source is latest-automated.",
    )


def any_snapshot(scope: Construct, kind: str) -> Wildcard:
    """Every snapshot (`snapshot:*`) or cluster snapshot (`cluster-snapshot:*`) of this account
    and region: for the calls that must reach a snapshot named per run (`source: snapshot`)."""
    resource_type = "cluster-snapshot" if kind == "cluster" else "snapshot"
    return Wildcard(
        rds_arn(scope, resource_type, "*"),
        "source 'snapshot' exports a snapshot of any name of the configured database, and an "
        "RDS snapshot ARN does not name its database, so IAM cannot scope these read/export "
        "actions to the database: the validate and create-snapshot steps refuse a snapshot "
        "whose DBInstanceIdentifier / DBClusterIdentifier is not the configured database. "
        "Creating, tagging and deleting stay limited to the pipeline's own snapshots.",
    )


def state_machine_arn(scope: Construct, config: PipelineConfig) -> str:
    """The state machine's ARN, built from its fixed name (no reference, so no cycle)."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=config.pipeline_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def executions_arn(scope: Construct, config: PipelineConfig) -> Wildcard:
    """Every execution of the state machine: `execution:<name>:*`."""
    return Wildcard(
        Stack.of(scope).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{config.pipeline_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        ),
        "Executions of this pipeline's own state machine only; each execution has a "
        "generated name, so they are matched by the state machine's name.",
    )


def logs_key(scope: Construct, construct_id: str, config: PipelineConfig) -> kms.Key:
    """The customer-managed key every log group of the stack is encrypted with (the logs name
    databases, snapshots and S3 paths).

    A key of its own, not the export key: the export key may be imported (`kms_key_arn`), and
    then its policy is not the stack's to change; and whoever may decrypt the exports (a
    Snowflake storage integration) has no business reading the pipeline's logs.
    """
    key = kms.Key(
        scope,
        construct_id,
        description=f"{config.pipeline_name}: encrypts the pipeline's CloudWatch log groups",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,  # log events written under it stay readable
    )
    # CloudWatch Logs uses the key for log groups of this account and region only, as
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
    # documents (service principal logs.<region>.amazonaws.com, the actions listed there, and
    # the kms:EncryptionContext:aws:logs:arn condition).
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": Stack.of(scope).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return key


def log_group(
    scope: Construct,
    construct_id: str,
    retention_days: int,
    key: kms.IKey,
    name: str | None = None,
) -> logs.LogGroup:
    """A log group with `retention_days` (any value CloudWatch Logs accepts), encrypted with
    `key` (see `logs_key`), removed with the stack: its entries expire on their own."""
    group = logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    cast(logs.CfnLogGroup, group.node.default_child).retention_in_days = retention_days
    return group


def depends_on_policies(resource: CfnResource, *policies: IConstruct) -> None:
    """Make `resource` depend on exactly `policies` (so it runs with its permissions).

    Given a role, the Lambda and Step Functions L2 constructs also depend on the role itself,
    which they already reference with GetAtt; cfn-lint flags that as redundant (W3005). Setting
    DependsOn explicitly keeps the dependencies that matter and drops the redundant one.
    """
    stack = Stack.of(resource)
    resource.add_override(
        "DependsOn",
        sorted(
            stack.resolve(stack.get_logical_id(cast(CfnElement, policy.node.default_child)))
            for policy in policies
        ),
    )


def dead_letter_queue(scope: Construct, construct_id: str, whose: str) -> sqs.Queue:
    """The dead-letter queue of `whose` starts of the state machine (SSE-SQS, TLS only, kept
    14 days): a start that fails every retry lands here, and an alarm says so."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue is itself the dead-letter queue of {whose} (failed starts land here and "
        "raise an alarm); cdk-nag recognises only SQS-to-SQS redrive.",
    )
    return queue
