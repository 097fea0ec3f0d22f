"""The source of `export_pipeline.asl.json`: the state machine, written once.

The ASL file is what the stack deploys and what the local sandbox executes; it is generated
from this module and committed. Amazon States Language has no way to share a block between
states, so what every Task has in common (its Retry, its Catch, the state its unexpected
failures go to) is written here once and repeated only in the generated file.

    python -m statemachine.definition          # rewrite the ASL file
    python -m statemachine.definition --check  # exit 1 if the file differs (make test runs it)

tests/unit/test_asl_generated.py fails when the committed file differs from this source.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rds_s3_export.steps import (
    create_snapshot,
    describe_status,
    discard_failed_export,
    prune_snapshots,
    publish_manifest,
    purge_prefix,
    start_export,
    update_catalog,
    validate_input,
)

ASL_PATH = Path(__file__).resolve().with_name("export_pipeline.asl.json")
# The alert topic's ARN, which the stack substitutes (infra/workflow.py) like the functions'
ALERT_TOPIC_PLACEHOLDER = "AlertTopicArn"

# The errors the handlers raise on purpose (rds_s3_export.errors.TERMINAL_ERRORS): their
# message is the run's Cause as it stands.
NAMED_ERRORS = [
    "InvalidInput",
    "SourceNotFound",
    "SnapshotFailed",
    "ExportFailed",
    "WaitTimedOut",
    "AlreadyRunning",
    "PurgeRefused",
    "PublishFailed",
]

# Every Task retries what Lambda itself reports as transient, and throttling the handlers name.
RETRY_LAMBDA_SERVICE = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 5,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
RETRY_THROTTLED = {
    "ErrorEquals": ["Throttled"],
    "IntervalSeconds": 5,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "MaxDelaySeconds": 120,
    "JitterStrategy": "FULL",
}

# A function that died (out of memory, its timeout, the runtime killed) is reported as
# Lambda.Unknown (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html);
# the runtime's own error types are matched too. Retried only where a repeat is safe and whole:
# the purge (each call starts again from the state it was given, and says its counts are then
# lower bounds) and the publish (the manifest is written whole again; the event may go twice).
RETRY_KILLED = {
    "ErrorEquals": ["Lambda.Unknown", "Runtime.ExitError", "Sandbox.Timedout"],
    "IntervalSeconds": 5,
    "MaxAttempts": 2,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
# What the purge's calls are given: the state they read, and which attempt of this call it is
# (0 the first; more after a retry, whose predecessor may have deleted without answering).
PURGE_PAYLOAD = {
    **{f"{part}.$": f"$.{part}" for part in ("config", "plan", "source", "export", "purge")},
    "attempt.$": "$$.State.RetryCount",
}

# What a step with its own payload passes so that its log lines name the run and the database
# (rds_s3_export.log.correlation); steps given the whole state find both in it.
CORRELATION = {"execution_name.$": "$$.Execution.Name", "database_id.$": "$.config.database_id"}


# What ValidateInput (and its recheck) learns of the execution from the context object
EXECUTION = {
    "id.$": "$$.Execution.Id",
    "name.$": "$$.Execution.Name",
    "start_time.$": "$$.Execution.StartTime",
    "state_machine.$": "$$.StateMachine.Id",
}


def slow_retry(error: str, attempts: int) -> dict[str, Any]:
    """A wait for a busy resource: two minutes, growing to fifteen, with jitter."""
    return {
        "ErrorEquals": [error],
        "IntervalSeconds": 120,
        "MaxAttempts": attempts,
        "BackoffRate": 1.5,
        "MaxDelaySeconds": 900,
        "JitterStrategy": "FULL",
    }


def catch(did_not_complete: str) -> list[dict[str, Any]]:
    """Named errors explain themselves; anything else goes to the step's `DidNotComplete`."""
    return [
        {"ErrorEquals": NAMED_ERRORS, "ResultPath": "$.failure", "Next": "ExplainFailure"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": did_not_complete},
    ]


def task(
    name: str,
    function: str,
    *,
    comment: str,
    payload: dict[str, Any] | None = None,
    result_path: str,
    fields: tuple[str, ...],
    next_state: str,
    retry: list[dict[str, Any]] | None = None,
    catches: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Lambda Task. `function` is the ASL placeholder's stem (`${<function>FunctionArn}`).

    The one way a function's result joins the state: ResultSelector takes exactly the `fields`
    its step declares (RESULT_FIELDS in its module; a missing one fails the state with
    States.Runtime) out of Lambda's answer, and ResultPath places them at `result_path`. A step
    never returns, so never overwrites, the rest of the state."""
    parameters: dict[str, Any] = {"FunctionName": f"${{{function}FunctionArn}}"}
    if payload is None:
        parameters["Payload.$"] = "$"
    else:
        parameters["Payload"] = payload
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": parameters,
        "Retry": [RETRY_LAMBDA_SERVICE, RETRY_THROTTLED, *(retry or [])],
        "Catch": catches if catches is not None else catch(f"{name}DidNotComplete"),
        "ResultSelector": {f"{field}.$": f"$.Payload.{field}" for field in fields},
        "ResultPath": result_path,
        "Next": next_state,
    }
    return state


def did_not_complete(step: str, error: str, comment: str, database: str) -> dict[str, Any]:
    """A step failed in an unexpected way (a crash, or its retries spent): report it with the
    error name of its phase, keeping the original error and its detail."""
    return {
        "Type": "Pass",
        "Comment": comment,
        "Parameters": {
            "Error": error,
            "Step": step,
            "Original.$": "$.failure.Error",
            "Detail.$": "$.failure.Cause",
            **({"Database.$": database} if database.startswith("$") else {"Database": database}),
        },
        "ResultPath": "$.failure",
        "Next": "IsDetailALambdaError",
    }


def unexpected(step: str, error: str) -> dict[str, Any]:
    return did_not_complete(
        step,
        error,
        f"{step} failed in an unexpected way (a crash, or its retries spent): report it as "
        f"{error}, keeping the original error.",
        "$.config.database_id",
    )


def choice_on_status(
    loop: str, done: str, failed: str, timed_out: str, wait: str
) -> dict[str, Any]:
    return {
        "Type": "Choice",
        "Choices": [
            {"Variable": f"$.{loop}.status.state", "StringEquals": "done", "Next": done},
            {"Variable": f"$.{loop}.status.state", "StringEquals": "failed", "Next": failed},
            {"Variable": f"$.{loop}.status.timed_out", "BooleanEquals": True, "Next": timed_out},
        ],
        "Default": wait,
    }


def states() -> dict[str, Any]:
    return {
        "ReadInput": {
            "Type": "Pass",
            "Comment": "Hold the execution input under `input`, whatever JSON it is, so that "
            "ValidateInput can refuse an input that is not an object with InvalidInput (a "
            "failure is recorded beside the input, which needs an object to sit in).",
            "Parameters": {"input.$": "$"},
            "Next": "ValidateInput",
        },
        "ValidateInput": task(
            "ValidateInput",
            "ValidateInput",
            comment="Merge the input over the stack's defaults, validate every key, plan this "
            "run's ids, refuse to overlap another run.",
            payload={"input.$": "$.input", "execution": EXECUTION},
            result_path="$",
            fields=validate_input.RESULT_FIELDS,
            next_state="IsContinuedPurge",
        ),
        "IsContinuedPurge": {
            "Type": "Choice",
            "Comment": "An execution started by an earlier one to continue its purge goes "
            "straight to PurgePrefix.",
            "Choices": [
                {
                    "Variable": "$.purge.continuations",
                    "NumericGreaterThan": 0,
                    "Next": "PurgePrefix",
                }
            ],
            "Default": "ConfirmNoOverlap",
        },
        "ConfirmNoOverlap": task(
            "ConfirmNoOverlap",
            "ValidateInput",
            comment="Look at the other running executions once more, now that every run "
            "started in the same millisecond as this one is listed: of two that overlap, "
            "exactly one goes on (validate_input.recheck).",
            payload={"recheck": {"config.$": "$.config"}, "execution": EXECUTION},
            result_path="$.overlap",
            fields=validate_input.RECHECK_FIELDS,
            next_state="CreateSnapshot",
        ),
        "CreateSnapshot": task(
            "CreateSnapshot",
            "CreateSnapshot",
            comment="Create this run's tagged snapshot (or adopt it on a retry), or pick the "
            "latest automated or the named snapshot.",
            result_path="$.source",
            fields=create_snapshot.RESULT_FIELDS,
            next_state="IsThereAnythingToExport",
            retry=[slow_retry("InstanceBusy", 10)],
        ),
        "IsThereAnythingToExport": {
            "Type": "Choice",
            "Comment": "Each snapshot is exported once: the manifest already names this "
            "snapshot (up to date), or an event's snapshot is another database's. Either way "
            "the run ends here, having created, exported and deleted nothing.",
            "Choices": [
                {
                    "Variable": "$.source.skip",
                    "StringEquals": "up-to-date",
                    "Next": "ReportUpToDate",
                },
                {
                    "Variable": "$.source.skip",
                    "StringEquals": "not-this-database",
                    "Next": "ReportNotThisDatabase",
                },
            ],
            "Default": "IsDryRun",
        },
        "ReportUpToDate": report_nothing_to_do("UP_TO_DATE", up_to_date=True),
        "ReportNotThisDatabase": report_nothing_to_do("NOT_THIS_DATABASE", up_to_date=False),
        "IsDryRun": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.config.dry_run", "BooleanEquals": True, "Next": "PurgePrefix"}
            ],
            "Default": "IsSnapshotReady",
        },
        "IsSnapshotReady": choice_on_status(
            "source", "StartExport", "SnapshotFailed", "SnapshotWaitTimedOut", "WaitForSnapshot"
        ),
        "WaitForSnapshot": {
            "Type": "Wait",
            "SecondsPath": "$.source.status.wait_seconds",
            "Next": "DescribeSnapshotStatus",
        },
        "DescribeSnapshotStatus": task(
            "DescribeSnapshotStatus",
            "DescribeStatus",
            comment="Look at exactly this run's snapshot once; the result says how long to wait "
            "before the next look.",
            payload={
                "kind.$": "$.source.kind",
                "id.$": "$.source.snapshot_id",
                "started_at.$": "$.source.started_at",
                "deadline.$": "$.source.deadline",
                "polls.$": "$.source.status.polls",
                "pending_seconds.$": "$.source.status.pending_seconds",
                "poll.$": "$.config.poll",
                **CORRELATION,
            },
            result_path="$.source.status",
            fields=describe_status.RESULT_FIELDS,
            next_state="IsSnapshotReady",
        ),
        "StartExport": task(
            "StartExport",
            "StartExport",
            comment="Start the export of this run's snapshot into the prefix (adopt it on a "
            "retry); wait for a free slot while 5 exports run.",
            result_path="$.export",
            fields=start_export.RESULT_FIELDS,
            next_state="IsExportComplete",
            retry=[slow_retry("ExportQuotaExceeded", 80)],
            catches=[
                {
                    "ErrorEquals": ["ExportQuotaExceeded"],
                    "ResultPath": "$.failure",
                    "Next": "ExportQuotaWaitTimedOut",
                },
                *catch("StartExportDidNotComplete"),
            ],
        ),
        "IsExportComplete": choice_on_status(
            "export", "PurgePrefix", "DiscardFailedExport", "ExportWaitTimedOut", "WaitForExport"
        ),
        "WaitForExport": {
            "Type": "Wait",
            "SecondsPath": "$.export.status.wait_seconds",
            "Next": "DescribeExportStatus",
        },
        "DescribeExportStatus": task(
            "DescribeExportStatus",
            "DescribeStatus",
            comment="Look at exactly this run's export task once; FAILED and CANCELED carry "
            "RDS's FailureCause.",
            payload={
                "id.$": "$.export.export_task_id",
                "started_at.$": "$.export.started_at",
                "deadline.$": "$.export.deadline",
                "polls.$": "$.export.status.polls",
                "pending_seconds.$": "$.export.status.pending_seconds",
                "poll.$": "$.config.poll",
                "kind": "export-task",
                **CORRELATION,
            },
            result_path="$.export.status",
            fields=describe_status.EXPORT_RESULT_FIELDS,
            next_state="IsExportComplete",
        ),
        "PurgePrefix": task(
            "PurgePrefix",
            "PurgePrefix",
            comment="On the first call verify the new export and plan; then delete older export "
            "folders under the prefix, page after page, until done or the call's time budget "
            "is spent.",
            payload=PURGE_PAYLOAD,
            result_path="$.purge",
            fields=purge_prefix.RESULT_FIELDS,
            next_state="IsPurgeDone",
            retry=[RETRY_KILLED],
        ),
        "IsPurgeDone": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.purge.more", "BooleanEquals": True},
                        {"Variable": "$.purge.continue_in_new_execution", "BooleanEquals": True},
                    ],
                    "Next": "ContinuePurgeInNewExecution",
                },
                {"Variable": "$.purge.more", "BooleanEquals": True, "Next": "PurgePrefix"},
                {"Variable": "$.config.dry_run", "BooleanEquals": True, "Next": "ReportDryRun"},
            ],
            "Default": "PublishManifest",
        },
        "ContinuePurgeInNewExecution": continue_purge(),
        "ContinuedInNewExecution": {
            "Type": "Pass",
            "Comment": "The purge goes on in the new execution, which reports the run's outcome; "
            "this one ends here.",
            "Parameters": {
                "status": "CONTINUED",
                "continued_in.$": "$.continued.execution_arn",
                "export": {"task_id.$": "$.export.export_task_id", "s3_uri.$": "$.export.s3_uri"},
                "purge": {
                    f"{field}.$": f"$.purge.{field}"
                    for field in (
                        "objects_deleted",
                        "counts_are_lower_bounds",
                        "pages",
                        "calls",
                        "folders",
                    )
                },
            },
            "Next": "Succeeded",
        },
        "PublishManifest": task(
            "PublishManifest",
            "PublishManifest",
            comment="The prefix holds the new export and at most the previous one, which the "
            "old manifest names: write the new export's manifest (<s3_prefix>/_manifest.json, "
            "one PUT) and put one 'RDS Export Ready' event.",
            result_path="$.manifest",
            fields=publish_manifest.RESULT_FIELDS,
            retry=[RETRY_KILLED],
            next_state="UpdateCatalog",
        ),
        "UpdateCatalog": task(
            "UpdateCatalog",
            "UpdateCatalog",
            comment="With -c glue_database: create, update or delete the pipeline's Glue tables "
            "so that each points at its folder in the new export (at once 'not-configured' "
            "without it). A failure is a warning, and the previous export is then kept.",
            payload={"config.$": "$.config", "export.$": "$.export", **CORRELATION},
            result_path="$.catalog",
            fields=update_catalog.RESULT_FIELDS,
            next_state="IsPreviousExportPurged",
            retry=[RETRY_KILLED],
            catches=[
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.catalog_error",
                    "Next": "UpdateCatalogDidNotComplete",
                }
            ],
        ),
        "UpdateCatalogDidNotComplete": {
            "Type": "Pass",
            "Comment": "The export is published: the catalog is best effort, so report and "
            "succeed; but a table may still point at the previous export, so it is kept.",
            "Parameters": {
                "status": "failed",
                "database": "",
                "created": [],
                "updated": [],
                "deleted": [],
                "left_out": [],
                "previous_export_may_go": False,
                "elapsed_seconds": 0,
                "warnings.$": "States.Array(States.Format('UpdateCatalog did not complete: "
                "{}: {}; the previous export is kept this run', $.catalog_error.Error, "
                "$.catalog_error.Cause))",
            },
            "ResultPath": "$.catalog",
            "Next": "IsPreviousExportPurged",
        },
        "IsPreviousExportPurged": {
            "Type": "Choice",
            "Comment": "The purge held back the folder the old manifest named; now that the "
            "manifest names the new export, and the catalog (if any) no longer points at it, "
            "it may go.",
            "Choices": [
                {
                    "Variable": "$.catalog.previous_export_may_go",
                    "BooleanEquals": False,
                    "Next": "PruneSnapshots",
                },
                {
                    "Variable": "$.purge.phase",
                    "StringEquals": "previous-export",
                    "Next": "PurgePreviousExport",
                },
            ],
            "Default": "PruneSnapshots",
        },
        "PurgePreviousExport": task(
            "PurgePreviousExport",
            "PurgePrefix",
            comment="The last pass of the purge: check that the manifest names the new export, "
            "then delete the previous export's folder under the purge's rules, page after page "
            "within the call's time budget.",
            payload=PURGE_PAYLOAD,
            result_path="$.purge",
            fields=purge_prefix.RESULT_FIELDS,
            next_state="IsPreviousExportPurged",
            retry=[RETRY_KILLED],
        ),
        "PruneSnapshots": task(
            "PruneSnapshots",
            "PruneSnapshots",
            comment="Delete the pipeline's own snapshots beyond keep_snapshots; a failure here "
            "is a warning, the data is safe.",
            result_path="$.prune",
            fields=prune_snapshots.RESULT_FIELDS,
            next_state="ShouldNotifySuccess",
            catches=[
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.prune_error",
                    "Next": "PruneSnapshotsDidNotComplete",
                }
            ],
        ),
        "PruneSnapshotsDidNotComplete": {
            "Type": "Pass",
            "Comment": "The export is complete and verified: pruning is best effort, so report "
            "and succeed.",
            "Parameters": {
                "deleted": [],
                "kept": [],
                "elapsed_seconds": 0,
                "warnings.$": "States.Array(States.Format('PruneSnapshots did not complete: "
                "{}: {}', $.prune_error.Error, $.prune_error.Cause))",
            },
            "ResultPath": "$.prune",
            "Next": "ShouldNotifySuccess",
        },
        **notify_success_states(),
        "Summarize": summarize(),
        "Succeeded": {"Type": "Succeed"},
        "ReportDryRun": report_dry_run(),
        "SnapshotFailed": {
            "Type": "Fail",
            "Comment": "The snapshot reached a failed state.",
            "Error": "SnapshotFailed",
            "CausePath": "$.source.status.cause",
        },
        "SnapshotWaitTimedOut": {
            "Type": "Fail",
            "Error": "WaitTimedOut",
            "CausePath": "$.source.status.cause",
        },
        "ExportFailed": {
            "Type": "Fail",
            "Comment": "The export ended FAILED or CANCELED; the previous export is untouched.",
            "Error": "ExportFailed",
            "CausePath": "$.export.status.cause",
        },
        "ExportWaitTimedOut": {
            "Type": "Fail",
            "Error": "WaitTimedOut",
            "CausePath": "$.export.status.cause",
        },
        "DiscardFailedExport": task(
            "DiscardFailedExport",
            "DiscardFailedExport",
            comment="The export ended FAILED or CANCELED: delete the partial files RDS left in "
            "this run's own export folder (one page a call), so a loader never takes them in. "
            "Best effort: the run fails with ExportFailed either way.",
            payload={
                "config.$": "$.config",
                "export.$": "$.export",
                "discard.$": "$.discard",
                **CORRELATION,
            },
            result_path="$.discard",
            fields=discard_failed_export.RESULT_FIELDS,
            next_state="IsDiscardDone",
            catches=[
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.discard_error",
                    "Next": "ExportFailed",
                }
            ],
        ),
        "IsDiscardDone": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.discard.more", "BooleanEquals": True, "Next": "DiscardFailedExport"}
            ],
            "Default": "DescribeExportFailure",
        },
        "DescribeExportFailure": {
            "Type": "Pass",
            "Parameters": {
                "Error": "ExportFailed",
                "Cause.$": "States.Format('{} ({} partial object(s) it left under {} were "
                "removed; the previous export is untouched)', $.export.status.cause, "
                "$.discard.objects_deleted, $.discard.folder)",
            },
            "ResultPath": "$.failure",
            "Next": "Failed",
        },
        "ValidateInputDidNotComplete": did_not_complete(
            "ValidateInput",
            "InvalidInput",
            "ValidateInput could not run (a crash, or its retries spent). No better name "
            "exists among the pipeline's errors: the Cause says plainly that the input was not "
            "judged invalid.",
            "unknown: the input was not checked, it was not found invalid",
        ),
        "ConfirmNoOverlapDidNotComplete": unexpected("ConfirmNoOverlap", "InvalidInput"),
        "CreateSnapshotDidNotComplete": unexpected("CreateSnapshot", "SnapshotFailed"),
        "DescribeSnapshotStatusDidNotComplete": unexpected(
            "DescribeSnapshotStatus", "SnapshotFailed"
        ),
        "StartExportDidNotComplete": unexpected("StartExport", "ExportFailed"),
        "DescribeExportStatusDidNotComplete": unexpected("DescribeExportStatus", "ExportFailed"),
        "PurgePrefixDidNotComplete": unexpected("PurgePrefix", "PurgeRefused"),
        "PurgePreviousExportDidNotComplete": unexpected("PurgePreviousExport", "PurgeRefused"),
        "PublishManifestDidNotComplete": unexpected("PublishManifest", "PublishFailed"),
        "ExplainFailure": {
            "Type": "Pass",
            "Comment": "A step raised one of the named errors: its message is the Cause.",
            "Parameters": {
                "Error.$": "$.failure.Error",
                "Details.$": "States.StringToJson($.failure.Cause)",
            },
            "ResultPath": "$.failure",
            "Next": "FailedWithReason",
        },
        "FailedWithReason": {
            "Type": "Fail",
            "ErrorPath": "$.failure.Error",
            "CausePath": "$.failure.Details.errorMessage",
        },
        "IsDetailALambdaError": {
            "Type": "Choice",
            "Comment": "A function's own error arrives as JSON (errorType, errorMessage, "
            "stackTrace); a service error as plain text.",
            "Choices": [
                {
                    "Variable": "$.failure.Detail",
                    "StringMatches": "{*errorMessage*",
                    "Next": "ParseLambdaError",
                }
            ],
            "Default": "DescribeUnexpectedFailure",
        },
        "ParseLambdaError": {
            "Type": "Pass",
            "Parameters": {
                "Error.$": "$.failure.Error",
                "Step.$": "$.failure.Step",
                "Original.$": "$.failure.Original",
                "Database.$": "$.failure.Database",
                "Detail.$": "States.StringToJson($.failure.Detail)",
            },
            "ResultPath": "$.failure",
            "Next": "DescribeUnexpectedLambdaError",
        },
        "DescribeUnexpectedLambdaError": describe_unexpected(
            "$.failure.Detail.errorMessage",
            "Keep the function's errorMessage, drop its stack trace.",
        ),
        "DescribeUnexpectedFailure": describe_unexpected("$.failure.Detail", None),
        "ExportQuotaWaitTimedOut": {
            **did_not_complete(
                "StartExport (waiting for a free export slot)",
                "WaitTimedOut",
                "Five exports kept the account's quota full for the whole retry budget (80 "
                "attempts, up to about 19 hours): the run waited for a slot and ran out of time.",
                "$.config.database_id",
            ),
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"},
    }


CARRIED = ("config", "plan", "source", "export", "purge")  # what a continued purge needs


def continue_purge() -> dict[str, Any]:
    """Step Functions Standard ends an execution at 25,000 history events
    (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): a purge that
    would come near it goes on in a new execution of this state machine, carrying its cursor."""
    return {
        "Type": "Task",
        "Comment": "This execution's history would run out (25,000 events): start a new "
        "execution of this state machine that carries the purge on where it stopped.",
        "Resource": "arn:aws:states:::states:startExecution",
        "Parameters": {
            "StateMachineArn.$": "$$.StateMachine.Id",
            "Name.$": "$.purge.next_execution_name",
            "Input": {
                "continue_purge": {
                    f"{part}.$": f"$.{part}"
                    for part in ("config", "plan", "source", "export", "purge")
                },
                "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
            },
        },
        "ResultSelector": {"execution_arn.$": "$.ExecutionArn"},
        "ResultPath": "$.continued",
        "Retry": [
            {
                "ErrorEquals": [
                    "StepFunctions.ExecutionLimitExceededException",
                    "StepFunctions.SdkClientException",
                    "States.TaskFailed",
                ],
                "IntervalSeconds": 5,
                "MaxAttempts": 3,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ],
        "Catch": [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.failure",
                "Next": "PurgePrefixDidNotComplete",
            }
        ],
        "Next": "ContinuedInNewExecution",
    }


def describe_unexpected(detail: str, comment: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Pass",
        "Parameters": {
            "Error.$": "$.failure.Error",
            "Cause.$": "States.Format('{} did not complete (database {}): {}: {}', "
            f"$.failure.Step, $.failure.Database, $.failure.Original, {detail})",
        },
        "ResultPath": "$.failure",
        "Next": "Failed",
    }
    if comment:
        state = {
            "Type": "Pass",
            "Comment": comment,
            **{k: v for k, v in state.items() if k != "Type"},
        }
    return state


def report_nothing_to_do(status: str, *, up_to_date: bool) -> dict[str, Any]:
    """The execution output of a run that ended before it started anything (Succeeded)."""
    return {
        "Type": "Pass",
        "Comment": "Nothing to export: the reason says why. No snapshot, no export, no purge, "
        "no event.",
        "Parameters": {
            "status": status,
            "up_to_date": up_to_date,
            "dry_run.$": "$.config.dry_run",
            "database": {"kind.$": "$.config.database_kind", "id.$": "$.config.database_id"},
            "snapshot": {
                "id.$": "$.source.snapshot_id",
                "arn.$": "$.source.snapshot_arn",
                "source.$": "$.source.source",
            },
            "trigger.$": "$.config.trigger",
            "reason.$": "$.source.skip_reason",
        },
        "Next": "Succeeded",
    }


# The one-line success message (notify_success): the export, its tables and rows, the minutes
# to its manifest, what was purged and pruned. States.Format takes strings, numbers, booleans
# and null; States.ArrayLength turns the pruned snapshots' list into a number:
# https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
SUCCESS_MESSAGE = (
    "States.Format('RDS export pipeline {}: database {} exported to {} (export task {}): {} "
    "tables, {} rows; manifest {} written {} minutes after the run started; {} objects of "
    "older exports purged, {} old snapshots deleted.', $.config.pipeline_name, "
    "$.config.database_id, $.export.s3_uri, $.export.export_task_id, $.manifest.tables, "
    "$.manifest.rows, $.manifest.uri, $.manifest.minutes, $.purge.objects_deleted, "
    "States.ArrayLength($.prune.deleted))"
)
# SNS Publish's Subject: at most 100 printable ASCII characters (a pipeline_name is at most 48)
# https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
SUCCESS_SUBJECT = "States.Format('{}: the export succeeded', $.config.pipeline_name)"


def notify_success_states() -> dict[str, Any]:
    """With the notify_success setting, a successful run publishes one line to the alert topic
    (the optimised sns:publish integration:
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-sns.html). Every path sets
    `$.notification` ({sent, message_id, warning}), which the execution output shows; a message
    that could not be published is a warning, never the run's failure."""
    return {
        "ShouldNotifySuccess": {
            "Type": "Choice",
            "Comment": "notify_success (a stack setting, in the run's config): tell the alert "
            "topic that the night went well.",
            "Choices": [
                {
                    "Variable": "$.config.notify_success",
                    "BooleanEquals": True,
                    "Next": "NotifySuccess",
                }
            ],
            "Default": "SuccessNotNotified",
        },
        "SuccessNotNotified": {
            "Type": "Pass",
            "Comment": "notify_success is off: only failures reach the alert topic.",
            "Result": {"sent": False, "message_id": "", "warning": ""},
            "ResultPath": "$.notification",
            "Next": "Summarize",
        },
        "NotifySuccess": {
            "Type": "Task",
            "Comment": "Publish a one-line summary of the run to the alert topic. A retry may "
            "send it twice; a failure is a warning (the export is complete and published).",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": f"${{{ALERT_TOPIC_PLACEHOLDER}}}",
                "Subject.$": SUCCESS_SUBJECT,
                "Message.$": SUCCESS_MESSAGE,
            },
            "ResultSelector": {"sent": True, "message_id.$": "$.MessageId", "warning": ""},
            "ResultPath": "$.notification",
            "Retry": [
                {
                    "ErrorEquals": ["States.TaskFailed"],
                    "IntervalSeconds": 5,
                    "MaxAttempts": 2,
                    "BackoffRate": 2,
                    "JitterStrategy": "FULL",
                }
            ],
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.notification",
                    "Next": "NotifySuccessDidNotComplete",
                }
            ],
            "Next": "Summarize",
        },
        "NotifySuccessDidNotComplete": {
            "Type": "Pass",
            "Comment": "The success message could not be published: a warning in the output; "
            "the run still succeeds.",
            "Parameters": {
                "sent": False,
                "message_id": "",
                "warning.$": "States.Format('NotifySuccess did not complete: {}: {}', "
                "$.notification.Error, $.notification.Cause)",
            },
            "ResultPath": "$.notification",
            "Next": "Summarize",
        },
    }


def summarize() -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Comment": "The execution output: what was exported, where, what was purged and "
        "pruned, how long each phase took.",
        "Parameters": {
            "status": "SUCCEEDED",
            "up_to_date": False,
            "dry_run": False,
            "database": {"kind.$": "$.config.database_kind", "id.$": "$.config.database_id"},
            "snapshot": {
                "id.$": "$.source.snapshot_id",
                "arn.$": "$.source.snapshot_arn",
                "source.$": "$.source.source",
                "created.$": "$.source.created",
                "adopted.$": "$.source.adopted",
            },
            "export": {
                "task_id.$": "$.export.export_task_id",
                "s3_uri.$": "$.export.s3_uri",
                "adopted.$": "$.export.adopted",
                "extracted_gb.$": "$.export.status.extracted_gb",
                "warning.$": "$.export.status.warning",
            },
            "purge": {
                "objects_deleted.$": "$.purge.objects_deleted",
                "counts_are_lower_bounds.$": "$.purge.counts_are_lower_bounds",
                "folders.$": "$.purge.folders",
                "pages.$": "$.purge.pages",
                "left_alone.$": "$.purge.left_alone",
                "deferred.$": "$.purge.deferred",
                "verification.$": "$.purge.verification",
                "warnings.$": "$.purge.warnings",
            },
            "manifest.$": "$.manifest",
            "catalog.$": "$.catalog",
            "snapshots_pruned.$": "$.prune.deleted",
            "snapshots_kept.$": "$.prune.kept",
            "prune_warnings.$": "$.prune.warnings",
            "phases_seconds": {
                "snapshot.$": "$.source.status.elapsed_seconds",
                "export.$": "$.export.status.elapsed_seconds",
                "purge.$": "$.purge.elapsed_seconds",
                "prune.$": "$.prune.elapsed_seconds",
            },
            "polls": {"snapshot.$": "$.source.status.polls", "export.$": "$.export.status.polls"},
            # the end of each wait lies between the last look that saw it pending and the
            # phase's end above (the next run's prior takes the middle: polling.py)
            "pending_seconds": {
                "snapshot.$": "$.source.status.pending_seconds",
                "export.$": "$.export.status.pending_seconds",
            },
            "notification.$": "$.notification",
        },
        "Next": "Succeeded",
    }


def report_dry_run() -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Comment": "Dry run: nothing was created or deleted; this is what a real run would do.",
        "Parameters": {
            "status": "DRY_RUN",
            "up_to_date": False,
            "dry_run": True,
            "config.$": "$.config",
            "snapshot": {
                "id.$": "$.source.snapshot_id",
                "arn.$": "$.source.snapshot_arn",
                "source.$": "$.source.source",
                "status.$": "$.source.status.raw_status",
            },
            "export_task_id.$": "$.source.export_task_id",
            "would_purge": {
                "count.$": "$.purge.would_delete_count",
                "keys.$": "$.purge.would_delete_keys",
                "keys_truncated.$": "$.purge.would_delete_keys_truncated",
                "folders.$": "$.purge.folders",
                "left_alone.$": "$.purge.left_alone",
                "deferred.$": "$.purge.deferred",
            },
        },
        "End": True,
    }


def definition() -> dict[str, Any]:
    return {
        "Comment": "Export the newest RDS snapshot to S3 as Parquet, then remove the older "
        "exports under the same prefix. Old exports are deleted only after the new one is "
        "COMPLETE and verified.",
        "StartAt": "ReadInput",
        # 36 hours: the longest snapshot and export deadlines plus the purge, with room to spare
        "TimeoutSeconds": 129600,
        "States": states(),
    }


def render() -> str:
    return json.dumps(definition(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if ASL_PATH.read_text() != text:
            print(f"{ASL_PATH} differs from statemachine/definition.py: run `make asl`")
            return 1
        return 0
    ASL_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
