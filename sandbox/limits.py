"""AWS limits the sandbox enforces, where moto alone would accept what AWS refuses.

* **S3 DeleteObjects takes at most 1,000 keys** per request
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html). moto deletes any
  number; S3 answers `MalformedXML` (HTTP 400). `check_delete_objects` answers like S3, before
  the request reaches moto, so nothing is deleted.
* **No state's input or output may exceed 262,144 bytes**, a Lambda result included
  (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). Step Functions
  then fails the execution with `States.DataLimitExceeded`, which no `States.ALL` catches.
  moto's Step Functions interpreter enforces this itself, on every state's output and every
  Lambda result; `check_state_size_quota` fails loudly if an upgrade of moto drops or changes
  that check, and tests/sandbox/test_limits.py shows it failing an execution.
* **`States.ALL` catches neither `States.DataLimitExceeded` nor `States.Runtime`**
  (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). moto's
  interpreter lets `States.ALL` match them; `installed()` wraps its `ErrorEqualsDecl` (the one
  more reach into moto's internals, beside those listed in sandbox/seams.py) so they are not.

* **Identifier lengths, per engine**: a DB snapshot id has at most 255 characters, a DB cluster
  snapshot id at most 63, an export task id at most 60 (the pages are cited beside the limits
  in rds_s3_export/rules.py). moto accepts any length; `check_identifier_lengths` answers
  `InvalidParameterValue` as RDS does.

* **RDS tag values** may hold only Unicode letters, digits, white space and `_ . : / = + - @`,
  at most 256 characters (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Tag.html).
  moto takes any; `check_tag_values` answers `InvalidParameterValue` to a create or tagging
  request carrying another value (a Step Functions execution name may hold `! ' ( )`).

`installed()` puts the S3 check in place for the sandbox's lifetime (`Sandbox` does it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from botocore.awsrequest import AWSResponse
from moto.stepfunctions.parser import quotas
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
    ErrorEqualsDecl,
)

from rds_s3_export import rules
from sandbox import faults

DELETE_OBJECTS_MAX_KEYS = rules.S3_DELETE_OBJECTS_MAX_KEYS  # cited in rds_s3_export/rules.py
STATE_MAX_BYTES = rules.STATE_MAX_BYTES
_OBJECT = re.compile(rb"<Object>|<Object\s")


def check_delete_objects(request: Any, event_name: str, **_kwargs: Any) -> AWSResponse | None:
    """S3's answer to a DeleteObjects request naming more than 1,000 keys, else None."""
    if event_name != "before-send.s3.DeleteObjects":
        return None
    body = request.body
    if body is None:
        return None
    if not isinstance(body, bytes):
        body = body.read() if hasattr(body, "read") else str(body).encode()
        if hasattr(request.body, "seek"):
            request.body.seek(0)
    count = len(_OBJECT.findall(body))
    if count <= DELETE_OBJECTS_MAX_KEYS:
        return None
    fault = faults.ApiFault(
        "s3",
        "DeleteObjects",
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published "
        f"schema ({count} keys; at most {DELETE_OBJECTS_MAX_KEYS})",
    )
    return faults.error_response(request.url, "s3", fault)


# operation -> (parameter, its longest value): the limits of rds_s3_export.rules
IDENTIFIER_LIMITS = {
    "CreateDBSnapshot": ("DBSnapshotIdentifier", rules.SNAPSHOT_ID_MAX["instance"]),
    "CreateDBClusterSnapshot": ("DBClusterSnapshotIdentifier", rules.SNAPSHOT_ID_MAX["cluster"]),
    "StartExportTask": ("ExportTaskIdentifier", rules.EXPORT_TASK_ID_MAX),
}


def _rds_request(
    request: Any, event_name: str, operations: Any
) -> tuple[str, dict[str, list[str]]] | None:
    """(operation, its query parameters) of an RDS request for one of `operations`, else None."""
    service, _, operation = event_name.removeprefix("before-send.").partition(".")
    if service != "rds" or operation not in operations:
        return None
    body = request.body
    return operation, parse_qs(body.decode() if isinstance(body, bytes) else str(body or ""))


def _invalid_parameter(request: Any, operation: str, message: str) -> AWSResponse:
    fault = faults.ApiFault("rds", operation, "InvalidParameterValue", message)
    return faults.error_response(request.url, "rds", fault)


def check_identifier_lengths(request: Any, event_name: str, **_kwargs: Any) -> AWSResponse | None:
    """RDS's answer to an identifier longer than the engine allows, else None."""
    found = _rds_request(request, event_name, IDENTIFIER_LIMITS)
    if found is None:
        return None
    operation, params = found
    parameter, maximum = IDENTIFIER_LIMITS[operation]
    value = params.get(parameter, [""])[0]
    if len(value) <= maximum:
        return None
    return _invalid_parameter(
        request,
        operation,
        f"{parameter} must contain from 1 to {maximum} characters ({len(value)} given)",
    )


TAGGING_OPERATIONS = frozenset({"CreateDBSnapshot", "CreateDBClusterSnapshot", "AddTagsToResource"})


def check_tag_values(request: Any, event_name: str, **_kwargs: Any) -> AWSResponse | None:
    """RDS's answer to a tag value it does not take (rules.is_rds_tag_value), else None."""
    found = _rds_request(request, event_name, TAGGING_OPERATIONS)
    if found is None:
        return None
    operation, params = found
    for name, values in params.items():
        bad = [v for v in values if not rules.is_rds_tag_value(v)]
        if name.startswith("Tags.") and name.endswith(".Value") and bad:
            return _invalid_parameter(
                request,
                operation,
                f"Invalid tag value {bad[0]!r}: letters, digits, white space and _.:/=+-@ only",
            )
    return None


def check_state_size_quota() -> None:
    """moto's interpreter fails a state whose input or output passes 256 KB; make sure the
    installed moto still has that check, with that limit."""
    limit = getattr(quotas, "MAX_STATE_SIZE_UTF8_BYTES", None)
    if limit != STATE_MAX_BYTES or not callable(getattr(quotas, "is_within_size_quota", None)):
        raise RuntimeError(
            "moto's Step Functions no longer enforces the 262,144-byte state size "
            f"(quotas.MAX_STATE_SIZE_UTF8_BYTES is {limit!r}): sandbox.limits must do it"
        )


UNCATCHABLE_BY_ALL = frozenset({"States.DataLimitExceeded", "States.Runtime"})


@contextmanager
def _states_all_spares_terminal_errors() -> Iterator[None]:
    original = ErrorEqualsDecl._eval_body
    wildcard = ErrorEqualsDecl._STATE_ALL_ERROR

    def _eval_body(self: Any, env: Any) -> None:
        error_name = getattr(env.stack[-1], "error_name", None)
        original(self, env)
        if error_name in UNCATCHABLE_BY_ALL and self.error_names == [wildcard]:
            env.stack[-1] = False

    ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]
    try:
        yield
    finally:
        ErrorEqualsDecl._eval_body = original  # type: ignore[method-assign]


@contextmanager
def installed() -> Iterator[None]:
    check_state_size_quota()
    faults.install_hook(check_delete_objects)
    faults.install_hook(check_identifier_lengths)
    faults.install_hook(check_tag_values)
    try:
        with _states_all_spares_terminal_errors():
            yield
    finally:
        faults.uninstall_hook(check_tag_values)
        faults.uninstall_hook(check_identifier_lengths)
        faults.uninstall_hook(check_delete_objects)
