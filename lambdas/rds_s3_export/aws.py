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

from rds_s3_export import rules
from rds_s3_export.errors import InstanceBusy, PipelineError, SourceNotFound, Throttled

# The state machine owns retries (Retry with backoff and jitter, visible in the execution
# history, counted against one budget per step). The SDK makes exactly one attempt, so a
# throttled or busy call surfaces at once as a named error instead of being retried twice over.
# (botocore: `total_max_attempts` counts the first attempt; `max_attempts` would not.)
_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})
# S3 is the exception. AWS advises retrying its 5xx answers (InternalError: "retry the request";
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorBestPractices.html), and a request
# whose answer was lost (a dropped connection, a read timeout) can be repeated: every S3 call the
# pipeline makes is idempotent (GET, LIST, a PUT of the whole manifest, DeleteObjects of keys
# that may already be gone). botocore's standard mode retries 500/502/503/504, InternalError,
# SlowDown and connection errors, with exponential backoff and jitter (at most 1, 2 s between
# attempts for throttling, far less for 5xx), S3_ATTEMPTS attempts in all. A fault that outlasts
# them surfaces as before (Throttled, or the step's named error), and the state machine decides.
S3_ATTEMPTS = 3
S3_CONNECT_TIMEOUT_SECONDS = 5
S3_READ_TIMEOUT_SECONDS = 15
# The longest one S3 call can take with its retries: every attempt timing out, plus the backoff
# between them. A step stops starting S3 work when less than this (and its margin) is left.
S3_CALL_WORST_SECONDS = S3_ATTEMPTS * (S3_CONNECT_TIMEOUT_SECONDS + S3_READ_TIMEOUT_SECONDS) + 3
_S3_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": S3_ATTEMPTS},
    connect_timeout=S3_CONNECT_TIMEOUT_SECONDS,
    read_timeout=S3_READ_TIMEOUT_SECONDS,
)

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
# S3 answers a GetObject of a missing key with NoSuchKey, and a HeadObject with a bare 404
S3_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
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
    config = _S3_CONFIG if service == "s3" else _CONFIG
    return boto3.client(service, config=config)  # type: ignore[call-overload]


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


def delete_objects(
    bucket: str, keys: list[str], fallback: Callable[[str], PipelineError], advice: str
) -> list[str]:
    """One DeleteObjects request; the keys S3 reports deleted.

    A throttling answer propagates as the ClientError (callers slow down in their own way); any
    other refusal, or any key S3 could not delete, raises `fallback` with `advice` appended."""
    if len(keys) > rules.S3_DELETE_OBJECTS_MAX_KEYS:  # S3 answers MalformedXML to a longer list
        raise ValueError(
            f"{len(keys)} keys in one DeleteObjects request "
            f"(at most {rules.S3_DELETE_OBJECTS_MAX_KEYS})"
        )
    if not keys:
        return []
    try:
        response = client("s3").delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": False}
        )
    except ClientError as err:
        if error_code(err) in THROTTLING_CODES:
            raise
        raise_as(err, fallback, "s3:DeleteObjects", f"s3://{bucket}/{keys[0]}...")
    errors = response.get("Errors", [])
    if errors:
        first = errors[0]
        raise fallback(
            f"{len(errors)} of {len(keys)} keys could not be deleted, e.g. "
            f"s3://{bucket}/{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}. "
            f"{advice}"
        )
    return [str(d["Key"]) for d in response.get("Deleted", []) if "Key" in d]


def object_exists(
    bucket: str, key: str, fallback: Callable[[str], PipelineError], purpose: str
) -> bool:
    """Whether `key` exists, decided by listing it (ListObjectsV2, Prefix=key, MaxKeys=1).

    A GET or HEAD of a missing key answers 404 only to a caller allowed s3:ListBucket on the
    bucket, and 403 to any other (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
    "Permissions"), so its answer cannot tell "absent" from "denied". A listing can: it names
    the key when the key is there (a key sorts before every longer key it prefixes), and a
    listing that is refused is refused whether the key exists or not. Raises `fallback`
    (throttling: Throttled) naming the key and `purpose` when the listing is refused."""
    try:
        page = client("s3").list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except ClientError as err:
        raise_as(err, fallback, "s3:ListObjectsV2", f"s3://{bucket}/{key} ({purpose})")
    return any(o.get("Key") == key for o in page.get("Contents", []))


def glue_tables(database: str) -> list[dict[str, Any]]:
    """Every table of a Glue database (GetTables, page after page); a refusal is raised as
    the ClientError it is, for the caller to name."""
    pages = client("glue").get_paginator("get_tables").paginate(DatabaseName=database)
    return [table for page in pages for table in page.get("TableList", [])]


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
