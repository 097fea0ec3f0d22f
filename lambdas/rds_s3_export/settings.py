"""Environment settings, parsed in one place into typed objects.

Nothing else reads `os.environ`. Values are read on every call (cheap), not cached at import,
so a harness can change them between invocations.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

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


def export_kms_key_arn() -> str:
    return _require("EXPORT_KMS_KEY_ARN")


def pipeline_defaults() -> dict[str, Any]:
    return _json_object("PIPELINE_DEFAULTS")


def pipeline_settings() -> dict[str, Any]:
    return _json_object("PIPELINE_SETTINGS")
