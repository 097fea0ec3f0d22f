"""Event triggers, off by default: EventBridge rules that start the state machine when a snapshot
exists (an RDS snapshot-created event, a completed AWS Backup job).

Built only when `-c snapshot_events=true` or `-c backup_vault=<name>` is set; without them the
stack has none of this. The patterns and inputs are infra/triggers.py's. Each rule's target is
the state machine, through a role that may start exactly this state machine, with a retry
policy and a dead-letter queue (SSE-SQS, TLS only) for starts that still fail. EventBridge
delivers events best effort; the schedule (source latest-automated or backup) catches up on
lost ones, and each snapshot is exported once (rds_s3_export.freshness).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.common import dead_letter_queue
from infra.config import PipelineConfig
from infra.policies import ScopedPolicy
from infra.triggers import Trigger, Where, triggers

RETRY_ATTEMPTS = 10
RETRY_MAX_EVENT_AGE = Duration.hours(4)  # as the schedules': a start may be late, not a day late


def enabled(config: PipelineConfig) -> bool:
    return bool(config.snapshot_events or config.backup_vault)


class PipelineEventTriggers(Construct):
    """The rules, their role and their dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", "the event rules' targets"
        )
        self.role = iam.Role(
            self,
            "Role",
            description=f"{config.pipeline_name}: EventBridge starts the pipeline on an event",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        policy = ScopedPolicy(self, "StartPipeline", self.role)
        policy.allow(["states:StartExecution"], [state_machine.state_machine_arn])
        where = Where(partition=Aws.PARTITION, region=Aws.REGION, account=Aws.ACCOUNT_ID)
        self.triggers = triggers(config, where)
        self.rules: list[events.CfnRule] = []
        for trigger in self.triggers:
            rule = self._rule(trigger, state_machine)
            rule.node.add_dependency(policy.policy)
            self.rules.append(rule)
        # EventBridge sends to the dead-letter queue as the rules (a resource policy, not the
        # role): each rule may send, no one else
        self.dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                resources=[self.dead_letter_queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [r.attr_arn for r in self.rules]}},
            )
        )

    def _rule(self, trigger: Trigger, state_machine: sfn.IStateMachine) -> events.CfnRule:
        transformer = events.CfnRule.InputTransformerProperty(
            input_template=trigger.input_template,
            input_paths_map=trigger.input_paths or None,
        )
        return events.CfnRule(
            self,
            trigger.name,
            description=trigger.description[:512],
            event_pattern=trigger.pattern,
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="StateMachine",
                    arn=state_machine.state_machine_arn,
                    role_arn=self.role.role_arn,
                    input_transformer=transformer,
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=RETRY_MAX_EVENT_AGE.to_seconds(),
                        maximum_retry_attempts=RETRY_ATTEMPTS,
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                        arn=self.dead_letter_queue.queue_arn
                    ),
                )
            ],
        )
