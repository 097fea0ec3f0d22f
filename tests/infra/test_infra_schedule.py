"""The EventBridge Scheduler schedules that start the pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match


def test_schedule_starts_the_state_machine_with_retries_and_a_dead_letter_queue(
    default_stack: Any,
) -> None:
    schedules = default_stack.stack.schedules
    default_stack.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": "export-mydb",
            "GroupName": "rds-s3-export",
            "Description": Match.any_value(),
            "ScheduleExpression": "cron(0 21 * * ? *)",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": default_stack.ref(default_stack.stack.workflow.state_machine),
                "RoleArn": default_stack.arn_of(schedules.role),
                "Input": "{}",  # the defaults of the single database apply
                "RetryPolicy": {"MaximumEventAgeInSeconds": 14400, "MaximumRetryAttempts": 10},
                "DeadLetterConfig": {"Arn": default_stack.arn_of(schedules.dead_letter_queue)},
            },
        },
    )


def test_scheduler_role_may_only_start_this_state_machine(default_stack: Any) -> None:
    schedules = default_stack.stack.schedules
    policy = Capture()
    default_stack.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {"Statement": policy, "Version": "2012-10-17"},
            "PolicyName": Match.any_value(),
            "Roles": [default_stack.ref(schedules.role)],
        },
    )
    assert policy.as_array() == [
        {
            "Action": "states:StartExecution",
            "Effect": "Allow",
            "Resource": default_stack.ref(default_stack.stack.workflow.state_machine),
        },
        {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": default_stack.arn_of(schedules.dead_letter_queue),
        },
    ]


def test_scheduler_role_trusts_this_schedule_group_only(default_stack: Any) -> None:
    schedules = default_stack.stack.schedules
    trust = default_stack.resource(schedules.role)["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"][0] == {
        "Fn::GetAtt": [default_stack.logical_id(schedules.group), "Arn"]
    }


def test_dead_letter_queue_is_encrypted_and_tls_only(default_stack: Any) -> None:
    queue = default_stack.stack.schedules.dead_letter_queue
    default_stack.template.has_resource_properties(
        "AWS::SQS::Queue",
        {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600},
    )
    default_stack.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [default_stack.ref(queue)],
            "PolicyDocument": Match.object_like(
                {
                    "Statement": [
                        {
                            "Action": "sqs:*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Resource": default_stack.arn_of(queue),
                        }
                    ]
                }
            ),
        },
    )


def test_schedule_follows_the_context(existing_stack: Any) -> None:
    # Given schedule_enabled=false, another expression and time zone
    existing_stack.template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        Match.object_like(
            {
                "ScheduleExpression": "cron(30 4 ? * MON-FRI *)",
                "ScheduleExpressionTimezone": "Europe/Berlin",
                "State": "DISABLED",
            }
        ),
    )


def test_databases_list_makes_one_schedule_per_database(databases_stack: Any) -> None:
    # Given two databases
    schedules = databases_stack.template.find_resources("AWS::Scheduler::Schedule")

    # Then there is one schedule each, every one starting the same state machine with that
    # database's complete input
    state_machine = databases_stack.ref(databases_stack.stack.workflow.state_machine)
    inputs = {}
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["Arn"] == state_machine
        inputs[schedule["Properties"]["Name"]] = json.loads(target["Input"])
    assert inputs == {
        "export-1-orders": {
            "db_instance_identifier": "orders",
            "export_only": [],
            "keep_snapshots": 3,
            "s3_prefix": "exports/orders",
            "snapshot_prefix": "orders-nightly",
            "source": "new-snapshot",
        },
        "export-2-billing": {
            "db_cluster_identifier": "billing",
            "export_only": ["billing.public.invoices"],
            "keep_snapshots": "all",
            "s3_prefix": "exports/billing",
            "snapshot_prefix": "billing-nightly",
            "source": "latest-automated",
        },
    }


def test_the_longest_valid_s3_prefix_synthesises_with_a_description_scheduler_accepts(
    synth: Any,
) -> None:
    """A valid prefix of rules.S3_PREFIX_MAX characters: the schedule's description, which names
    the prefix, is cut to the 512 characters CreateSchedule accepts
    (https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html)."""
    from rds_s3_export import rules

    prefix = ("a/" * rules.S3_PREFIX_MAX)[: rules.S3_PREFIX_MAX - 1] + "z"
    assert len(prefix) == rules.S3_PREFIX_MAX and not prefix.endswith("/")
    stack = synth(s3_prefix=prefix)
    assert stack.synth_error is None, stack.synth_error
    (schedule,) = stack.template.find_resources("AWS::Scheduler::Schedule").values()
    description = schedule["Properties"]["Description"]
    assert len(description) == 512
    assert description.startswith("Export instance mydb to s3://<bucket>/a/a/a/")
    assert description.endswith("...")
    # and the prefix the functions are given is the whole prefix
    env = stack.function("validate_input")["Properties"]["Environment"]["Variables"]
    defaults = env["PIPELINE_DEFAULTS"]
    assert json.loads(defaults)["s3_prefix"] == prefix


def test_a_too_long_s3_prefix_is_refused_naming_the_key() -> None:
    from infra.application import read_context_file
    from infra.config import ConfigError, load_config
    from rds_s3_export import rules

    prefix = "a" * (rules.S3_PREFIX_MAX + 1)
    with pytest.raises(ConfigError, match=rf"s3_prefix.*longer than {rules.S3_PREFIX_MAX}"):
        load_config({**read_context_file(), "s3_prefix": prefix})
