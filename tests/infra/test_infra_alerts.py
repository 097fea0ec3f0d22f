"""Failure alerts: the encrypted topic, the EventBridge rule, the failed-start alarm."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_cdk.assertions import Capture, Match


def test_topic_is_encrypted_with_a_rotating_key(default_stack: Any) -> None:
    alerts = default_stack.stack.alerts
    default_stack.template.has_resource_properties(
        "AWS::SNS::Topic",
        Match.object_like({"KmsMasterKeyId": default_stack.arn_of(alerts.key)}),
    )
    assert default_stack.resource(alerts.key)["Properties"]["EnableKeyRotation"] is True


def test_rule_sends_failed_timed_out_and_aborted_executions(default_stack: Any) -> None:
    stack = default_stack.stack
    template = Capture()
    default_stack.template.has_resource_properties(
        "AWS::Events::Rule",
        Match.object_like(
            {
                "EventPattern": {
                    "source": ["aws.states"],
                    "detail-type": ["Step Functions Execution Status Change"],
                    "detail": {
                        "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                        "stateMachineArn": [default_stack.ref(stack.workflow.state_machine)],
                    },
                },
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "AlertTopic",
                        "Arn": default_stack.ref(stack.alerts.topic),
                        "InputTransformer": {
                            "InputPathsMap": Match.object_like(
                                {
                                    "name": "$.detail.name",
                                    "status": "$.detail.status",
                                    "error": "$.detail.error",
                                    "cause": "$.detail.cause",
                                }
                            ),
                            "InputTemplate": template,
                        },
                    }
                ],
            }
        ),
    )
    # The message reads as a sentence with the execution, status, error and cause
    message = template.as_string()
    for field in ("<name>", "<status>", "<error>", "<cause>", "<execution>"):
        assert field in message
    assert message.startswith('"') and message.endswith('"')  # a plain string for SNS


def test_topic_accepts_publishes_only_from_the_rule_and_the_alarm(default_stack: Any) -> None:
    alerts = default_stack.stack.alerts
    default_stack.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [default_stack.ref(alerts.topic)],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    Match.object_like(
                        {
                            "Effect": "Deny",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ),
                    {
                        "Sid": "AllowFailureRule",
                        "Action": "sns:Publish",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Resource": default_stack.ref(alerts.topic),
                        "Condition": {
                            "ArnEquals": {
                                "aws:SourceArn": {
                                    "Fn::GetAtt": [default_stack.logical_id(alerts.rule), "Arn"]
                                }
                            },
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                        },
                    },
                    {
                        "Sid": "AllowFailedStartsAlarm",
                        "Action": "sns:Publish",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Resource": default_stack.ref(alerts.topic),
                        "Condition": {
                            "ArnEquals": {
                                "aws:SourceArn": default_stack.arn_of(alerts.failed_starts_alarm)
                            },
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                        },
                    },
                ],
            },
        },
    )


def test_failed_scheduled_starts_raise_an_alarm(default_stack: Any) -> None:
    stack = default_stack.stack
    default_stack.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        Match.object_like(
            {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [
                    {
                        "Name": "QueueName",
                        "Value": {
                            "Fn::GetAtt": [
                                default_stack.logical_id(stack.schedules.dead_letter_queue),
                                "QueueName",
                            ]
                        },
                    }
                ],
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "AlarmActions": [default_stack.ref(stack.alerts.topic)],
            }
        ),
    )


def test_no_email_subscription_without_an_address(default_stack: Any) -> None:
    assert default_stack.template.find_resources("AWS::SNS::Subscription") == {}


def test_email_subscription_when_an_address_is_set(existing_stack: Any) -> None:
    existing_stack.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "data-team@example.com",
            "TopicArn": existing_stack.ref(existing_stack.stack.alerts.topic),
        },
    )


# --- notify_success: a successful run's summary on the same topic --------------------------


def test_the_state_machine_is_given_the_topic_and_by_default_may_not_publish(
    default_stack: Any,
) -> None:
    # The ASL's NotifySuccess state names the topic through a substitution, in every template
    stack = default_stack.stack
    machine = default_stack.resource(stack.workflow.state_machine)["Properties"]
    assert machine["DefinitionSubstitutions"]["AlertTopicArn"] == default_stack.ref(
        stack.alerts.topic
    )
    # but without notify_success no identity policy allows sns:Publish, nor the topic key's use
    assert default_stack.statements_with("sns:Publish") == []
    assert stack.workflow.notify_success_policy is None
    settings = default_stack.function("validate_input")["Properties"]["Environment"]["Variables"]
    assert "notify_success" not in json.loads(settings["PIPELINE_SETTINGS"])


def test_notify_success_lets_the_state_machine_publish_to_the_alert_topic_only(
    synth: Callable[..., Any],
) -> None:
    notify = synth(notify_success="true")  # as `-c notify_success=true` gives it
    stack = notify.stack
    policy = stack.workflow.notify_success_policy
    assert policy is not None
    assert notify.statements(policy.policy) == [
        {"Action": "sns:Publish", "Effect": "Allow", "Resource": notify.ref(stack.alerts.topic)},
        {
            # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Effect": "Allow",
            "Resource": notify.arn_of(stack.alerts.key),
        },
    ]
    assert notify.resource(policy.policy)["Properties"]["Roles"] == [
        notify.ref(stack.workflow.role)
    ]
    # the state machine waits for the permission, and the run's config carries the setting
    machine = notify.resource(stack.workflow.state_machine)
    assert notify.logical_id(policy.policy) in machine["DependsOn"]
    settings = notify.function("validate_input")["Properties"]["Environment"]["Variables"]
    assert json.loads(settings["PIPELINE_SETTINGS"])["notify_success"] is True
    # cdk-nag stays clean
    assert notify.synth_error is None, notify.synth_error
