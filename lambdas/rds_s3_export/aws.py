"""Lazily created, reused boto3 clients and the translation of AWS errors into named ones.

Clients are created on first use, not at import time, so whoever sets the endpoint and the
credentials first (the runtime, or a test harness) is the one they use; a warm Lambda reuses
them across invocations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rds_s3_export.errors import InstanceBusy, PipelineError, SourceNotFound, Throttled

# The state machine owns retries (Retry with backoff and jitter, visible in the execution
# history, counted against one budget per step). The SDK makes exactly one attempt, so a
# throttled or busy call surfaces at once as a named error instead of being retried twice over.
# (botocore: `total_max_attempts` counts the first attempt; `max_attempts` would not.)
_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottled",
    }
)
BUSY_CODES = frozenset({"InvalidDBInstanceState", "InvalidDBClusterStateFault"})
NOT_FOUND_CODES = frozenset(
    {
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBClusterNotFoundFault",
        "DBSnapshotNotFound",
        "DBSnapshotNotFoundFault",
        "DBClusterSnapshotNotFoundFault",
    }
)


@functools.cache
def client(service: str) -> Any:
    """The process-wide client for `service` (rds, s3, stepfunctions)."""
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients, so the next call makes new ones (a harness that replaces the
    AWS endpoints calls this)."""
    client.cache_clear()


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", ""))


def describe(err: ClientError) -> str:
    """`Code: message`, for Causes."""
    message = error_message(err)
    return f"{error_code(err)}: {message}" if message else error_code(err)


def raise_as(
    err: ClientError, fallback: Callable[[str], PipelineError], action: str, resource: str
) -> NoReturn:
    """Re-raise an AWS error as a named pipeline error.

    Throttling and a busy instance become transient errors (the state machine retries them);
    "not found" becomes SourceNotFound; everything else, access denied included, becomes
    `fallback`. The message names the API action and the resource, so a Cause is actionable.
    """
    code = error_code(err)
    text = f"{action} on {resource} failed: {describe(err)}"
    if code in THROTTLING_CODES:
        raise Throttled(text) from err
    if code in BUSY_CODES:
        raise InstanceBusy(text) from err
    if code in NOT_FOUND_CODES:
        raise SourceNotFound(text) from err
    raise fallback(text) from err
