"""The event triggers in the synthesised template: only with their context keys, scoped to the
configured database, targeting the state machine with a dead-letter queue and a role that may
only start it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.triggers import Where, triggers

EVENTS_ON = {"snapshot_events": "true", "snapshot_events_manual": "true", "backup_vault": "nightly"}
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}


def _resolve(value: Any) -> Any:
    """A template value with Fn::Join over pseudo parameters resolved for PSEUDO."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in PSEUDO:
            return PSEUDO[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(_resolve(p)) for p in parts)
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _event_rules(stack: Any) -> dict[str, dict[str, Any]]:
    """The template's rules other than the alerts' (which match Step Functions events)."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in stack.resources.items()
        if resource["Type"] == "AWS::Events::Rule"
        and "aws.states" not in str(resource["Properties"].get("EventPattern"))
    }


def test_without_the_event_keys_the_template_is_unchanged(
    default_stack: Any, synth: Callable[..., Any]
) -> None:
    # Given the keys set to their "off" values explicitly
    off = synth(snapshot_events="false", snapshot_events_manual="false", backup_vault="")
    # Then the template is the default one, which has no event trigger
    assert off.data == default_stack.data
    assert _event_rules(default_stack) == {}
    assert default_stack.stack.event_triggers is None


def test_the_rules_are_the_triggers_scoped_to_the_database(synth: Callable[..., Any]) -> None:
    on = synth(**EVENTS_ON)
    assert on.synth_error is None, on.synth_error  # cdk-nag: no unacknowledged finding
    constructs = on.stack.event_triggers
    assert constructs is not None
    expected = {
        t.name: t
        for t in triggers(
            on.stack.config,
            Where(**{"partition": "aws", "region": "eu-west-1", "account": "123456789012"}),
        )
    }
    found = _event_rules(on)
    assert len(found) == len(expected) == 3
    by_name = {on.logical_id(rule): rule for rule in constructs.rules}
    for logical_id, properties in found.items():
        trigger = expected[by_name[logical_id].node.id]
        assert _resolve(properties["EventPattern"]) == trigger.pattern
        (target,) = properties["Targets"]
        assert target["Arn"] == on.ref(on.stack.workflow.state_machine)
        assert target["RoleArn"] == on.arn_of(constructs.role)
        assert target["DeadLetterConfig"] == {"Arn": on.arn_of(constructs.dead_letter_queue)}
        assert target["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": 14400,
            "MaximumRetryAttempts": 10,
        }
        transformer = target["InputTransformer"]
        assert transformer["InputTemplate"] == trigger.input_template
        assert transformer.get("InputPathsMap", {}) == trigger.input_paths
    # the automated rule names the database's automated snapshots by ARN prefix
    automated = _resolve(found[on.logical_id(constructs.rules[0])]["EventPattern"])
    assert automated["detail"] == {
        "EventID": ["RDS-EVENT-0091"],
        "SourceArn": [{"prefix": "arn:aws:rds:eu-west-1:123456789012:snapshot:rds:mydb-"}],
    }


def test_the_rules_role_may_only_start_this_state_machine(synth: Callable[..., Any]) -> None:
    on = synth(**EVENTS_ON)
    constructs = on.stack.event_triggers
    role = on.resource(constructs.role)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    statements = [
        s
        for logical_id, s in on.identity_statements()
        if on.ref(constructs.role) in on.resources[logical_id]["Properties"]["Roles"]
    ]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("states:StartExecution", on.ref(on.stack.workflow.state_machine))
    ]


def test_the_dead_letter_queue_is_encrypted_and_only_the_rules_may_send(
    synth: Callable[..., Any],
) -> None:
    on = synth(**EVENTS_ON)
    constructs = on.stack.event_triggers
    queue = on.resource(constructs.dead_letter_queue)
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in on.resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy"
        and on.ref(constructs.dead_letter_queue) in r["Properties"]["Queues"]
    ]
    (statements,) = policies
    send = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    assert len(send) == 1 and send[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(map(str, send[0]["Condition"]["ArnEquals"]["aws:SourceArn"])) == sorted(
        str({"Fn::GetAtt": [on.logical_id(r), "Arn"]}) for r in constructs.rules
    )
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s) for s in statements)


def test_source_backup_may_list_only_the_configured_vault(
    default_stack: Any, synth: Callable[..., Any]
) -> None:
    on = synth(**EVENTS_ON)
    (statement,) = on.statements_with("backup:ListRecoveryPointsByBackupVault")
    assert _resolve(statement["Resource"]) == (
        "arn:aws:backup:eu-west-1:123456789012:backup-vault:nightly"
    )
    assert default_stack.statements_with("backup:ListRecoveryPointsByBackupVault") == []


def test_a_failed_event_start_raises_the_alert(synth: Callable[..., Any]) -> None:
    on = synth(**EVENTS_ON)
    queue = on.stack.event_triggers.dead_letter_queue
    alarms = [
        r["Properties"]
        for r in on.resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": [on.logical_id(queue), "QueueName"]}}
        in r["Properties"].get("Dimensions", [])
    ]
    (alarm,) = alarms
    assert alarm["AlarmActions"] == [on.ref(on.stack.alerts.topic)]
    assert alarm["Threshold"] == 1
