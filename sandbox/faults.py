"""Fault injection for the sandbox.

Two kinds of fault, both counted (`times=None` means every time):

* **API faults** answer a chosen AWS call with a chosen error, at the HTTP level, in the wire
  format of the service (query XML for RDS, REST XML for S3, JSON for the rest). The handlers
  see exactly the `ClientError` real AWS would give them: throttling, a busy instance, access
  denied, not found...
* **Crashes** make a chosen Lambda function fail as if its runtime died
  (`Runtime.ExitError`), before its handler runs.

Outcome faults of the simulated RDS (a snapshot that fails, an export that ends FAILED or
CANCELED, the export quota) live in `sandbox.rds_sim`.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.botocore_stubber import MockRawResponse

HTTP_STATUS = {
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "SlowDown": 503,
    "ServiceUnavailable": 503,
}


class SimulatedCrash(Exception):  # noqa: N818 - named like the Lambda runtime's error
    error_type = "Runtime.ExitError"


@dataclass
class ApiFault:
    service: str  # botocore service id as in event names: rds, s3, stepfunctions, lambda
    operation: str  # API operation name: CreateDBSnapshot, DeleteObjects...
    code: str
    message: str
    times: int | None = 1
    fired: int = 0


@dataclass
class Crash:
    module: str  # handler module name: create_snapshot, purge_prefix...
    times: int | None = 1
    fired: int = 0


@dataclass
class FaultInjector:
    api_faults: list[ApiFault] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def api(
        self,
        service: str,
        operation: str,
        code: str,
        message: str | None = None,
        times: int | None = 1,
    ) -> ApiFault:
        fault = ApiFault(service, operation, code, message or f"simulated {code}", times)
        with self._lock:
            self.api_faults.append(fault)
        return fault

    def crash(self, module: str, times: int | None = 1) -> Crash:
        crash = Crash(module, times)
        with self._lock:
            self.crashes.append(crash)
        return crash

    def clear(self) -> None:
        with self._lock:
            self.api_faults.clear()
            self.crashes.clear()

    @staticmethod
    def _take(item: ApiFault | Crash) -> bool:
        if item.times is not None and item.fired >= item.times:
            return False
        item.fired += 1
        return True

    # --- hooks -------------------------------------------------------------------------
    def before_invoke(self, module: str) -> None:
        with self._lock:
            for crash in self.crashes:
                if crash.module == module and self._take(crash):
                    raise SimulatedCrash(
                        f"RequestId: {uuid.uuid4()} Error: Runtime exited with error: "
                        "signal: killed (simulated crash)"
                    )

    def before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        # event_name is "before-send.<service>.<Operation>"
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            for fault in self.api_faults:
                if fault.service == service and fault.operation == operation and self._take(fault):
                    return _error_response(request.url, service, fault)
        return None


def _error_response(url: str, service: str, fault: ApiFault) -> AWSResponse:
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
    return AWSResponse(url, status, headers, MockRawResponse(body))


_installed: list[FaultInjector] = []
_handler_lock = threading.Lock()


def _dispatch(request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
    for injector in list(_installed):
        response = injector.before_send(request, event_name, **kwargs)
        if response is not None:
            return response
    return None


def install(injector: FaultInjector) -> None:
    """Put the injector in front of moto for clients created from now on."""
    with _handler_lock:
        if ("before-send", _dispatch) not in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.insert(0, ("before-send", _dispatch))
        _installed.append(injector)


def uninstall(injector: FaultInjector) -> None:
    with _handler_lock:
        if injector in _installed:
            _installed.remove(injector)
