"""Environment settings, parsed in one place into typed objects.

Nothing else reads `os.environ`. Values are read on every call (cheap), not cached at import,
so a harness can change them between invocations.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from rds_s3_export import rules
from rds_s3_export.errors import InvalidInput


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise InvalidInput(f"environment variable {name} is not set (stack misconfigured)")
    return value


def _json_object(name: str) -> dict[str, Any]:
    raw = os.environ.get(name, "{}") or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidInput(f"environment variable {name} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise InvalidInput(f"environment variable {name} must hold a JSON object")
    return value


@dataclass(frozen=True)
class ExportTarget:
    """Where exports go and with what: the stack's own bucket, role and key."""

    bucket: str
    role_arn: str
    kms_key_arn: str

    @classmethod
    def from_env(cls) -> ExportTarget:
        return cls(
            bucket=_require("EXPORT_BUCKET"),
            role_arn=_require("EXPORT_ROLE_ARN"),
            kms_key_arn=_require("EXPORT_KMS_KEY_ARN"),
        )


def export_bucket() -> str:
    return _require("EXPORT_BUCKET")


def export_bucket_if_set() -> str | None:
    """EXPORT_BUCKET, or None where a function runs without it (outside the stack)."""
    return os.environ.get("EXPORT_BUCKET") or None


def export_kms_key_arn() -> str:
    return _require("EXPORT_KMS_KEY_ARN")


def glue_database() -> str:
    """GLUE_DATABASE, the catalog's Glue database ("": the stack keeps no catalog)."""
    return os.environ.get("GLUE_DATABASE", "")


def catalog_owner() -> str:
    """PIPELINE_NAME, set beside GLUE_DATABASE: the name that marks the pipeline's own Glue
    tables (rds_s3_export.catalog.owned); "" where the stack keeps no catalog."""
    return os.environ.get("PIPELINE_NAME", "")


# The purge asks for a new execution before its estimate of the events spent passes this, 5,000
# short of the history's limit.
PURGE_HISTORY_EVENTS_MAX = rules.HISTORY_EVENTS_MAX - 5_000


def purge_history_events_max() -> int:
    """PURGE_HISTORY_EVENTS_MAX if set (a smaller budget, e.g. to exercise the continuation),
    else 20,000."""
    raw = os.environ.get("PURGE_HISTORY_EVENTS_MAX", "")
    if not raw:
        return PURGE_HISTORY_EVENTS_MAX
    try:
        value = int(raw)
    except ValueError as err:
        raise InvalidInput(f"PURGE_HISTORY_EVENTS_MAX must be an integer, not {raw!r}") from err
    if not 0 < value <= PURGE_HISTORY_EVENTS_MAX:
        raise InvalidInput(
            f"PURGE_HISTORY_EVENTS_MAX must be between 1 and {PURGE_HISTORY_EVENTS_MAX}"
        )
    return value


def pipeline_defaults() -> dict[str, Any]:
    return _json_object("PIPELINE_DEFAULTS")


def pipeline_settings() -> dict[str, Any]:
    return _json_object("PIPELINE_SETTINGS")
