"""Small helpers the constructs share: ARNs built from names (no lookups), log groups."""

from __future__ import annotations

from typing import cast

from aws_cdk import ArnFormat, CfnElement, CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.config import Database, PipelineConfig
from infra.nag import Wildcard


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


def log_group(
    scope: Construct, construct_id: str, retention_days: int, name: str | None = None
) -> logs.LogGroup:
    """A log group with `retention_days` (any value CloudWatch Logs accepts), removed with
    the stack: its entries expire on their own."""
    group = logs.LogGroup(
        scope, construct_id, log_group_name=name, removal_policy=RemovalPolicy.DESTROY
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
