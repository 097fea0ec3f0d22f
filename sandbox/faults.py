"""Fault injection for the sandbox.

Two kinds of fault, both counted (`times=None` means every time):

* **API faults** answer a chosen AWS call with a chosen error, at the HTTP level, in the wire
  format of the service (query XML for RDS, REST XML for S3, JSON for the rest). The handlers
  see exactly the `ClientError` real AWS would give them: throttling, a busy instance, access
  denied, not found...
* **Crashes** make a chosen Lambda function fail as if its runtime died
  (`Runtime.ExitError`), before its handler runs.
* **Half-done requests** (`lose_answer`, `kill_after`): the request reaches moto and is carried
  out, then its answer is lost (the connection drops: the SDK sees a ConnectionClosedError and
  may retry) or the function dies with it (`Runtime.ExitError`, the work done stays done).
* **Latency** (`latency`): each chosen request spends simulated seconds on the sandbox's clock,
  charged to the handler invocation that makes it (its Lambda context's time left shrinks).

Outcome faults of the simulated RDS (a snapshot that fails, an export that ends FAILED or
CANCELED, the export quota) live in `sandbox.rds_sim`.
"""

from __future__ import annotations

import contextvars
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.handlers import BUILTIN_HANDLERS
from moto.awslambda.exceptions import LambdaClientError
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

HTTP_STATUS = {
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "InternalFailure": 500,
}


class SimulatedCrash(Exception):  # named like the Lambda runtime's error
    error_type = "Runtime.ExitError"


class LambdaServiceError(LambdaClientError):
    """The Lambda service failing the Invoke call (HTTP 500): Step Functions reports
    `Lambda.ServiceException`. Raised *after* the handler ran, it models the case a retry must
    be idempotent for: the work was done, the answer was lost."""

    code = 500

    def __init__(self) -> None:
        super().__init__("ServiceException", "simulated Lambda service error after invocation")


@dataclass
class ApiFault:
    service: str  # the service as botocore's event names spell it: rds, s3, sfn, lambda
    operation: str  # API operation name: CreateDBSnapshot, DeleteObjects...
    code: str
    message: str
    times: int | None = 1
    fired: int = 0
    # only calls made by this handler module (None: any caller), so that a fault can aim at
    # one step although several steps make the same call (DescribeDBSnapshots...)
    module: str | None = None
    # "error" (answer `code`), "lose-answer", "kill" or "latency" (see the module docstring)
    kind: str = "error"
    seconds: float = 0.0  # a latency fault's simulated seconds per request
    # only requests whose URL holds this text (an S3 key, say: `exports/mydb/_manifest.json`)
    url_contains: str | None = None


@dataclass
class Crash:
    module: str  # handler module name: create_snapshot, purge_prefix...
    times: int | None = 1
    fired: int = 0
    skip: int = 0  # let this many invocations of the module pass first
    seen: int = 0


@dataclass
class FaultInjector:
    api_faults: list[ApiFault] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    lost_answers: list[Crash] = field(default_factory=list)
    # the simulated clock's spend (sandbox.clock.SimClock.spend), for latency faults
    spend: Callable[[float], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def api(
        self,
        service: str,
        operation: str,
        code: str,
        message: str | None = None,
        times: int | None = 1,
        *,
        module: str | None = None,
        url_contains: str | None = None,
    ) -> ApiFault:
        """Answer `service`'s `operation` with error `code` (`times` requests; None = always).

        `service` is botocore's event name of the service: `rds`, `s3`, `sfn`, `lambda`.
        With `module`, only requests made while that handler module runs count; with
        `url_contains`, only requests whose URL holds that text (an S3 key)."""
        fault = ApiFault(
            service,
            operation,
            code,
            message or f"simulated {code}",
            times,
            module=module,
            url_contains=url_contains,
        )
        with self._lock:
            self.api_faults.append(fault)
        return fault

    def _half_done(
        self, kind: str, service: str, operation: str, times: int | None, module: str | None
    ) -> ApiFault:
        fault = ApiFault(service, operation, "", kind, times, module=module, kind=kind)
        with self._lock:
            self.api_faults.append(fault)
        return fault

    def lose_answer(
        self, service: str, operation: str, times: int | None = 1, *, module: str | None = None
    ) -> ApiFault:
        """The request is carried out, then its answer is lost (ConnectionClosedError)."""
        return self._half_done("lose-answer", service, operation, times, module)

    def kill_after(
        self, service: str, operation: str, times: int | None = 1, *, module: str | None = None
    ) -> ApiFault:
        """The request is carried out, then the function making it dies (Runtime.ExitError)."""
        return self._half_done("kill", service, operation, times, module)

    def latency(
        self, service: str, operation: str, seconds: float, *, module: str | None = None
    ) -> ApiFault:
        """Every such request spends `seconds` of simulated time (charged to its invocation)."""
        fault = ApiFault(service, operation, "", "latency", None, module=module, kind="latency")
        fault.seconds = seconds
        with self._lock:
            self.api_faults.append(fault)
        return fault

    def crash(self, module: str, times: int | None = 1, skip: int = 0) -> Crash:
        """The function of `module` dies before its handler runs (Runtime.ExitError), `times`
        times, after letting `skip` invocations pass (to aim at a later step of one module)."""
        crash = Crash(module, times, skip=skip)
        with self._lock:
            self.crashes.append(crash)
        return crash

    def crash_after(self, module: str, times: int | None = 1) -> Crash:
        """The handler runs to the end, then the Invoke call fails (Lambda.ServiceException)."""
        crash = Crash(module, times)
        with self._lock:
            self.lost_answers.append(crash)
        return crash

    def clear(self) -> None:
        with self._lock:
            self.api_faults.clear()
            self.crashes.clear()
            self.lost_answers.clear()

    @staticmethod
    def _take(item: ApiFault | Crash) -> bool:
        if item.times is not None and item.fired >= item.times:
            return False
        item.fired += 1
        return True

    # --- hooks -------------------------------------------------------------------------
    def before_invoke(self, module: str) -> None:
        _current.set(module)  # this thread now runs `module` (until its next invocation)
        with self._lock:
            for crash in self.crashes:
                if crash.module != module:
                    continue
                crash.seen += 1
                if crash.seen > crash.skip and self._take(crash):
                    raise SimulatedCrash(
                        f"RequestId: {uuid.uuid4()} Error: Runtime exited with error: "
                        "signal: killed (simulated crash)"
                    )

    def after_invoke(self, module: str) -> None:
        with self._lock:
            for crash in self.lost_answers:
                if crash.module == module and self._take(crash):
                    raise LambdaServiceError()

    def before_send(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        # event_name is "before-send.<service>.<Operation>"
        _, service, operation = event_name.split(".", 2)
        running = _current.get(None)
        delay, half_done = 0.0, None
        with self._lock:
            for fault in self.api_faults:
                if fault.service != service or fault.operation != operation:
                    continue
                if fault.module is not None and fault.module != running:
                    continue
                if fault.url_contains is not None and fault.url_contains not in request.url:
                    continue
                if fault.kind == "latency":
                    delay += fault.seconds
                elif self._take(fault):
                    if fault.kind == "error":
                        return error_response(request.url, service, fault)
                    half_done = fault
                    break
        if delay and self.spend is not None:
            self.spend(delay)
        if half_done is None:
            return None
        # carried out by moto (and the sandbox's limits), then the answer never arrives
        _answer(request, event_name, **kwargs)
        if half_done.kind == "kill":
            raise SimulatedCrash(
                f"RequestId: {uuid.uuid4()} Error: Runtime exited with error: signal: killed "
                f"(simulated, during {operation})"
            )
        raise ConnectionClosedError(endpoint_url=request.url)


def error_response(url: str, service: str, fault: ApiFault) -> AWSResponse:
    status = HTTP_STATUS.get(fault.code, 400)
    request_id = str(uuid.uuid4())
    if service == "rds":
        body = (
            '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error>'
            f"<Type>Sender</Type><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    elif service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        headers = {"Content-Type": "application/xml"}
    else:
        body = json.dumps({"__type": fault.code, "message": fault.message})
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    headers["x-amzn-RequestId"] = request_id
    return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


# The handler module each thread last started (an execution runs its Lambdas in its own thread).
# A context variable, not a thread-local: a handler's worker threads started with the caller's
# context (contextvars.copy_context) count as that handler's requests.
_current: contextvars.ContextVar[str] = contextvars.ContextVar("sandbox_handler_module")
# What stands in moto's place for each request: fault injectors, and sandbox.limits.
RequestHook = Callable[..., AWSResponse | None]
_installed: list[FaultInjector] = []
_hooks: list[RequestHook] = []
_handler_lock = threading.Lock()


def _answer(request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
    """What moto (behind the sandbox's limits) answers, faults aside."""
    for hook in list(_hooks):
        response = hook(request, event_name, **kwargs)
        if response is not None:
            return response
    return botocore_stubber(event_name=event_name, request=request, **kwargs)


def _dispatch(request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
    """moto's own before-send handler, unless a fault answers first.

    botocore calls *every* before-send handler and takes the first response, so a fault
    handler placed beside moto's would not stop moto from carrying the request out (a
    "throttled" CreateDBSnapshot would create the snapshot, an "access denied" DeleteObjects
    would delete). This handler therefore stands in moto's place: a faulted request never
    reaches moto, as a refused request never reaches a real service."""
    for injector in list(_installed):
        response = injector.before_send(request, event_name, **kwargs)
        if response is not None:
            return response
    return _answer(request, event_name, **kwargs)


def _take_moto_place() -> None:
    moto_entry = ("before-send", botocore_stubber)
    if moto_entry in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS[BUILTIN_HANDLERS.index(moto_entry)] = ("before-send", _dispatch)
    elif ("before-send", _dispatch) not in BUILTIN_HANDLERS:
        raise RuntimeError("moto's before-send handler is not registered: moto changed")


def install_hook(hook: RequestHook) -> None:
    """Let `hook(request, event_name)` answer requests in moto's place (after the faults)."""
    with _handler_lock:
        _take_moto_place()
        _hooks.append(hook)


def uninstall_hook(hook: RequestHook) -> None:
    with _handler_lock:
        if hook in _hooks:
            _hooks.remove(hook)


def install(injector: FaultInjector) -> None:
    """Put the injector in place of moto's handler for clients (sessions) created from now on.

    mock_aws gives every mocked block a fresh default session, so install before entering it.
    """
    with _handler_lock:
        _take_moto_place()
        _installed.append(injector)


def uninstall(injector: FaultInjector) -> None:
    with _handler_lock:
        if injector in _installed:
            _installed.remove(injector)
