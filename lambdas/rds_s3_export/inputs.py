"""The execution input: defaults merged in, every key validated, one typed result.

An input of `{}` is valid: every key falls back to the stack's default. A given key overrides
its default. Unknown keys, wrong types and unsafe values raise `InvalidInput` naming the key,
before anything is created.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, TypeVar, cast

from rds_s3_export import rules
from rds_s3_export.errors import InvalidInput

T = TypeVar("T")

# Where stack settings are absent (a function invoked outside the stack), these apply.
_DEFAULT_SETTINGS = {k: rules.DEFAULTS[k] for k in rules.SETTING_KEYS if k in rules.DEFAULTS}


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
    keep_snapshots: int | str  # a number, or rules.KEEP_ALL
    dry_run: bool
    pipeline_name: str
    poll: dict[str, int]
    snapshot_timeout_seconds: int
    export_timeout_seconds: int
    skipped_tables_policy: str
    # the snapshot's ARN when the run was given one (an event's), checked against the snapshot
    # found by its id: an ARN of another account or region never matches
    snapshot_arn: str | None = None
    trigger: str = "manual"  # one of rules.TRIGGERS
    # source backup: the stack's vault (the backup_vault setting)
    backup_vault: str | None = None
    # the notify_success setting: a successful run publishes a summary to the alert topic
    notify_success: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(key: str, check: Callable[[], T]) -> T:
    """Run one rule; its RuleError becomes InvalidInput naming the input key."""
    try:
        return check()
    except rules.RuleError as err:
        raise InvalidInput(f"{key} {err}") from err


def check_s3_prefix(key: str, value: Any) -> str:
    """A safe, normalised S3 prefix (no trailing `/`). Raises InvalidInput."""
    return _check(key, lambda: rules.s3_prefix(value))


def merge(raw: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Input over defaults. Naming either database key in the input replaces the default
    database entirely, so a default instance does not clash with an input cluster."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"the execution input must be a JSON object such as {{}}, got {_json_type(raw)}: "
            f"{json.dumps(raw)[:100]}"
        )
    unknown = sorted(set(raw) - rules.INPUT_KEYS)
    if unknown:
        raise InvalidInput(
            f"unknown key(s) {', '.join(unknown)}; allowed keys: "
            f"{', '.join(sorted(rules.INPUT_KEYS))}"
        )
    merged = {k: v for k, v in defaults.items() if k in rules.INPUT_KEYS}
    if any(key in raw for key in rules.DATABASE_KEYS):
        for key in rules.DATABASE_KEYS:
            merged.pop(key, None)
    merged.update(raw)
    return merged


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _database(merged: Mapping[str, Any], raw: Mapping[str, Any]) -> tuple[rules.DatabaseKind, str]:
    given = {k: merged.get(k) for k in rules.DATABASE_KEYS if merged.get(k) not in (None, "")}
    if len(given) == 2:
        raise InvalidInput(
            "db_instance_identifier and db_cluster_identifier are both set; give exactly one"
        )
    if not given:
        blank = [key for key in rules.DATABASE_KEYS if key in raw]
        if blank:  # the input named the key but gave no value: say so, not "no default"
            raise InvalidInput(
                f"{blank[0]} must not be empty (got {raw[blank[0]]!r}): name the database, or "
                "leave the key out to use the stack's default"
            )
        raise InvalidInput(
            "db_instance_identifier or db_cluster_identifier is required (no default configured)"
        )
    key, value = next(iter(given.items()))
    kind: rules.DatabaseKind = "instance" if key == "db_instance_identifier" else "cluster"
    return kind, _check(key, lambda: rules.database_identifier(value, kind))


def _configured(databases: Any, kind: str, database_id: str) -> Mapping[str, Any] | None:
    """The configured database the run names; InvalidInput if it names another. None when the
    stack configures no list (a function invoked outside the stack)."""
    if not databases:
        return None
    entry = next((d for d in databases if d["kind"] == kind and d["id"] == database_id), None)
    if entry is None:
        key = "db_cluster_identifier" if kind == "cluster" else "db_instance_identifier"
        configured = ", ".join(f"{d['kind']} {d['id']}" for d in databases)
        raise InvalidInput(
            f"{key} {database_id!r} is not a database this stack is configured for: {configured}"
        )
    return cast(Mapping[str, Any], entry)


def _same_set(entry: Mapping[str, Any], config_values: Mapping[str, str]) -> None:
    """A run's S3 prefix and snapshot prefix are its database's own: a run started by hand
    cannot export database A into database B's prefix (and then purge B's exports), nor into
    a folder below A's prefix (a stage on the prefix would then load two exports)."""
    for name, value in config_values.items():
        if value != entry[name]:
            raise InvalidInput(
                f"{name} {value!r} is not the one configured for {entry['kind']} {entry['id']} "
                f"({entry[name]!r}): each database is exported only with its own prefixes"
            )


def build_config(raw: Any, defaults: Mapping[str, Any], settings: Mapping[str, Any]) -> Config:
    """Validate `raw` (the execution input) against the stack's defaults and settings."""
    merged = merge(raw, defaults)
    stack = {**_DEFAULT_SETTINGS, **settings}
    kind, database_id = _database(merged, raw)
    entry = _configured(stack.get("databases"), kind, database_id)
    if entry is not None:  # what the input does not say comes from its database's configuration
        for key in ("source", "snapshot_prefix", "s3_prefix", "export_only", "keep_snapshots"):
            if key not in raw and key in entry:
                merged[key] = entry[key]

    source = _check(
        "source",
        lambda: rules.choice(merged.get("source", rules.DEFAULTS["source"]), rules.SOURCES),
    )
    snapshot_identifier, snapshot_arn = _named_snapshot(merged, source, kind)
    backup_vault = stack.get("backup_vault") or None
    if source == "backup" and not backup_vault:
        raise InvalidInput(
            "source 'backup' needs the stack's AWS Backup vault: deploy with "
            "-c backup_vault=<vault name>"
        )
    trigger = _check(
        "trigger", lambda: rules.choice(merged.get("trigger", "manual"), rules.TRIGGERS)
    )

    for required in ("snapshot_prefix", "s3_prefix"):
        if required not in merged:
            raise InvalidInput(f"{required} is required (no default configured)")
    snapshot_prefix = _check(
        "snapshot_prefix", lambda: rules.snapshot_prefix(merged["snapshot_prefix"], kind)
    )
    s3_prefix = check_s3_prefix("s3_prefix", merged["s3_prefix"])
    export_only = _check(
        "export_only",
        lambda: rules.export_only(merged.get("export_only", rules.DEFAULTS["export_only"])),
    )
    if entry is not None:
        _same_set(entry, {"s3_prefix": s3_prefix, "snapshot_prefix": snapshot_prefix})
    if (
        entry is not None
        and sorted(export_only) != sorted(entry["export_only"])
        and not stack.get("allow_export_only_override")
    ):
        raise InvalidInput(
            f"export_only {export_only} differs from the one configured for {kind} "
            f"{database_id} ({entry['export_only']}): the prefix would then hold other "
            "tables than its consumers expect (the stack's allow_export_only_override permits it)"
        )

    dry_run = merged.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput(f"dry_run must be true or false, got {dry_run!r}")

    def setting(key: str, check: Callable[[], T]) -> T:
        try:
            return check()
        except rules.RuleError as err:
            raise InvalidInput(f"stack setting {key} {err}") from err

    poll_min = setting("poll_min_seconds", lambda: rules.whole_number(stack["poll_min_seconds"], 1))
    poll_max = setting("poll_max_seconds", lambda: rules.whole_number(stack["poll_max_seconds"], 1))
    if poll_min > poll_max:
        raise InvalidInput("stack setting poll_min_seconds is larger than poll_max_seconds")
    timeouts = {
        key: setting(key, partial(rules.whole_number, stack[key], rules.MIN_TIMEOUT_SECONDS))
        for key in ("snapshot_timeout_seconds", "export_timeout_seconds")
    }
    return Config(
        database_kind=kind,
        database_id=database_id,
        source=source,
        snapshot_identifier=snapshot_identifier,
        snapshot_prefix=snapshot_prefix,
        s3_prefix=s3_prefix,
        export_only=export_only,
        keep_snapshots=_check(
            "keep_snapshots",
            lambda: rules.keep_snapshots(
                merged.get("keep_snapshots", rules.DEFAULTS["keep_snapshots"])
            ),
        ),
        dry_run=dry_run,
        pipeline_name=setting("pipeline_name", lambda: str(stack["pipeline_name"])),
        poll={"min_seconds": poll_min, "max_seconds": poll_max},
        snapshot_timeout_seconds=timeouts["snapshot_timeout_seconds"],
        export_timeout_seconds=timeouts["export_timeout_seconds"],
        skipped_tables_policy=setting(
            "skipped_tables_policy",
            lambda: rules.choice(stack["skipped_tables_policy"], rules.SKIPPED_TABLES_POLICIES),
        ),
        snapshot_arn=snapshot_arn,
        trigger=trigger,
        backup_vault=backup_vault if source == "backup" else None,
        notify_success=stack.get("notify_success") is True,
    )


def _named_snapshot(
    merged: Mapping[str, Any], source: str, kind: rules.DatabaseKind
) -> tuple[str | None, str | None]:
    """(snapshot id, snapshot ARN or None) of `source: snapshot`, named by exactly one of
    snapshot_identifier and snapshot_arn; of `source: backup`, the recovery point ARN if one
    is given (an RDS or Aurora recovery point's ARN is its snapshot's); else (None, None)."""
    point = merged.get("recovery_point_arn")
    if point not in (None, "") and source != "backup":
        raise InvalidInput("recovery_point_arn is only allowed when source is 'backup'")
    given = {k: merged.get(k) for k in ("snapshot_identifier", "snapshot_arn")}
    given = {k: v for k, v in given.items() if v not in (None, "")}
    if source == "backup" and not given:
        if point in (None, ""):
            return None, None  # the newest completed recovery point in the vault
        arn, ident = _check("recovery_point_arn", lambda: rules.snapshot_arn(point, kind))
        return ident, arn
    if source != "snapshot":
        if given:
            verb = "is" if len(given) == 1 else "are"
            raise InvalidInput(
                f"{' and '.join(given)} {verb} only allowed when source is 'snapshot'"
            )
        return None, None
    if not given:
        raise InvalidInput(
            "snapshot_identifier (or snapshot_arn) is required when source is 'snapshot'"
        )
    if len(given) == 2:
        raise InvalidInput("snapshot_identifier and snapshot_arn are both set; give exactly one")
    if "snapshot_arn" in given:
        arn, ident = _check("snapshot_arn", lambda: rules.snapshot_arn(given["snapshot_arn"], kind))
        return ident, arn
    ident = _check(
        "snapshot_identifier",
        lambda: rules.snapshot_identifier(given["snapshot_identifier"], kind),
    )
    return ident, None
