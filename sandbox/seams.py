"""The places where the sandbox reaches into moto's internals. Keep them here, only here.

1. `LambdaFunction._invoke_lambda` (private): moto runs Lambda functions in Docker, which these
   machines do not have. The replacement imports the project's handler module named by the
   function's `Handler` and calls it in-process, returning what the Lambda service would:
   the JSON result, or an error payload (`errorType`, `errorMessage`) flagged as an error.
2. `WaitFunction._wait_interval` (Step Functions interpreter): a Wait state advances the
   simulated clock instead of sleeping.
3. `retrier_decl.time` (Step Functions interpreter): a Retry back-off advances the simulated
   clock instead of `time.sleep`.
4. `AmazonStateLanguageParser.parse` (Step Functions interpreter): moto parses the definition
   with ANTLR at CreateStateMachine, at every execution and for every DescribeExecution's
   variable references; the same 27 KB file, a quarter of the test suite's CPU. The parsed
   program and tree are only read afterwards, so they are kept per definition text.
5. `execution_status` and `execution_history` (read only): the status and the event history
   of an execution straight from moto's Step Functions backend, so that waiting for a run does
   not serialise DescribeExecution responses in a busy loop beside the execution's own thread,
   and its history (hundreds of events carrying each state's input and output) is not
   serialised to JSON by moto and parsed back by botocore. `execution_history` returns what
   GetExecutionHistory returns through boto3, to the key order and the timestamps' type;
   tests/sandbox/test_seams.py compares the two on executions with every kind of event.
6. `StateTaskServiceSfn._eval_service_task` (Step Functions interpreter): moto passes the
   `arn:aws:states:::states:startExecution` integration's parameters to boto3 as the ASL spells
   them (`StateMachineArn`, `Input`, `Name`), which boto3 rejects, and returns boto3's answer
   (`executionArn`, `startDate`). The replacement translates both ways, as Step Functions does.
7. `json_path.parse` and `result_path.parse` (Step Functions interpreter): moto parses every
   JSONPath (`InputPath`, `Parameters` `.$` keys, `ResultPath`, ...) each time a state uses
   it, and jsonpath_ng builds its whole grammar for each parse. A parsed path is only read
   afterwards, so each path is parsed once per process.
8. `lambda_eval_utils.boto_client_for` (Step Functions interpreter): moto makes a new boto3
   Lambda client for every Task's invocation (with fixed fake credentials, whatever the
   state's credentials). The sandbox reuses one client per region and service, in every
   execution of the process.
9. `kms.models.generate_private_key`: moto gives every KMS key an RSA private key for
   Sign/Verify, a symmetric key too (about a tenth of a second of CPU per sandbox). The
   sandbox's key is symmetric, which AWS never signs with; such keys share one generated RSA
   key. Other key specs get their own, as before.
10. `bucket_listing` (read only): what ListObjectsV2 lists under a prefix, with the ETags,
    straight from moto's S3 backend, for the sandbox's own looks at the bucket (tests compare
    the bucket before and after a run, thousands of keys in some): through the API each page
    of 1,000 keys is serialised to XML by moto and parsed back by botocore, timestamps and
    all. tests/sandbox/test_seams.py compares it with the API's listing.
11. `_VersionedKeyStore.items` and `.values` (S3): moto lists a bucket by copying its key
    names, then looking each one up again; a key deleted in between (the purge deletes the
    page it listed while it lists the next one, as S3 allows) fails the listing with a
    KeyError. The replacements read the keys and their latest versions from the same copy.

13. `iam.models.DEFAULT_ACCOUNT_ID` (`default_account`): moto puts a request whose access key
    it does not know (the sandbox's fake one) in its default account, 123456789012. A
    two-account sandbox (sandbox/accounts.py) may name the pipeline's account: the
    replacement makes moto's fallback that account for the sandbox's lifetime, so that every
    unassumed call (the handlers', moto's own interpreter's) lands there.

12. `botocore.endpoint.time` (botocore, not moto): the SDK's retries (S3's, see
    rds_s3_export/aws.py) sleep between attempts; in the sandbox the sleep advances the
    simulated clock instead, as a Wait state does.

moto is pinned in pyproject.toml; tests/sandbox/test_seams.py fails loudly if an upgrade
moves any of these.
"""

from __future__ import annotations

import calendar
import functools
import importlib
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from types import SimpleNamespace
from typing import Any

from botocore import endpoint as botocore_endpoint
from botocore.utils import parse_timestamp
from moto.awslambda.models import LambdaFunction
from moto.iam import models as iam_models
from moto.kms import models as kms_models
from moto.s3.models import s3_backends
from moto.s3.utils import _VersionedKeyStore
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from sandbox import iam_replay
from sandbox.clock import SimClock, metered

# A hook the fault injector uses: called with the handler module name before each invocation;
# it may raise to simulate a crashed function.
BeforeInvoke = Callable[[str], None]


# Each function's configured timeout, as infra/functions.py sets it (STEPS; tests/sandbox/
# test_context.py checks the two agree: infra is not imported here, it would start the CDK).
FUNCTION_TIMEOUT_SECONDS: Mapping[str, int] = {
    "validate_input": 30,
    "create_snapshot": 60,
    "describe_status": 30,
    "start_export": 60,
    "purge_prefix": 300,
    "discard_failed_export": 60,
    "publish_manifest": 300,
    "update_catalog": 120,
    "prune_snapshots": 60,
}
DEFAULT_TIMEOUT_SECONDS = 60


class FakeContext:
    """The bits of the Lambda context object a handler might read. The time left is the
    function's timeout less what the invocation has spent on the simulated clock (`spent`:
    its S3 requests' simulated latency, the SDK's sleeps before retries; see
    sandbox.clock.metered). Without `spent` it stands at the whole timeout."""

    def __init__(
        self,
        function_name: str,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        spent: Callable[[], float] | None = None,
    ) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 256
        self.timeout_seconds = timeout_seconds
        self._spent = spent or (lambda: 0.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - self._spent()) * 1000))

    def timed_out(self) -> bool:
        return self._spent() >= self.timeout_seconds


class InvocationLog:
    """Counts of invocations per handler module (the demo prints polls from these)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def record(self, module: str) -> None:
        with self._lock:
            self.counts[module] = self.counts.get(module, 0) + 1


def _load_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)  # type: ignore[no-any-return]


def invoke_in_process(
    function: Any,
    event: Any,
    before: BeforeInvoke | None,
    log: InvocationLog | None,
    after: BeforeInvoke | None = None,
    *,
    clock: SimClock | None = None,
) -> tuple[str, bool, str]:
    """Run the handler of `function` with `event`; (payload, errored, logs) like moto expects.

    `before` may raise to simulate a crashed function; `after` may raise a moto Lambda service
    error, which fails the Invoke call itself after the handler did its work. With `clock`, the
    context's time left follows the function's timeout (FUNCTION_TIMEOUT_SECONDS), and a handler
    that ends past it is answered as Lambda answers a timed-out function (`Sandbox.Timedout`;
    what it did before is done, as in Lambda, where the function is stopped at its timeout)."""
    payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
    # `rds_s3_export.steps.purge_prefix.lambda_handler` -> `purge_prefix`: the step's name
    module_name = function.handler.rpartition(".")[0].rpartition(".")[2]
    try:
        if log is not None:
            log.record(module_name)
        if before is not None:
            before(module_name)
        handler = _load_handler(function.handler)
        timeout = FUNCTION_TIMEOUT_SECONDS.get(module_name, DEFAULT_TIMEOUT_SECONDS)
        # the IAM replay attributes the handler's AWS calls to its function
        with iam_replay.acting_as(iam_replay.function_principal(module_name)), metered() as spent:
            context = FakeContext(function.function_name, timeout, spent if clock else None)
            result = handler(payload, context)
        if context.timed_out():
            timed_out = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {timeout}.00 seconds",
            }
            return json.dumps(timed_out), True, ""
    except Exception as err:  # the Lambda runtime turns any exception into an error payload
        error_type = getattr(err, "error_type", None) or type(err).__name__
        body = {
            "errorType": error_type,
            "errorMessage": str(err),
            "stackTrace": traceback.format_tb(err.__traceback__)[-3:],
        }
        return json.dumps(body), True, ""
    if after is not None:
        after(module_name)  # may raise: the service error propagates to moto's Invoke
    return json.dumps(result), False, ""


# definition text -> (program, tree): what AmazonStateLanguageParser.parse returned for it
_PARSED: dict[str, Any] = {}
_PARSED_LOCK = threading.Lock()
_PARSED_LIMIT = 16  # a handful of definitions (tests change the ASL now and then)
_original_parse = AmazonStateLanguageParser.parse


def parse_once(definition: str) -> Any:
    """`AmazonStateLanguageParser.parse`, memoised by the definition's text. A definition that
    fails to parse raises every time, as before (failures are not kept)."""
    with _PARSED_LOCK:
        found = _PARSED.get(definition)
    if found is not None:
        return found
    parsed = _original_parse(definition)
    with _PARSED_LOCK:
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[definition] = parsed
    return parsed


# (region, service) -> the client moto's interpreter invokes Lambda functions with (see 8.)
_INTERPRETER_CLIENTS: dict[tuple[str, str], Any] = {}
_INTERPRETER_CLIENTS_LOCK = threading.Lock()
# names moto imports into its modules without re-exporting them (hence getattr and setattr)
_original_json_path_parse = getattr(json_path, "parse")  # noqa: B009
_original_result_path_parse = getattr(result_path, "parse")  # noqa: B009
_original_client_for = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009
_original_generate_private_key = getattr(kms_models, "generate_private_key")  # noqa: B009


@functools.lru_cache(maxsize=4096)
def json_path_once(path: str) -> Any:
    """jsonpath_ng's extended `parse` (moto's InputPath, Parameters, ...), once per path."""
    return _original_json_path_parse(path)


@functools.lru_cache(maxsize=4096)
def result_path_once(path: str) -> Any:
    """jsonpath_ng's plain `parse` (moto's ResultPath), once per path."""
    return _original_result_path_parse(path)


@functools.cache
def _symmetric_keys_private_key() -> Any:
    return _original_generate_private_key("SYMMETRIC_DEFAULT")


def key_store_items(store: Any) -> Iterator[tuple[str, Any]]:
    """moto's bucket key store's `items()`: (name, latest version), from one copy (see 11.)."""
    for name, versions in dict.copy(store).items():
        if versions:
            yield name, versions[-1]


def key_store_values(store: Any) -> Iterator[Any]:
    """moto's bucket key store's `values()`, from one copy (see 11.)."""
    for _, latest in key_store_items(store):
        yield latest


def interpreter_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's `boto_client_for`, one client per region and service (see 8. above)."""
    with _INTERPRETER_CLIENTS_LOCK:
        if (region, service) not in _INTERPRETER_CLIENTS:
            _INTERPRETER_CLIENTS[(region, service)] = _original_client_for(region, service)
        return _INTERPRETER_CLIENTS[(region, service)]


def private_key_for(key_spec: str) -> Any:
    """moto's key material for Sign/Verify; one for all symmetric keys (see 9. above)."""
    if key_spec == "SYMMETRIC_DEFAULT":
        return _symmetric_keys_private_key()
    return _original_generate_private_key(key_spec)


@contextmanager
def default_account(account: str) -> Iterator[None]:
    """Requests whose access key moto does not know land in `account` (seam 13)."""
    original = getattr(iam_models, "DEFAULT_ACCOUNT_ID")  # noqa: B009 - not re-exported
    setattr(iam_models, "DEFAULT_ACCOUNT_ID", account)  # noqa: B010
    try:
        yield
    finally:
        setattr(iam_models, "DEFAULT_ACCOUNT_ID", original)  # noqa: B010


def execution_status(account: str, region: str, arn: str) -> str:
    """RUNNING, SUCCEEDED, FAILED, ... of an execution, read from moto's backend directly."""
    execution = stepfunctions_parser_backends[account][region].describe_execution(arn)
    status = str(execution.status)
    if status == "SUCCEEDED" and execution.output is None:
        return "RUNNING"  # moto sets the status a moment before the output: not ended yet
    return status


def bucket_listing(account: str, bucket: str, prefix: str) -> dict[str, str]:
    """Every key under `prefix` with its ETag, in ListObjectsV2's order, from moto's S3."""
    backend = s3_backends[account]["aws"]
    keys, _, _, _ = backend.list_objects(
        backend.get_bucket(bucket), prefix or None, None, None, None
    )
    return {key.name: key.etag for key in keys}


def execution_history(account: str, region: str, arn: str, events_shape: Any) -> list[Any]:
    """The events of an execution as boto3's GetExecutionHistory gives them, read from moto's
    backend. `events_shape` is the `events` member of the operation's output shape (botocore's
    model of what the API returns), which decides the keys kept, their order and their types."""
    execution: Any = stepfunctions_parser_backends[account][region].describe_execution(arn)
    events = execution.to_history_output()["events"]
    return list(_as_boto3(events_shape, events))


def _moment(text: str) -> datetime:
    """moto's ISO 8601 timestamp (`2024-05-01T02:00:00.123Z`); anything else as botocore reads
    it (dateutil, ten times slower)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return parse_timestamp(text)


def _as_boto3(shape: Any, value: Any) -> Any:
    """`value` (moto's model of an API answer) as the JSON protocol carries it, parsed back by
    botocore: members outside the shape and None values dropped, in the shape's order;
    timestamps as moto serialises them (whole milliseconds since the epoch) and botocore parses
    them (aware, in local time); enumerations as plain strings."""
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _as_boto3(member, value[name])
            for name, member in shape.members.items()
            if name in value and value[name] is not None
        }
    if kind == "list":
        return [_as_boto3(shape.member, item) for item in value]
    if kind == "map":
        return {str(k): _as_boto3(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        moment = value if isinstance(value, datetime) else _moment(value)
        epoch: Any = calendar.timegm(moment.utctimetuple()) + (moment.microsecond // 1000) / 1000
        return parse_timestamp(epoch)
    if isinstance(value, Enum):
        return value.value
    return value


@contextmanager
def installed(
    clock: SimClock,
    before: BeforeInvoke | None = None,
    log: InvocationLog | None = None,
    after: BeforeInvoke | None = None,
) -> Iterator[None]:
    """Install the seams for the duration of the block."""
    original_invoke = LambdaFunction._invoke_lambda
    original_wait = wait_function.WaitFunction._wait_interval
    original_time = getattr(retrier_decl, "time")  # noqa: B009 - not re-exported by moto

    def _invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoke_in_process(self, event, before, log, after, clock=clock)

    def _wait(self: Any, env: Any, wait_seconds: int) -> None:
        clock.advance(wait_seconds)

    sfn_task = state_task_service_sfn.StateTaskServiceSfn
    original_sfn = sfn_task._eval_service_task

    def _sfn(self: Any, env: Any, **kwargs: Any) -> None:
        if self._get_boto_service_action() != "start_execution":
            original_sfn(self, env, **kwargs)
            return
        parameters = kwargs.pop("normalised_parameters")
        camel = {k[:1].lower() + k[1:]: v for k, v in parameters.items()}
        original_sfn(self, env, normalised_parameters=camel, **kwargs)
        answer = env.stack.pop()
        env.stack.append({k[:1].upper() + k[1:]: v for k, v in answer.items()})

    LambdaFunction._invoke_lambda = _invoke  # type: ignore[method-assign]
    replacements = [
        (_VersionedKeyStore, "items", key_store_items),
        (_VersionedKeyStore, "iteritems", key_store_items),
        (_VersionedKeyStore, "values", key_store_values),
        (_VersionedKeyStore, "itervalues", key_store_values),
        (json_path, "parse", json_path_once),
        (result_path, "parse", result_path_once),
        (lambda_eval_utils, "boto_client_for", interpreter_client),
        (kms_models, "generate_private_key", private_key_for),
    ]
    replaced = [(module, name, getattr(module, name)) for module, name, _ in replacements]
    for module, name, replacement in replacements:
        setattr(module, name, replacement)
    wait_function.WaitFunction._wait_interval = _wait  # type: ignore[method-assign]
    sfn_task._eval_service_task = _sfn  # type: ignore[method-assign,assignment]
    setattr(retrier_decl, "time", SimpleNamespace(sleep=clock.advance, time=original_time.time))  # noqa: B010
    AmazonStateLanguageParser.parse = staticmethod(parse_once)  # type: ignore[method-assign]
    original_endpoint_time = getattr(botocore_endpoint, "time")  # noqa: B009
    setattr(botocore_endpoint, "time", SimpleNamespace(sleep=clock.spend))  # noqa: B010
    try:
        yield
    finally:
        AmazonStateLanguageParser.parse = staticmethod(_original_parse)  # type: ignore[method-assign]
        setattr(botocore_endpoint, "time", original_endpoint_time)  # noqa: B010
        LambdaFunction._invoke_lambda = original_invoke  # type: ignore[method-assign]
        for module, name, original in replaced:
            setattr(module, name, original)
        wait_function.WaitFunction._wait_interval = original_wait  # type: ignore[method-assign]
        setattr(retrier_decl, "time", original_time)  # noqa: B010
        sfn_task._eval_service_task = original_sfn  # type: ignore[method-assign]
