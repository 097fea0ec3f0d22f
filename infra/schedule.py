"""When the pipeline runs: EventBridge Scheduler schedules that start the state machine.

Defaults owned here: one schedule per configured database, in a schedule group named after the
pipeline, no flexible time window, the configured expression and time zone, a retry policy for
failed starts, and a dead-letter queue (SSE-SQS, TLS only) for starts that still fail. The
scheduler's role may start this state machine and write to that queue, nothing else.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.common import dead_letter_queue
from infra.config import Database, PipelineConfig
from infra.policies import ScopedPolicy

RETRY_ATTEMPTS = 10
RETRY_MAX_EVENT_AGE = Duration.hours(4)  # a daily export may start late, not a day late
SCHEDULE_NAME_MAX = 64
# A schedule's Description is at most 512 characters (CreateSchedule, "Description", and
# CloudFormation's validation of AWS::Scheduler::Schedule refuses more at synth):
# https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html
SCHEDULE_DESCRIPTION_MAX = 512
ELLIPSIS = "..."


class PipelineSchedules(Construct):
    """The schedule group, one schedule per database, their role and dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue", "the schedules")
        self.group = scheduler.CfnScheduleGroup(self, "Group", name=config.pipeline_name)
        stack = Stack.of(self)
        schedules_in_group = stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{config.pipeline_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.role = iam.Role(
            self,
            "Role",
            description=f"{config.pipeline_name}: EventBridge Scheduler starts the pipeline",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": [self.group.attr_arn, schedules_in_group]},
                },
            ),
        )
        policy = ScopedPolicy(self, "StartPipeline", self.role)
        policy.allow(["states:StartExecution"], [state_machine.state_machine_arn])
        policy.allow(["sqs:SendMessage"], [self.dead_letter_queue.queue_arn])

        self.schedules: list[scheduler.CfnSchedule] = []
        for index, database in enumerate(config.databases):
            schedule = scheduler.CfnSchedule(
                self,
                "Schedule" if not config.multi_database else f"Schedule{index + 1}",
                name=_schedule_name(config, index, database),
                group_name=config.pipeline_name,
                description=schedule_description(database),
                schedule_expression=config.schedule_expression,
                schedule_expression_timezone=config.schedule_timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED" if config.schedule_enabled else "DISABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=state_machine.state_machine_arn,
                    role_arn=self.role.role_arn,
                    input=json.dumps(config.schedule_input(database), sort_keys=True),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=RETRY_MAX_EVENT_AGE.to_seconds(),
                        maximum_retry_attempts=RETRY_ATTEMPTS,
                    ),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                        arn=self.dead_letter_queue.queue_arn
                    ),
                ),
            )
            schedule.node.add_dependency(self.group)
            schedule.node.add_dependency(policy.policy)
            self.schedules.append(schedule)


def _schedule_name(config: PipelineConfig, index: int, database: Database) -> str:
    if not config.multi_database:
        return f"export-{database.identifier}"[:SCHEDULE_NAME_MAX]
    return f"export-{index + 1}-{database.identifier}"[:SCHEDULE_NAME_MAX]


def schedule_description(database: Database) -> str:
    """`Export <kind> <identifier> to s3://<bucket>/<s3_prefix>/`, with the prefix cut short
    (ending in `...`) where a valid prefix would make it longer than Scheduler accepts."""
    head = f"Export {database.kind} {database.identifier} to s3://<bucket>/"
    text = f"{head}{database.s3_prefix}/"
    if len(text) <= SCHEDULE_DESCRIPTION_MAX:
        return text
    room = SCHEDULE_DESCRIPTION_MAX - len(head) - len(ELLIPSIS)
    return f"{head}{database.s3_prefix[:room]}{ELLIPSIS}"
