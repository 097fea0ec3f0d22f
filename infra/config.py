"""The stack's configuration: CDK context in, one validated, typed object out.

Every value comes from CDK context: `cdk.json` holds the defaults and `-c key=value` overrides
any of them. Values given with `-c` arrive as strings, so each key accepts either its JSON type
or a string spelling of it (`"true"`, `"30"`, `'["a","b"]'`, `"null"`).

A bad value raises `ConfigError` naming the key, so `cdk synth` fails before anything is built.
This module is plain Python (no CDK import): it is unit-tested on its own.
"""

from __future__ import annotations

import difflib
import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

DatabaseKind = Literal["instance", "cluster"]

# The defaults. cdk.json repeats them for readers and for the CLI; a test keeps the two equal.
DEFAULTS: Final[Mapping[str, Any]] = {
    "pipeline_name": "rds-s3-export",
    "db_instance_identifier": "mydb",
    "db_cluster_identifier": "",
    "snapshot_prefix": "mysnapshot",
    "s3_prefix": "exports/mydb",
    "source": "new-snapshot",
    "export_only": [],
    "keep_snapshots": 3,
    "bucket_name": "",
    "kms_key_arn": "",
    "schedule_expression": "cron(0 21 * * ? *)",
    "schedule_timezone": "UTC",
    "schedule_enabled": True,
    "poll_min_seconds": 30,
    "poll_max_seconds": 300,
    "snapshot_timeout_seconds": 14400,
    "export_timeout_seconds": 43200,
    "skipped_tables_policy": "warn",
    "alert_email": "",
    "log_retention_days": 30,
    "snowflake_iam_user_arn": "",
    "snowflake_external_id": "",
    "databases": None,
}
CONTEXT_KEYS: Final[frozenset[str]] = frozenset(DEFAULTS)

# Keys of one entry of the `databases` list.
DATABASE_ENTRY_KEYS: Final[frozenset[str]] = frozenset(
    {
        "db_instance_identifier",
        "db_cluster_identifier",
        "s3_prefix",
        "snapshot_prefix",
        "source",
        "export_only",
        "keep_snapshots",
    }
)

# A schedule can only use sources that need no per-run value (`snapshot` needs
# `snapshot_identifier`, which is given per run in the execution input).
SCHEDULED_SOURCES: Final[tuple[str, ...]] = ("new-snapshot", "latest-automated")
SKIPPED_TABLES_POLICIES: Final[tuple[str, ...]] = ("warn", "fail")
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS: Final[tuple[int, ...]] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# Limits shared with the runtime validation in lambdas/common (kept equal on purpose).
RDS_IDENTIFIER_MAX: Final = 63
SNAPSHOT_PREFIX_MAX: Final = 200
S3_PREFIX_MAX: Final = 512
KEEP_SNAPSHOTS_MAX: Final = 100  # RDS's default quota of manual snapshots per region
KEEP_ALL: Final = ("all", "null")  # keep_snapshots values meaning "keep every snapshot"
EXPORT_ONLY_MAX_BYTES: Final = 200 * 1024  # RDS's limit on ExportOnly
MIN_TIMEOUT_SECONDS: Final = 60

# RDS identifiers as the stack uses them in IAM ARNs: RDS stores them in lower case and IAM
# compares ARNs case-sensitively, so upper case is refused rather than silently lowered.
_RDS_ID = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$")
_PIPELINE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,47}$")
# One S3 prefix segment. Stricter than S3 itself: no `*`, `?` or `$` (they would widen or
# template the IAM resources built from the prefix), nothing RDS rewrites to `_`.
_S3_SEGMENT = re.compile(r"^[A-Za-z0-9._=+-]+$")
_EXPORT_ONLY_NAME = re.compile(r"^[^./\s]+(?:\.[^./\s]+){0,2}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# The IAM user Snowflake shows as STORAGE_AWS_IAM_USER_ARN (DESC INTEGRATION).
_IAM_USER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:user/[\w+=,.@/-]{1,512}$", re.ASCII)
# sts:AssumeRole's ExternalId: 2 to 1224 characters of [\w+=,.@:/-]
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$", re.ASCII)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CRON = re.compile(r"^cron\(\S+(?: \S+){5}\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")
_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")


class ConfigError(ValueError):
    """A context value is missing, of the wrong type, or unsafe. The message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"context key {key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Database:
    """One database the pipeline exports, with its own prefixes and retention."""

    kind: DatabaseKind
    identifier: str
    s3_prefix: str
    snapshot_prefix: str
    source: str
    export_only: tuple[str, ...]
    keep_snapshots: int | None  # None: keep all of the pipeline's snapshots

    @property
    def identifier_key(self) -> str:
        """The execution-input key that names this database."""
        return "db_cluster_identifier" if self.kind == "cluster" else "db_instance_identifier"

    def execution_input(self) -> dict[str, Any]:
        """The complete execution input that exports this database."""
        value: dict[str, Any] = {
            self.identifier_key: self.identifier,
            "source": self.source,
            "snapshot_prefix": self.snapshot_prefix,
            "s3_prefix": self.s3_prefix,
            "export_only": list(self.export_only),
        }
        if self.keep_snapshots is not None:  # absent means keep all (see the input contract)
            value["keep_snapshots"] = self.keep_snapshots
        return value


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the stack is built from."""

    pipeline_name: str
    databases: tuple[Database, ...]
    multi_database: bool  # True when the `databases` list was given
    bucket_name: str | None  # None: the stack creates the bucket
    kms_key_arn: str | None  # None: the stack creates the key
    schedule_expression: str
    schedule_timezone: str
    schedule_enabled: bool
    poll_min_seconds: int
    poll_max_seconds: int
    snapshot_timeout_seconds: int
    export_timeout_seconds: int
    skipped_tables_policy: str
    alert_email: str | None
    log_retention_days: int
    # Snowflake's storage integration: both set (a read-only role is created) or neither
    snowflake_iam_user_arn: str | None = None
    snowflake_external_id: str | None = None

    @property
    def snowflake_role_name(self) -> str:
        """The role a Snowflake storage integration assumes, known before deploying."""
        return f"{self.pipeline_name}-snowflake"

    @property
    def s3_prefixes(self) -> tuple[str, ...]:
        return tuple(db.s3_prefix for db in self.databases)

    @property
    def snapshot_prefixes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(db.snapshot_prefix for db in self.databases))

    @property
    def database_identifiers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(db.identifier for db in self.databases))

    def pipeline_defaults(self) -> dict[str, Any]:
        """PIPELINE_DEFAULTS: the execution input that `{}` stands for.

        With one database, that database's complete input. With a `databases` list there is no
        single default database: each schedule passes its database's complete input, and a run
        started by hand names its database and prefixes.
        """
        if self.multi_database:
            return {}
        return self.databases[0].execution_input()

    def pipeline_settings(self) -> dict[str, Any]:
        """PIPELINE_SETTINGS: limits the validate function enforces on every run."""
        return {
            "pipeline_name": self.pipeline_name,
            "poll_min_seconds": self.poll_min_seconds,
            "poll_max_seconds": self.poll_max_seconds,
            "snapshot_timeout_seconds": self.snapshot_timeout_seconds,
            "export_timeout_seconds": self.export_timeout_seconds,
            "skipped_tables_policy": self.skipped_tables_policy,
            "allowed_s3_prefixes": list(self.s3_prefixes),
            "allowed_databases": list(self.database_identifiers),
        }

    def schedule_input(self, database: Database) -> dict[str, Any]:
        """The input a schedule starts an execution with."""
        return database.execution_input() if self.multi_database else {}


# --- reading one value --------------------------------------------------------------------


def _decode(key: str, value: Any, expected: Literal["bool", "int", "json"]) -> Any:
    """A `-c` string spelling of a JSON value, decoded; any other value unchanged.

    `bool`: "true"/"false"; `int`: digits; `json`: any JSON text (lists, objects, null,
    numbers). An empty string, or text that does not look like the expected type, is returned
    as it is, for the caller to refuse with a message naming the key.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if expected == "bool" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if expected == "int" and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if expected == "json" and text:
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(key, f"is not valid JSON ({err.msg}): {value!r}") from err
    return value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {_type_name(value)}: {value!r}")
    return value.strip()


def _integer(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    value = _decode(key, value, "int")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be a whole number, got {_type_name(value)}: {value!r}")
    if value < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(key, f"must be at most {maximum}, got {value}")
    return value


def _boolean(key: str, value: Any) -> bool:
    value = _decode(key, value, "bool")
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {_type_name(value)}: {value!r}")
    return value


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    text = _string(key, value)
    if text not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}, got {text!r}")
    return text


def _optional(key: str, value: Any, pattern: re.Pattern[str], what: str) -> str | None:
    """An optional string: "" (or null) means not set."""
    if value is None:
        return None
    text = _string(key, value)
    if not text:
        return None
    if not pattern.match(text):
        raise ConfigError(key, f"{text!r} is not {what}")
    return text


# --- the domain rules ---------------------------------------------------------------------


def rds_identifier(key: str, value: Any, *, maximum: int = RDS_IDENTIFIER_MAX) -> str:
    text = _string(key, value)
    if not 0 < len(text) <= maximum or not _RDS_ID.match(text):
        raise ConfigError(
            key,
            f"{text!r} is not a valid RDS identifier: 1 to {maximum} lower-case letters, digits "
            "or single hyphens, starting with a letter and not ending with a hyphen",
        )
    return text


def s3_prefix(key: str, value: Any) -> str:
    """A safe S3 prefix. A trailing `/` is dropped (as the pipeline's own validation does)."""
    text = _string(key, value)
    prefix = text.rstrip("/") if len(text) > 1 else text
    if prefix in ("", "/", ".", ".."):
        raise ConfigError(key, f"must not be empty, '/', '.' or '..' (got {text!r})")
    if prefix.startswith("/"):
        raise ConfigError(key, f"must not start with '/' (got {text!r})")
    if ":" in prefix:
        raise ConfigError(key, f"must not contain ':' (RDS refuses it) (got {text!r})")
    segments = prefix.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise ConfigError(key, f"must not contain empty, '.' or '..' segments (got {text!r})")
    if not all(_S3_SEGMENT.match(segment) for segment in segments):
        raise ConfigError(
            key,
            f"may contain only letters, digits and . _ = + - between single '/' (got {text!r})",
        )
    if len(prefix) > S3_PREFIX_MAX:
        raise ConfigError(key, f"is longer than {S3_PREFIX_MAX} characters")
    return prefix


def export_only(key: str, value: Any) -> tuple[str, ...]:
    value = _decode(key, value, "json")
    if value is None or value == "":
        return ()
    if not isinstance(value, list):
        raise ConfigError(key, f"must be a list of strings, got {_type_name(value)}: {value!r}")
    for item in value:
        if not isinstance(item, str) or not _EXPORT_ONLY_NAME.match(item):
            raise ConfigError(
                key,
                f"entry {item!r} must be 'database', 'database.table', 'database.schema' or "
                "'database.schema.table' (no spaces or '/')",
            )
    if len(json.dumps(value).encode()) > EXPORT_ONLY_MAX_BYTES:
        raise ConfigError(key, "is larger than RDS's limit of 200 KB")
    return tuple(value)


def keep_snapshots(key: str, value: Any) -> int | None:
    """How many of the pipeline's snapshots to keep; "all" (or null) keeps all of them.

    CDK context drops null values on their way through jsii, so a null written in cdk.json
    would silently become the default: "all" is the spelling that survives (`-c
    keep_snapshots=null` arrives as the string "null" and works too).
    """
    if isinstance(value, str) and value.strip().lower() in KEEP_ALL:
        return None
    value = _decode(key, value, "int")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            key,
            f'must be a whole number from 0 to {KEEP_SNAPSHOTS_MAX}, or "all" to keep all '
            f"(got {_type_name(value)}: {value!r})",
        )
    return _integer(key, value, 0, KEEP_SNAPSHOTS_MAX)


def schedule_expression(key: str, value: Any) -> str:
    text = _string(key, value)
    rate = _RATE.match(text)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1 or (amount == 1) == unit.endswith("s"):
            raise ConfigError(
                key,
                f"{text!r}: a rate needs a positive number and a singular unit for 1 "
                "(rate(1 day)), plural otherwise (rate(2 days))",
            )
        return text
    if _CRON.match(text) or _AT.match(text):
        return text
    raise ConfigError(
        key,
        f"{text!r} is not an EventBridge Scheduler expression: cron(<6 fields>), "
        "rate(<n> <unit>) or at(yyyy-mm-ddThh:mm:ss)",
    )


def timezone(key: str, value: Any) -> str:
    text = _string(key, value)
    known = zoneinfo.available_timezones()
    if not _TIMEZONE.match(text) or (known and text not in known and text != "UTC"):
        raise ConfigError(key, f"{text!r} is not an IANA time zone name such as Europe/Berlin")
    return text


def _database_pair(key_prefix: str, entry: Mapping[str, Any]) -> tuple[DatabaseKind, str]:
    instance = entry.get("db_instance_identifier") or ""
    cluster = entry.get("db_cluster_identifier") or ""
    if instance and cluster:
        raise ConfigError(
            f"{key_prefix}db_instance_identifier",
            f"and {key_prefix}db_cluster_identifier are both set: give exactly one",
        )
    if not instance and not cluster:
        raise ConfigError(
            f"{key_prefix}db_instance_identifier",
            f"or {key_prefix}db_cluster_identifier is required: give exactly one",
        )
    if cluster:
        return "cluster", rds_identifier(f"{key_prefix}db_cluster_identifier", cluster)
    return "instance", rds_identifier(f"{key_prefix}db_instance_identifier", instance)


def _database(key_prefix: str, entry: Mapping[str, Any], inherited: Mapping[str, Any]) -> Database:
    """One database from `entry`; keys it does not give come from `inherited`."""

    def pick(name: str) -> tuple[str, Any]:
        return f"{key_prefix}{name}", entry[name] if name in entry else inherited[name]

    kind, identifier = _database_pair(key_prefix, entry)
    return Database(
        kind=kind,
        identifier=identifier,
        s3_prefix=s3_prefix(*pick("s3_prefix")),
        snapshot_prefix=rds_identifier(*pick("snapshot_prefix"), maximum=SNAPSHOT_PREFIX_MAX),
        source=_choice(*pick("source"), SCHEDULED_SOURCES),
        export_only=export_only(*pick("export_only")),
        keep_snapshots=keep_snapshots(*pick("keep_snapshots")),
    )


def _database_list(value: Any, inherited: Mapping[str, Any]) -> tuple[Database, ...]:
    value = _decode("databases", value, "json")
    if not isinstance(value, list) or not value:
        raise ConfigError("databases", f"must be a non-empty list of objects, got {value!r}")
    databases: list[Database] = []
    for index, entry in enumerate(value):
        where = f"databases[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, f"must be an object, got {_type_name(entry)}: {entry!r}")
        unknown = sorted(set(entry) - DATABASE_ENTRY_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}",
                "is not a key of a database entry; allowed: "
                + ", ".join(sorted(DATABASE_ENTRY_KEYS)),
            )
        if "s3_prefix" not in entry:
            raise ConfigError(f"{where}.s3_prefix", "is required: each database needs its own")
        databases.append(_database(f"{where}.", entry, inherited))
    _check_no_overlap(databases)
    return tuple(databases)


def _check_no_overlap(databases: Sequence[Database]) -> None:
    """Two databases must not share (or nest) an S3 prefix or a snapshot prefix: one's purge
    would delete the other's exports, one's retention would count the other's snapshots."""
    for i, first in enumerate(databases):
        for j in range(i + 1, len(databases)):
            second = databases[j]
            a, b = first.s3_prefix, second.s3_prefix
            if a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/"):
                raise ConfigError(
                    f"databases[{j}].s3_prefix",
                    f"{b!r} overlaps databases[{i}].s3_prefix {a!r}: the purge of one would "
                    "delete the other's exports",
                )
            a, b = first.snapshot_prefix, second.snapshot_prefix
            if a == b or a.startswith(f"{b}-") or b.startswith(f"{a}-"):
                raise ConfigError(
                    f"databases[{j}].snapshot_prefix",
                    f"{b!r} overlaps databases[{i}].snapshot_prefix {a!r}: give each database "
                    "its own snapshot prefix",
                )


def _check_known_keys(context: Mapping[str, Any]) -> None:
    """A misspelt key would silently fall back to its default: refuse it instead.

    Only plain snake_case keys are checked; CDK's own context (feature flags such as
    `@aws-cdk/...`, `aws:cdk:...`, lookup caches) always contains `@`, `:` or `/`.
    """
    for key in context:
        if re.fullmatch(r"[a-z][a-z0-9_]*", key) and key not in CONTEXT_KEYS:
            close = difflib.get_close_matches(key, sorted(CONTEXT_KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(key, f"is not a context key of this stack{hint}")


def load_config(context: Mapping[str, Any]) -> PipelineConfig:
    """Validate the CDK context (defaults filled in from DEFAULTS) into a PipelineConfig."""
    _check_known_keys(context)
    raw = {key: context.get(key, default) for key, default in DEFAULTS.items()}

    pipeline_name = _string("pipeline_name", raw["pipeline_name"])
    if not _PIPELINE_NAME.match(pipeline_name):
        raise ConfigError(
            "pipeline_name",
            f"{pipeline_name!r} must start with a letter and have at most 48 letters, digits or "
            "hyphens (it names the stack, the state machine and the schedule group)",
        )

    databases_value = _decode("databases", raw["databases"], "json")
    multi = databases_value not in (None, [], "")
    databases = _database_list(databases_value, raw) if multi else (_database("", raw, raw),)

    poll_min = _integer("poll_min_seconds", raw["poll_min_seconds"], 1)
    poll_max = _integer("poll_max_seconds", raw["poll_max_seconds"], 1)
    if poll_min > poll_max:
        raise ConfigError(
            "poll_min_seconds", f"({poll_min}) is larger than poll_max_seconds ({poll_max})"
        )

    return PipelineConfig(
        pipeline_name=pipeline_name,
        databases=databases,
        multi_database=multi,
        bucket_name=_optional("bucket_name", raw["bucket_name"], _BUCKET_NAME, "an S3 bucket name"),
        kms_key_arn=_optional(
            "kms_key_arn",
            raw["kms_key_arn"],
            _KMS_KEY_ARN,
            "a KMS key ARN (arn:aws:kms:...:key/...)",
        ),
        schedule_expression=schedule_expression("schedule_expression", raw["schedule_expression"]),
        schedule_timezone=timezone("schedule_timezone", raw["schedule_timezone"]),
        schedule_enabled=_boolean("schedule_enabled", raw["schedule_enabled"]),
        poll_min_seconds=poll_min,
        poll_max_seconds=poll_max,
        snapshot_timeout_seconds=_integer(
            "snapshot_timeout_seconds", raw["snapshot_timeout_seconds"], MIN_TIMEOUT_SECONDS
        ),
        export_timeout_seconds=_integer(
            "export_timeout_seconds", raw["export_timeout_seconds"], MIN_TIMEOUT_SECONDS
        ),
        skipped_tables_policy=_choice(
            "skipped_tables_policy", raw["skipped_tables_policy"], SKIPPED_TABLES_POLICIES
        ),
        alert_email=_optional("alert_email", raw["alert_email"], _EMAIL, "an e-mail address"),
        log_retention_days=_retention(raw["log_retention_days"]),
        **_snowflake(raw),
    )


def _snowflake(raw: Mapping[str, Any]) -> dict[str, str | None]:
    """Both Snowflake keys, or neither: one without the other is a half-made trust."""
    user = _optional(
        "snowflake_iam_user_arn",
        raw["snowflake_iam_user_arn"],
        _IAM_USER_ARN,
        "an IAM user ARN (arn:aws:iam::<account>:user/<name>, STORAGE_AWS_IAM_USER_ARN of "
        "DESC INTEGRATION)",
    )
    external_id = _optional(
        "snowflake_external_id",
        raw["snowflake_external_id"],
        _EXTERNAL_ID,
        "an external id: 2 to 1224 letters, digits or + = , . @ : / - _ "
        "(STORAGE_AWS_EXTERNAL_ID of DESC INTEGRATION)",
    )
    if user and not external_id:
        raise ConfigError(
            "snowflake_external_id",
            "is required when snowflake_iam_user_arn is set (STORAGE_AWS_EXTERNAL_ID of DESC "
            "INTEGRATION): give both, or neither",
        )
    if external_id and not user:
        raise ConfigError(
            "snowflake_iam_user_arn",
            "is required when snowflake_external_id is set (STORAGE_AWS_IAM_USER_ARN of DESC "
            "INTEGRATION): give both, or neither",
        )
    return {"snowflake_iam_user_arn": user, "snowflake_external_id": external_id}


def _retention(value: Any) -> int:
    days = _integer("log_retention_days", value, 1)
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError(
            "log_retention_days",
            f"{days} is not a retention CloudWatch Logs offers: "
            f"{', '.join(str(d) for d in LOG_RETENTION_DAYS)}",
        )
    return days
