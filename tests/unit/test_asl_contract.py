"""The ASL file and the handlers agree on error names (lambdas/rds_s3_export/errors.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rds_s3_export.errors import TERMINAL_ERRORS, TRANSIENT_ERRORS

ASL = json.loads(
    (Path(__file__).resolve().parents[2] / "statemachine" / "export_pipeline.asl.json").read_text()
)
STATES: dict[str, Any] = ASL["States"]
TERMINAL = {e.__name__ for e in TERMINAL_ERRORS}
TRANSIENT = {e.__name__ for e in TRANSIENT_ERRORS}
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_SERVICE = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# A function that died (killed, out of memory, timed out): retried only by the steps a repeat
# is safe for (statemachine/definition.py, RETRY_KILLED)
KILLED = {"Lambda.Unknown", "Runtime.ExitError", "Sandbox.Timedout"}
REPEATABLE = {"PurgePrefix", "PurgePreviousExport", "PublishManifest", "UpdateCatalog"}


def test_every_task_catches_the_design_errors_by_name() -> None:
    # Steps before the export is safe catch each named error into the explained Fail; the
    # best-effort steps (prune, discard, catalog) catch everything into a warning instead
    for name, state in STATES.items():
        if state["Type"] != "Task" or name in {
            "PruneSnapshots",
            "DiscardFailedExport",
            "UpdateCatalog",
        }:
            continue
        if state["Resource"] != LAMBDA_INVOKE:  # ContinuePurgeInNewExecution: no handler errors
            assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
            continue
        caught = [set(c["ErrorEquals"]) for c in state["Catch"]]
        assert TERMINAL in caught, name
        assert caught[-1] == {"States.ALL"}, name


def test_retries_name_only_transient_or_lambda_service_errors() -> None:
    for name, state in STATES.items():
        if state.get("Resource", LAMBDA_INVOKE) != LAMBDA_INVOKE:
            continue  # a Step Functions integration: its own error names
        for retry in state.get("Retry", []):
            allowed = TRANSIENT | LAMBDA_SERVICE | (KILLED if name in REPEATABLE else set())
            assert set(retry["ErrorEquals"]) <= allowed, name
        assert any(set(r["ErrorEquals"]) == LAMBDA_SERVICE for r in state.get("Retry", [])) or (
            state["Type"] != "Task"
        ), name


def test_every_fixed_fail_error_and_every_pass_that_sets_one_is_a_design_error() -> None:
    for name, state in STATES.items():
        error = state.get("Error") or state.get("Parameters", {}).get("Error")
        if isinstance(error, str):
            assert error in TERMINAL, name


def test_every_function_result_joins_the_state_by_result_path_alone() -> None:
    # One way to merge (issue: One rule, one place): no OutputPath that would let a function
    # hand back, and so overwrite, the whole state; each picks named fields of Lambda's Payload.
    tasks = {n: s for n, s in STATES.items() if s.get("Resource") == LAMBDA_INVOKE}
    assert len(tasks) == 12, sorted(tasks)
    for name, state in tasks.items():
        assert "OutputPath" not in state and "InputPath" not in state, name
        assert state["ResultPath"].startswith("$"), name
        selector = state["ResultSelector"]
        assert selector, name
        for key, path in selector.items():
            assert key.endswith(".$") and path == f"$.Payload.{key[:-2]}", (name, key)


def test_the_repeatable_steps_retry_a_killed_function() -> None:
    # a purge killed mid-delete, or a publish killed after its write, is called again
    for name in REPEATABLE:
        assert any(set(r["ErrorEquals"]) == KILLED for r in STATES[name]["Retry"]), name
