"""Guards on the places where the sandbox depends on moto's internals (sandbox/seams.py).

If a moto upgrade moves or changes any of them, these fail with a message that says what
broke, instead of the pipeline tests failing in confusing ways.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime
from importlib.metadata import version
from typing import Any

import pytest
from moto.awslambda.models import LambdaFunction
from moto.s3.models import s3_backends
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

from rds_s3_export.rules import SETTING_KEYS
from rds_s3_export.steps import purge_prefix
from sandbox import loader, runtime, seams
from sandbox.clock import SimClock
from sandbox.rds_sim import ExportOutcome
from sandbox.runtime import ACCOUNT, Sandbox, Settings, module_for


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
    # ValidateInput, then ConfirmNoOverlap (the same function, given `recheck`)
    assert sandbox.invocations.counts["validate_input"] == 2
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
    # backup_vault and notify_success are there only when set (unchanged environment without)
    only_when_set = {"backup_vault", "notify_success"}
    assert set(json.loads(env["PIPELINE_SETTINGS"])) == SETTING_KEYS - only_when_set
    env = Settings(backup_vault="nightly", notify_success=True).environment("role-arn", "key-arn")
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


def _same_as_boto3(api: Any, backend: Any, where: str = "events") -> None:
    """`backend` equals `api` strictly: the same types, the same keys in the same order, and
    timestamps at the same moment in the same kind of time zone."""
    assert type(backend) is type(api), f"{where}: {type(backend).__name__}, not {type(api)}"
    if isinstance(api, dict):
        assert list(backend) == list(api), f"{where}: keys {list(backend)}, not {list(api)}"
        for key in api:
            _same_as_boto3(api[key], backend[key], f"{where}.{key}")
    elif isinstance(api, list):
        assert len(backend) == len(api), f"{where}: {len(backend)} items, not {len(api)}"
        for index, (expected, found) in enumerate(zip(api, backend, strict=True)):
            _same_as_boto3(expected, found, f"{where}[{index}]")
    elif isinstance(api, datetime):
        assert backend == api, f"{where}: {backend!r}, not {api!r}"
        assert type(backend.tzinfo) is type(api.tzinfo), f"{where}: {backend!r}, not {api!r}"
    else:
        assert backend == api, f"{where}: {backend!r}, not {api!r}"


def test_the_history_seam_gives_what_get_execution_history_gives(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given executions with every kind of event the pipeline makes: a throttled call retried,
    # a crashed function, Wait and Choice states, a failed export caught and discarded, and a
    # purge continued in a new execution (the states:startExecution integration)
    sandbox.faults.api("rds", "CreateDBSnapshot", "Throttling", times=1)
    sandbox.faults.crash("describe_status", times=1)
    arns = [sandbox.run({}).arn]
    sandbox.rds.next_export(ExportOutcome(status="FAILED", failure_cause="simulated"))
    arns.append(sandbox.run({}).arn)
    bucket, prefix = sandbox.settings.bucket, "exports/mydb"
    old = "mysnapshot-2020-01-01-00-00-abcdef"
    backend = s3_backends[ACCOUNT]["aws"]
    backend.put_object(bucket, f"{prefix}/{old}/export_info_{old}.json", b"")
    for i in range(11):
        backend.put_object(bucket, f"{prefix}/{old}/shop/t/1/part-{i:05d}.gz.parquet", b"")
    monkeypatch.setattr(purge_prefix, "PAGE_SIZE", 4)
    monkeypatch.setattr(purge_prefix, "TIME_MARGIN_MS", 10**9)
    monkeypatch.setenv("PURGE_HISTORY_EVENTS_MAX", "250")
    continued = sandbox.run({})
    assert continued.output is not None and continued.output["status"] == "CONTINUED"
    arns += [continued.arn, continued.output["continued_in"]]
    sandbox.wait(arns[-1])
    sfn = sandbox.client("stepfunctions")
    kinds: set[str] = set()
    resources: set[str] = set()
    for arn in arns:
        # When the sandbox reads an execution's history from moto's backend
        found = runtime._history(sfn, arn)
        # Then it is what boto3's GetExecutionHistory returns, to the letter
        expected = runtime.api_history(sfn, arn)
        _same_as_boto3(expected, found)
        kinds |= {event["type"] for event in expected}
        resources |= {
            event["taskScheduledEventDetails"]["resourceType"]
            for event in expected
            if event["type"] == "TaskScheduled"
        }
    assert {"TaskFailed", "WaitStateEntered", "FailStateEntered", "ExecutionFailed"} <= kinds
    assert resources == {"lambda", "states"}


def test_the_jsonpath_and_lambda_client_seams_are_installed_and_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.utils import json_path

    # moto's interpreter parses JSONPaths and makes its Lambda client through these names
    assert "parse(path)" in inspect.getsource(json_path.extract_json)
    assert "parse(self.result_path_src)" in inspect.getsource(result_path)
    assert "boto_client_for(" in inspect.getsource(lambda_eval_utils._invoke_lambda_function)
    originals = (json_path.parse, result_path.parse, lambda_eval_utils.boto_client_for)
    made: list[tuple[str, str]] = []
    monkeypatch.setattr(seams, "_INTERPRETER_CLIENTS", {})
    monkeypatch.setattr(seams, "_original_client_for", lambda *args: made.append(args) or object())
    with seams.installed(SimClock()):
        assert json_path.parse is seams.json_path_once
        assert result_path.parse is seams.result_path_once
        assert lambda_eval_utils.boto_client_for is seams.interpreter_client
        first = lambda_eval_utils.boto_client_for("us-east-1", "lambda", state_credentials=None)
        assert lambda_eval_utils.boto_client_for("us-east-1", "lambda") is first
        assert made == [("us-east-1", "lambda")]
        assert seams.json_path_once("$.a.b") is seams.json_path_once("$.a.b")
        assert seams.json_path_once("$.a.b").find({"a": {"b": 1}})[0].value == 1
    assert (json_path.parse, result_path.parse, lambda_eval_utils.boto_client_for) == originals


def test_symmetric_keys_share_their_unused_signing_key() -> None:
    from moto.kms import models as kms_models

    original = kms_models.generate_private_key
    with seams.installed(SimClock()):
        assert kms_models.generate_private_key is seams.private_key_for
        shared = seams.private_key_for("SYMMETRIC_DEFAULT")
        assert seams.private_key_for("SYMMETRIC_DEFAULT") is shared
        assert seams.private_key_for("RSA_2048") is not seams.private_key_for("RSA_2048")
    assert kms_models.generate_private_key is original


def test_sessions_share_one_loader_that_keeps_each_folder_once() -> None:
    import boto3
    from botocore import session as botocore_session

    loader.install()
    assert loader.installed()
    first, second = boto3.Session(), boto3.Session()
    shared = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is shared
    assert len(shared.search_paths) == len(set(shared.search_paths))
    assert botocore_session.create_loader is loader.shared_loader


def test_the_listing_seam_lists_what_list_objects_v2_lists(sandbox: Sandbox) -> None:
    # Given keys of every shape, several pages of 50 of them, written through the API
    s3, bucket = sandbox.client("s3"), sandbox.settings.bucket
    names = ["a b/c+d", "a b/ü.parquet", "a%2Fb/x", "a/b/", "a/b//c", "ab", "a", "a/z~"]
    names += [f"a/many/{i:04d}" for i in range(105)]
    for index, key in enumerate(names):
        s3.put_object(Bucket=bucket, Key=key, Body=f"body {index}".encode())
    s3.put_object(Bucket=bucket, Key="a/b//c", Body=b"overwritten")
    s3.delete_object(Bucket=bucket, Key="a/many/0007")
    for prefix in ("", "a", "a/", "a b/", "a/b/", "a/many/", "nothing"):
        # When the sandbox lists a prefix from moto's backend
        found = sandbox.listing(prefix)
        # Then it is ListObjectsV2's listing, keys, ETags and order
        expected = sandbox.api_listing(prefix, page_size=50)
        assert list(found.items()) == list(expected.items()), prefix
    assert len(sandbox.listing("a/many/")) == 104


def test_listing_a_bucket_survives_a_key_deleted_meanwhile() -> None:
    from moto.s3.utils import _VersionedKeyStore

    class Version(str):  # a FakeKey's stand-in: a value moto disposes of when it is deleted
        def dispose(self) -> None:
            pass

    def listed_while_deleting() -> list[str]:
        store = _VersionedKeyStore()
        for name in ("a", "b", "c"):
            store[name] = Version(f"version of {name}")
        names = []
        for name, latest in store.items():  # what moto's ListObjects iterates
            assert latest == f"version of {name}"
            names.append(name)
            if name == "a":
                store.pop("c")  # a DeleteObjects of another thread
        return names

    # moto alone: the listing fails on the key deleted after it copied the names
    with pytest.raises(KeyError):
        listed_while_deleting()
    # in the sandbox: the listing is of the moment it started, as a page of S3's can be
    with seams.installed(SimClock()):
        assert listed_while_deleting() == ["a", "b", "c"]
        store = _VersionedKeyStore()
        store["k"] = Version("old")
        store["k"] = Version("new")
        assert list(store.values()) == ["new"]
    assert _VersionedKeyStore.items is not seams.key_store_items


def test_the_sandbox_session_makes_each_client_once() -> None:
    from botocore.config import Config

    session = loader.ReusingSession()
    config = Config(retries={"total_max_attempts": 1})
    s3 = session.client("s3", region_name="us-east-1", config=config)
    # the same arguments, the same Config object: the same client
    assert session.client("s3", region_name="us-east-1", config=config) is s3
    # anything else: another client, made as boto3 makes it
    other = session.client("s3", region_name="us-east-1", config=Config())
    assert other is not s3
    assert session.client("s3", region_name="eu-west-1", config=config) is not s3
    assert (
        session.client(
            "rds", region_name="us-east-1", config=config
        ).meta.service_model.service_name
        == "rds"
    )
    for index in range(loader.ReusingSession.LIMIT + 1):  # a bounded memory
        session.client("s3", region_name="us-east-1", config=Config(user_agent_extra=str(index)))
    assert len(session._made) == loader.ReusingSession.LIMIT


def test_a_recording_sandbox_makes_its_clients_after_the_recorder() -> None:
    import boto3

    # an ordinary sandbox serves every client from the process's one session
    with Sandbox():
        assert boto3.DEFAULT_SESSION is runtime._reusing_session()
    # a recording one has a session of its own: the recorder hooks the clients made after it
    with Sandbox(record_iam=True) as recording:
        assert boto3.DEFAULT_SESSION is not runtime._reusing_session()
        assert recording.client("s3") is not runtime._reusing_session().client(
            "s3", region_name=runtime.REGION
        )
