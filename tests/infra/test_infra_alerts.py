"""Failure alerts: the encrypted topic, the EventBridge rule, the failed-start alarm."""

from __future__ import annotations

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
