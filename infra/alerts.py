"""Who hears about failures: an encrypted SNS topic fed by EventBridge and CloudWatch.

Defaults owned here:

* an EventBridge rule sends a readable message to the topic when an execution of this state
  machine ends FAILED, TIMED_OUT or ABORTED (execution name, status, error, cause, console
  link);
* a CloudWatch alarm fires when a scheduled start ends in the schedules' dead-letter queue
  (the execution never started, so no execution event exists);
* the topic is encrypted with its own KMS key (rotation on) and refuses plain HTTP. Its policy
  lets two service principals publish, each only for its own source: EventBridge for that rule,
  CloudWatch for that alarm. It has no Deny, so an IAM principal of this account whose own
  policy allows sns:Publish on the topic may publish too;
* an e-mail subscription exists only if `alert_email` is set (AWS e-mails a confirmation link).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import PipelineConfig

ALERT_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
EXECUTION_EVENT = "Step Functions Execution Status Change"
KEY_PENDING_WINDOW = Duration.days(7)

# Fields of the execution event the message shows (EventBridge input transformer paths).
MESSAGE_FIELDS = {
    "name": "$.detail.name",
    "status": "$.detail.status",
    "error": "$.detail.error",
    "cause": "$.detail.cause",
    "execution": "$.detail.executionArn",
    "time": "$.time",
    "region": "$.region",
}


def alert_message(pipeline_name: str) -> str:
    """The input template: one line of text (quoted, so SNS receives a plain string)."""
    text = (
        f"RDS export pipeline {pipeline_name}: execution <name> ended <status> at <time>. "
        "Error: <error>. Cause: <cause>. Execution: <execution>. "
        "Console: https://<region>.console.aws.amazon.com/states/home?region=<region>"
        "#/v2/executions/details/<execution>"
    )
    return f'"{text}"'


class PipelineAlerts(Construct):
    """The alert topic, its key, the failure rule and the failed-start alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"{config.pipeline_name}: encrypts the failure alert topic",
            enable_key_rotation=True,
            pending_window=KEY_PENDING_WINDOW,
            removal_policy=RemovalPolicy.DESTROY,  # it protects transient messages only
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"{config.pipeline_name} alerts",
            master_key=self.key,
            enforce_ssl=True,
        )

        self.rule = events.CfnRule(
            self,
            "ExecutionFailedRule",
            description=(f"{config.pipeline_name}: an execution ended {', '.join(ALERT_STATUSES)}"),
            state="ENABLED",
            event_pattern={
                "source": ["aws.states"],
                "detail-type": [EXECUTION_EVENT],
                "detail": {
                    "status": list(ALERT_STATUSES),
                    "stateMachineArn": [state_machine.state_machine_arn],
                },
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="AlertTopic",
                    arn=self.topic.topic_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map=MESSAGE_FIELDS,
                        input_template=alert_message(config.pipeline_name),
                    ),
                )
            ],
        )

        self.failed_starts_alarm = self._dead_letter_alarm(
            "FailedStartsAlarm",
            f"{config.pipeline_name}: a scheduled start failed and is in the dead-letter "
            "queue; no execution ran. Read the message for the error.",
            dead_letter_queue,
        )

        self._allow_publish("events.amazonaws.com", self.rule.attr_arn, "AllowFailureRule")
        self._allow_publish(
            "cloudwatch.amazonaws.com", self.failed_starts_alarm.alarm_arn, "AllowFailedStartsAlarm"
        )
        if config.alert_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alert_email))

    def alarm_on_failed_event_starts(self, dead_letter_queue: sqs.IQueue) -> cloudwatch.Alarm:
        """An alarm on the event triggers' dead-letter queue (infra/events.py), as the
        schedules' has: an event whose run could not be started is not lost silently."""
        alarm = self._dead_letter_alarm(
            "FailedEventStartsAlarm",
            "An event-triggered start failed and is in the event rules' dead-letter queue; "
            "no execution ran. Read the message for the error (the schedule catches up).",
            dead_letter_queue,
        )
        self._allow_publish(
            "cloudwatch.amazonaws.com", alarm.alarm_arn, "AllowFailedEventStartsAlarm"
        )
        return alarm

    def _dead_letter_alarm(
        self, construct_id: str, description: str, queue: sqs.IQueue
    ) -> cloudwatch.Alarm:
        """An alarm, sent to the topic, as soon as `queue` holds a message."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        return alarm

    def _allow_publish(self, service: str, source_arn: str, sid: str) -> None:
        """`service` may publish for `source_arn` only, and use the topic's key to do so."""
        principal = iam.ServicePrincipal(service)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": source_arn},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{sid}ToUseKey",
                principals=[principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
