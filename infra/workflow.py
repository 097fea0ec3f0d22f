"""The state machine: the ASL file in statemachine/, deployed as it is.

Defaults owned here: a STANDARD state machine with a fixed name (`pipeline_name`, so IAM
policies can name its ARN without a reference cycle), every event logged (level ALL, with
execution data) to `/aws/vendedlogs/states/<name>` with the configured retention, X-Ray
tracing, and a role that may invoke only this pipeline's functions.

The overall timeout is the ASL file's own top-level `TimeoutSeconds` (CDK's `timeout` prop
applies only to definitions built in CDK). Synthesis checks that the file is valid JSON, that
its `${...}` placeholders are exactly the substitutions the stack provides, and that the timeout
leaves room for the configured snapshot and export deadlines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from aws_cdk import Aws, CfnResource
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from infra.common import depends_on_policies, log_group, state_machine_arn
from infra.config import ConfigError, PipelineConfig
from infra.functions import PipelineFunctions
from infra.policies import ScopedPolicy, Wildcard, acknowledge
from statemachine.definition import ALERT_TOPIC_PLACEHOLDER

ASL_PATH = Path(__file__).resolve().parent.parent / "statemachine" / "export_pipeline.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Time the steps around the two waits need (validate, purge pages, prune), on top of them.
TIMEOUT_MARGIN_SECONDS = 3600

LOG_DELIVERY_REASON = (
    "AWS requires Resource '*' for the actions CDK adds for execution logging and tracing: the "
    "CloudWatch Logs vended-log delivery actions (logs:CreateLogDelivery, GetLogDelivery, "
    "UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, "
    "DescribeResourcePolicies, DescribeLogGroups) and xray:PutTraceSegments, "
    "PutTelemetryRecords, GetSamplingRules, GetSamplingTargets have no resource-level "
    "permissions."
)


class DefinitionError(ValueError):
    """The ASL file does not fit the stack (invalid JSON, placeholders, timeout)."""


def placeholders(text: str) -> set[str]:
    """The `${Name}` placeholders in an ASL text."""
    return set(PLACEHOLDER.findall(text))


def check_definition(
    path: Path, substitutions: Mapping[str, str], config: PipelineConfig
) -> dict[str, Any]:
    """Fail synthesis early if the ASL file and the stack do not fit together."""
    text = path.read_text(encoding="utf-8")
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as err:
        raise DefinitionError(f"{path} is not valid JSON: {err}") from err
    found, provided = placeholders(text), set(substitutions)
    if found != provided:
        raise DefinitionError(
            f"{path}: placeholders and stack substitutions differ; only in the file: "
            f"{sorted(found - provided) or 'none'}, only in the stack: "
            f"{sorted(provided - found) or 'none'}"
        )
    timeout = definition.get("TimeoutSeconds") if isinstance(definition, dict) else None
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise DefinitionError(f"{path} needs a top-level TimeoutSeconds (the overall timeout)")
    needed = (
        config.snapshot_timeout_seconds + config.export_timeout_seconds + TIMEOUT_MARGIN_SECONDS
    )
    if needed > timeout:
        raise ConfigError(
            "export_timeout_seconds",
            f"snapshot_timeout_seconds + export_timeout_seconds + {TIMEOUT_MARGIN_SECONDS} s "
            f"({needed} s) exceed the state machine's TimeoutSeconds ({timeout} s) in {path.name}",
        )
    return dict(definition)


class ExportWorkflow(Construct):
    """The state machine, its role and its log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        functions: PipelineFunctions,
        logs_key: kms.IKey,
        alert_topic_arn: str,
        definition_path: Path = ASL_PATH,
    ) -> None:
        super().__init__(scope, construct_id)
        # the functions, and the topic a successful run tells when notify_success is set
        substitutions = {**functions.substitutions, ALERT_TOPIC_PLACEHOLDER: alert_topic_arn}
        check_definition(definition_path, substitutions, config)

        self.role = iam.Role(
            self,
            "Role",
            description=f"{config.pipeline_name}: state machine execution role",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": state_machine_arn(self, config)},
                },
            ),
        )
        invoke = ScopedPolicy(self, "InvokeFunctions", self.role)
        for function in functions.functions.values():
            invoke.allow(
                ["lambda:InvokeFunction"],
                [
                    function.function_arn,
                    Wildcard(
                        f"{function.function_arn}:*",
                        "Versions and aliases of this pipeline's own function only (the "
                        "lambda:invoke integration may call a qualified ARN).",
                    ),
                ],
            )

        # ContinuePurgeInNewExecution starts a new execution of this same state machine
        invoke.allow(["states:StartExecution"], [state_machine_arn(self, config)])

        self.log_group = log_group(
            self,
            "Logs",
            config.log_retention_days,
            logs_key,
            name=f"/aws/vendedlogs/states/{config.pipeline_name}",
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=config.pipeline_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(definition_path)),
            definition_substitutions=substitutions,
            role=self.role,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        default_policy = self.role.node.find_child("DefaultPolicy")  # CDK's logging, tracing
        acknowledge(default_policy, "AwsSolutions-IAM5[Resource::*]", LOG_DELIVERY_REASON)
        self.notify_success_policy: ScopedPolicy | None = None  # only with notify_success
        self._policies: list[IConstruct] = [default_policy, invoke.policy]
        depends_on_policies(self._cfn_state_machine, *self._policies)

    @property
    def _cfn_state_machine(self) -> CfnResource:
        return cast(CfnResource, self.state_machine.node.default_child)

    def allow_success_message(self, topic: sns.ITopic, key: kms.IKey) -> None:
        """notify_success: the NotifySuccess state may publish to the alert topic, and use its
        key to do so: a publisher to a topic encrypted with a customer managed key needs
        kms:GenerateDataKey and kms:Decrypt on that key, and the key's policy (CDK's default,
        which lets the account's IAM policies grant its use) must allow them:
        https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). Only then: without
        notify_success the role may not publish at all."""
        self.notify_success_policy = policy = ScopedPolicy(self, "NotifySuccess", self.role)
        policy.allow(["sns:Publish"], [topic.topic_arn])
        policy.allow(["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])
        self._policies.append(policy.policy)
        depends_on_policies(self._cfn_state_machine, *self._policies)
