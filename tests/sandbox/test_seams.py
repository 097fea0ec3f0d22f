"""Guards on the places where the sandbox depends on moto's internals (sandbox/seams.py).

If a moto upgrade moves or changes any of them, these fail with a message that says what
broke, instead of the pipeline tests failing in confusing ways.
"""

from __future__ import annotations

import inspect
import json
from importlib.metadata import version

import pytest
from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

from rds_s3_export.rules import SETTING_KEYS
from sandbox import seams
from sandbox.clock import SimClock
from sandbox.runtime import Sandbox, Settings, module_for


def test_moto_is_the_pinned_version() -> None:
    assert version("moto") == "5.2.5", (
        "sandbox/seams.py replaces private moto methods verified on moto 5.2.5; re-check "
        "them before changing the pin in pyproject.toml"
    )


def test_lambda_invoke_seam_has_the_expected_signature() -> None:
    params = list(inspect.signature(LambdaFunction._invoke_lambda).parameters)
    assert params == ["self", "event"], f"LambdaFunction._invoke_lambda changed: {params}"


def test_wait_and_retry_seams_exist() -> None:
    params = list(inspect.signature(wait_function.WaitFunction._wait_interval).parameters)
    assert params == ["self", "env", "wait_seconds"], params
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl), (
        "the Retry back-off no longer calls time.sleep: the simulated clock would not advance"
    )


def test_seams_are_installed_and_removed() -> None:
    original = LambdaFunction._invoke_lambda
    with seams.installed(SimClock()):
        assert LambdaFunction._invoke_lambda is not original
    assert LambdaFunction._invoke_lambda is original


def test_a_handler_error_becomes_a_lambda_error_payload() -> None:
    class Fn:
        handler = "rds_s3_export.steps.validate_input.lambda_handler"
        function_name = "x"

    payload, errored, _ = seams.invoke_in_process(Fn(), {"input": {"bogus": 1}}, None, None)
    body = json.loads(payload)
    assert errored is True
    assert body["errorType"] == "InvalidInput"
    assert "bogus" in body["errorMessage"]


def test_handlers_really_run_in_process(sandbox: Sandbox) -> None:
    # When an execution runs, every Task is served by the project's handler in this process
    result = sandbox.run({})
    assert result.status == "SUCCEEDED", result.cause
    assert sandbox.invocations.counts["validate_input"] == 1
    assert sandbox.invocations.counts["describe_status"] == (
        result.output["polls"]["snapshot"] + result.output["polls"]["export"]  # type: ignore[index]
    )


def test_wait_states_advance_the_simulated_clock_not_real_time(sandbox: Sandbox) -> None:
    before = sandbox.clock.elapsed_seconds
    result = sandbox.run({})
    # the simulated export alone takes 720 s; the run took a second or two of real time
    assert sandbox.clock.elapsed_seconds - before >= 300 + 720
    assert result.simulated_seconds >= 1020


@pytest.mark.parametrize(
    ("placeholder", "module"),
    [
        ("CreateSnapshotFunctionArn", "create_snapshot"),
        ("PurgePrefixFunctionArn", "purge_prefix"),
        ("ValidateInputFunctionArn", "validate_input"),
    ],
)
def test_placeholder_names_map_to_handler_modules(placeholder: str, module: str) -> None:
    assert module_for(placeholder) == module


def test_the_sandbox_sets_exactly_the_settings_the_validate_function_reads() -> None:
    env = Settings().environment("role-arn", "key-arn")
    assert set(json.loads(env["PIPELINE_SETTINGS"])) == SETTING_KEYS


def test_the_parse_seam_is_where_moto_parses_definitions() -> None:
    # moto reaches the parser through the class attribute at CreateStateMachine, at each
    # execution and for DescribeExecution; the seam replaces exactly that attribute
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.static_analyser import static_analyser
    from moto.stepfunctions.parser.backend import execution_worker

    for module in (execution_worker, static_analyser):
        assert "AmazonStateLanguageParser.parse(" in inspect.getsource(module), module.__name__
    params = list(inspect.signature(AmazonStateLanguageParser.parse).parameters)
    assert params == ["definition"], f"AmazonStateLanguageParser.parse changed: {params}"
    original = AmazonStateLanguageParser.parse
    with seams.installed(SimClock()):
        assert AmazonStateLanguageParser.parse is seams.parse_once
    assert AmazonStateLanguageParser.parse is original


def test_a_definition_is_parsed_once_and_a_bad_one_still_fails() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException

    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})
    with seams.installed(SimClock()):
        first = seams.parse_once(definition)
        assert seams.parse_once(definition) is first
        for _ in range(2):  # a failure is not remembered as a result
            with pytest.raises(ASLParserException):
                seams.parse_once('{"StartAt": "A", "States": {"A": {"Type": "Nope"}}}')


def test_the_status_seam_reads_the_execution_backend(sandbox: Sandbox) -> None:
    from sandbox.runtime import ACCOUNT, REGION

    arn = sandbox.start({})
    result = sandbox.wait(arn)
    assert seams.execution_status(ACCOUNT, REGION, arn) == result.status == "SUCCEEDED"
