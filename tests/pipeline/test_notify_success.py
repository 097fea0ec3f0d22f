"""notify_success: a successful run tells the alert topic, in one line, that the night went well.

The sandbox subscribes a queue to its alert topic (what an e-mail subscription would receive)
and the state machine publishes with the sns:publish integration, as deployed.
"""

from __future__ import annotations

import re

import pytest

from sandbox.runtime import RunResult, Sandbox, Settings

NOT_SENT = {"sent": False, "message_id": "", "warning": ""}


def _expected_message(sandbox: Sandbox, result: RunResult) -> re.Pattern[str]:
    """The line the run must have published, built from its output and its manifest."""
    out = result.output
    assert out is not None
    manifest = sandbox.manifest()
    assert manifest is not None
    rows = sum(table["row_count"] for table in manifest["tables"])
    assert rows > 0  # the fixture database has rows, so the count says something
    return re.compile(
        re.escape(
            f"RDS export pipeline {sandbox.settings.pipeline_name}: database mydb exported to "
            f"{out['export']['s3_uri']} (export task {out['export']['task_id']}): "
            f"{len(manifest['tables'])} tables, {rows} rows; manifest {out['manifest']['uri']} "
            "written "
        )
        + r"(?P<minutes>\d+)"
        + re.escape(
            f" minutes after the run started; {out['purge']['objects_deleted']} objects of older "
            f"exports purged, {len(out['snapshots_pruned'])} old snapshots deleted."
        )
    )


@pytest.mark.parametrize("settings", [Settings(notify_success=True, keep_snapshots=0)])
def test_a_successful_run_publishes_one_line_to_the_alert_topic(sandbox: Sandbox) -> None:
    # Given a first night, whose export and snapshot the second night replaces
    first = sandbox.run({})
    assert first.status == "SUCCEEDED", first.cause
    assert len(sandbox.alert_messages()) == 1

    # When the second night runs
    result = sandbox.run({})

    # Then it succeeded and published exactly one message, saying what it did
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["purge"]["objects_deleted"] > 0 and len(out["snapshots_pruned"]) == 1
    (notification,) = sandbox.alert_messages()
    assert notification["Subject"] == f"{sandbox.settings.pipeline_name}: the export succeeded"
    message = notification["Message"]
    assert "\n" not in message
    match = _expected_message(sandbox, result).fullmatch(message)
    assert match is not None, message
    # the minutes: at least the snapshot's and the export's waits, at most the whole run
    waited = out["phases_seconds"]["snapshot"] + out["phases_seconds"]["export"]
    assert waited // 60 <= int(match["minutes"]) <= result.simulated_seconds // 60
    assert int(match["minutes"]) == out["manifest"]["minutes"]
    # and the output says it was sent, with the id SNS gave the message
    assert out["notification"] == {
        "sent": True,
        "message_id": notification["MessageId"],
        "warning": "",
    }


def test_by_default_nothing_is_published_on_success(sandbox: Sandbox) -> None:
    result = sandbox.run({})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None and result.output["notification"] == NOT_SENT
    assert result.visits("NotifySuccess") == 0
    assert sandbox.alert_messages() == []


@pytest.mark.parametrize("settings", [Settings(notify_success=True)])
def test_a_message_that_cannot_be_published_leaves_the_run_successful(sandbox: Sandbox) -> None:
    # Given an alert topic that no longer exists
    sandbox.client("sns").delete_topic(TopicArn=sandbox.alert_topic_arn)

    # When a run succeeds
    result = sandbox.run({})

    # Then it still succeeds; the output carries the warning, and the export is published
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert out is not None
    assert out["notification"]["sent"] is False
    assert out["notification"]["warning"].startswith("NotifySuccess did not complete: "), out
    assert sandbox.manifest() is not None
    assert result.visits("NotifySuccessDidNotComplete") == 1
