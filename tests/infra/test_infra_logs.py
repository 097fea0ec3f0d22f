"""Every log group of the stack is encrypted with the stack's logs key, which CloudWatch Logs
may use for this account's log groups only."""

from __future__ import annotations

from typing import Any


def test_every_log_group_is_encrypted_with_the_logs_key(any_stack: Any) -> None:
    key_arn = any_stack.arn_of(any_stack.stack.logs_key)
    groups = {
        logical_id: resource["Properties"].get("KmsKeyId")
        for logical_id, resource in any_stack.resources.items()
        if resource["Type"] == "AWS::Logs::LogGroup"
    }
    assert len(groups) >= 7  # six functions and the state machine
    assert groups == dict.fromkeys(groups, key_arn)


def test_the_logs_key_lets_cloudwatch_logs_use_it_for_this_accounts_log_groups(
    default_stack: Any,
) -> None:
    key = default_stack.resource(default_stack.stack.logs_key)
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":logs:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":log-group:*",
                    ],
                ]
            }
        }
    }
    assert "kms:GenerateDataKey*" in logs["Action"]
