"""The execution input: defaults merged in, every key validated, one typed result.

An input of `{}` is valid: every key falls back to the stack's default. A given key overrides
its default. Unknown keys, wrong types and unsafe values raise `InvalidInput` naming the key,
before anything is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from rds_s3_export import naming
from rds_s3_export.errors import InvalidInput

SOURCES = ("new-snapshot", "latest-automated", "snapshot")
INPUT_KEYS = frozenset(
    {
        "db_instance_identifier",
        "db_cluster_identifier",
        "source",
        "snapshot_identifier",
        "snapshot_prefix",
        "s3_prefix",
        "export_only",
        "keep_snapshots",
        "dry_run",
    }
)
DATABASE_KEYS = ("db_instance_identifier", "db_cluster_identifier")
SNAPSHOT_PREFIX_MAX = 200  # leaves room for the `-YYYY-mm-dd-HH-MM-xxxxxx` tail (255 max)
S3_PREFIX_MAX = 512
EXPORT_ONLY_MAX_BYTES = 200 * 1024  # RDS's limit on ExportOnly
KEEP_SNAPSHOTS_MAX = 100  # RDS's default quota of manual snapshots per region
# database | database.table | database.schema | database.schema.table; RDS skips names with "/"
_EXPORT_ONLY_NAME = re.compile(r"^[^./\s]+(?:\.[^./\s]+){0,2}$")
# RDS rewrites these characters in S3 paths to "_": the purge would then look in the wrong place
_S3_PREFIX_FORBIDDEN = re.compile(r'[:\\`"\s\x00-\x1f\x7f]')
SKIPPED_TABLE_POLICIES = ("warn", "fail")
# The keys of PIPELINE_SETTINGS (the stack's limits, not the execution input). The stack and the
# sandbox both build that object; tests hold each of them to this set.
SETTING_KEYS = frozenset(
    {
        "pipeline_name",
        "poll_min_seconds",
        "poll_max_seconds",
        "snapshot_timeout_seconds",
        "export_timeout_seconds",
        "skipped_tables_policy",
        "allowed_s3_prefixes",
        "allowed_databases",
    }
)


@dataclass(frozen=True)
class Config:
    """One run's validated configuration (JSON-safe through `as_dict`)."""

    database_kind: str  # "instance" or "cluster"
    database_id: str
    source: str
    snapshot_identifier: str | None
    snapshot_prefix: str
    s3_prefix: str
    export_only: list[str]
    keep_snapshots: int | None
    dry_run: bool
    pipeline_name: str
    poll: dict[str, int]
    snapshot_timeout_seconds: int
    export_timeout_seconds: int
    skipped_tables_policy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_type(key: str, value: Any, expected: type, label: str) -> None:
    # bool is an int in Python; an input of `true` is never a valid number
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise InvalidInput(f"{key} must be {label}, got {type(value).__name__}: {value!r}")


def check_s3_prefix(key: str, value: Any) -> str:
    """A safe, normalised S3 prefix (no leading or trailing `/`). Raises InvalidInput."""
    _check_type(key, value, str, "a string")
    text: str = value
    prefix = text.rstrip("/") if text.endswith("/") and len(text) > 1 else text
    if not prefix or prefix in {"/", ".", ".."}:
        raise InvalidInput(f"{key} must not be empty, '/', '.' or '..' (got {value!r})")
    if prefix.startswith("/"):
        raise InvalidInput(f"{key} must not start with '/' (got {value!r})")
    if _S3_PREFIX_FORBIDDEN.search(prefix):
        raise InvalidInput(
            f"{key} must not contain ':', spaces, quotes, backslashes or control characters "
            f"(got {value!r})"
        )
    if any(part in {"", ".", ".."} for part in prefix.split("/")):
        raise InvalidInput(f"{key} must not contain empty, '.' or '..' segments (got {value!r})")
    if len(prefix) > S3_PREFIX_MAX:
        raise InvalidInput(f"{key} is longer than {S3_PREFIX_MAX} characters")
    return prefix


def _check_identifier(key: str, value: Any, kind: str) -> str:
    _check_type(key, value, str, "a string")
    if not naming.is_rds_identifier(value, kind):
        raise InvalidInput(
            f"{key} {value!r} is not a valid RDS {kind} identifier: 1 to "
            f"{naming.RDS_ID_MAX[kind]} letters, digits or single hyphens, starting with a "
            "letter and not ending with a hyphen"
        )
    return str(value)


def _check_snapshot_identifier(key: str, value: Any) -> str:
    _check_type(key, value, str, "a string")
    # automated snapshots are named `rds:<db>-<date>`; the part after `rds:` follows the rules
    bare = value.removeprefix("rds:")
    if not naming.is_rds_identifier(bare, "snapshot"):
        raise InvalidInput(f"{key} {value!r} is not a valid RDS snapshot identifier")
    return str(value)


def _check_export_only(key: str, value: Any) -> list[str]:
    _check_type(key, value, list, "a list of strings")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _EXPORT_ONLY_NAME.match(item):
            raise InvalidInput(
                f"{key} entry {item!r} must be 'database', 'database.table', "
                "'database.schema' or 'database.schema.table' (no spaces or '/')"
            )
        names.append(item)
    if len(json.dumps(names).encode()) > EXPORT_ONLY_MAX_BYTES:
        raise InvalidInput(f"{key} is larger than RDS's limit of 200 KB")
    return names


def _check_keep(key: str, value: Any) -> int | None:
    if value is None:
        return None
    _check_type(key, value, int, "a whole number or null")
    if not 0 <= value <= KEEP_SNAPSHOTS_MAX:
        raise InvalidInput(f"{key} must be between 0 and {KEEP_SNAPSHOTS_MAX}, got {value}")
    return int(value)


def _positive_int(settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"stack setting {key} must be a positive whole number, got {value!r}")
    return value


def merge(raw: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Input over defaults. Naming either database key in the input replaces the default
    database entirely, so a default instance does not clash with an input cluster."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"the execution input must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - INPUT_KEYS)
    if unknown:
        raise InvalidInput(
            f"unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(sorted(INPUT_KEYS))}"
        )
    merged = {k: v for k, v in defaults.items() if k in INPUT_KEYS}
    if any(key in raw for key in DATABASE_KEYS):
        for key in DATABASE_KEYS:
            merged.pop(key, None)
    merged.update(raw)
    return merged


def _database(merged: Mapping[str, Any], raw: Mapping[str, Any]) -> tuple[str, str]:
    given = {key: merged.get(key) for key in DATABASE_KEYS if merged.get(key) not in (None, "")}
    if len(given) == 2:
        raise InvalidInput(
            "db_instance_identifier and db_cluster_identifier are both set; give exactly one"
        )
    if not given:
        blank = [key for key in DATABASE_KEYS if key in raw]
        if blank:  # the input named the key but gave no value: say so, not "no default"
            raise InvalidInput(
                f"{blank[0]} must not be empty (got {raw[blank[0]]!r}): name the database, or "
                "leave the key out to use the stack's default"
            )
        raise InvalidInput(
            "db_instance_identifier or db_cluster_identifier is required (no default configured)"
        )
    key, value = next(iter(given.items()))
    kind = "instance" if key == "db_instance_identifier" else "cluster"
    return kind, _check_identifier(key, value, kind)


def _check_allowed(key: str, value: str, allowed: Any, nested: bool) -> None:
    if not allowed:
        return
    ok = any(value == a or (nested and value.startswith(f"{a}/")) for a in allowed)
    if not ok:
        raise InvalidInput(
            f"{key} {value!r} is not one this stack is configured (and permitted) for: "
            f"{', '.join(sorted(allowed))}"
        )


def build_config(raw: Any, defaults: Mapping[str, Any], settings: Mapping[str, Any]) -> Config:
    """Validate `raw` (the execution input) against the stack's defaults and settings."""
    merged = merge(raw, defaults)
    kind, database_id = _database(merged, raw)
    _check_allowed(
        "db_cluster_identifier" if kind == "cluster" else "db_instance_identifier",
        database_id,
        settings.get("allowed_databases"),
        nested=False,
    )

    source = merged.get("source", "new-snapshot")
    _check_type("source", source, str, "a string")
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    snapshot_identifier = merged.get("snapshot_identifier")
    if source == "snapshot":
        if snapshot_identifier in (None, ""):
            raise InvalidInput("snapshot_identifier is required when source is 'snapshot'")
        snapshot_identifier = _check_snapshot_identifier("snapshot_identifier", snapshot_identifier)
    elif snapshot_identifier not in (None, ""):
        raise InvalidInput("snapshot_identifier is only allowed when source is 'snapshot'")
    else:
        snapshot_identifier = None

    if "snapshot_prefix" not in merged:
        raise InvalidInput("snapshot_prefix is required (no default configured)")
    snapshot_prefix = _check_identifier("snapshot_prefix", merged["snapshot_prefix"], "snapshot")
    if len(snapshot_prefix) > SNAPSHOT_PREFIX_MAX:
        raise InvalidInput(f"snapshot_prefix is longer than {SNAPSHOT_PREFIX_MAX} characters")

    if "s3_prefix" not in merged:
        raise InvalidInput("s3_prefix is required (no default configured)")
    s3_prefix = check_s3_prefix("s3_prefix", merged["s3_prefix"])
    _check_allowed("s3_prefix", s3_prefix, settings.get("allowed_s3_prefixes"), nested=True)

    dry_run = merged.get("dry_run", False)
    _check_type("dry_run", dry_run, bool, "true or false")

    poll_min = _positive_int(settings, "poll_min_seconds", 30)
    poll_max = _positive_int(settings, "poll_max_seconds", 300)
    if poll_min > poll_max:
        raise InvalidInput("stack setting poll_min_seconds is larger than poll_max_seconds")
    policy = settings.get("skipped_tables_policy", "warn")
    if policy not in SKIPPED_TABLE_POLICIES:
        raise InvalidInput(f"stack setting skipped_tables_policy must be warn or fail: {policy!r}")
    pipeline_name = settings.get("pipeline_name", "rds-s3-export")
    _check_type("pipeline_name", pipeline_name, str, "a string")

    return Config(
        database_kind=kind,
        database_id=database_id,
        source=source,
        snapshot_identifier=snapshot_identifier,
        snapshot_prefix=snapshot_prefix,
        s3_prefix=s3_prefix,
        export_only=_check_export_only("export_only", merged.get("export_only", [])),
        keep_snapshots=_check_keep("keep_snapshots", merged.get("keep_snapshots")),
        dry_run=dry_run,
        pipeline_name=pipeline_name,
        poll={"min_seconds": poll_min, "max_seconds": poll_max},
        snapshot_timeout_seconds=_positive_int(settings, "snapshot_timeout_seconds", 4 * 3600),
        export_timeout_seconds=_positive_int(settings, "export_timeout_seconds", 12 * 3600),
        skipped_tables_policy=policy,
    )
