"""The stack's configuration: CDK context in, one validated, typed object out.

Every value comes from CDK context: `cdk.json` holds the defaults and `-c key=value` overrides
any of them. Values given with `-c` arrive as strings, so each key accepts either its JSON type
or a string spelling of it (`"true"`, `"30"`, `'["a","b"]'`, `"null"`).

A bad value raises `ConfigError` naming the key, so `cdk synth` fails before anything is built.
This module is plain Python (no CDK import): it is unit-tested on its own.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from rds_s3_export import rules

# Every function's memory (MB): the handlers wait on AWS APIs and hold little in memory.
# The bench prices a run with it; it is here, not beside the constructs, so that pricing
# needs no CDK.
MEMORY_MB: Final = 256

T = TypeVar("T")

DatabaseKind = rules.DatabaseKind

# Every key's default lives in rules.DEFAULTS; cdk.json holds only the user's choices.
DEFAULTS: Final[Mapping[str, Any]] = rules.DEFAULTS
CONTEXT_KEYS: Final[frozenset[str]] = frozenset(DEFAULTS)
DATABASE_ENTRY_KEYS: Final[frozenset[str]] = rules.DATABASE_ENTRY_KEYS

# The values CloudWatch Logs accepts for a log group's retention:
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS: Final[tuple[int, ...]] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_PIPELINE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,47}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# The IAM user Snowflake shows as STORAGE_AWS_IAM_USER_ARN (DESC INTEGRATION).
# the queue DESC STAGE shows as directory_notification_channel (Snowflake's own SQS queue)
# https://docs.snowflake.com/en/user-guide/data-load-dirtables-auto-s3
# an SQS ARN: arn:<partition>:sqs:<region>:<account>:<queue name of 1 to 80 characters>
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
_SQS_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[\w-]{1,80}$", re.ASCII)
_IAM_USER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:user/[\w+=,.@/-]{1,512}$", re.ASCII)
# sts:AssumeRole's ExternalId: 2 to 1224 characters of [\w+=,.@:/-]
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$", re.ASCII)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CRON = re.compile(r"^cron\(\S+(?: \S+){5}\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")
_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")
# A backup vault's name: 2 to 50 letters, digits, hyphens and underscores (BackupVaultName of
# https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CreateBackupVault.html)
_BACKUP_VAULT = re.compile(r"^[A-Za-z0-9_-]{2,50}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$", re.ASCII)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$", re.ASCII)

# Cross-account delivery (infra/data_stack.py). The pipeline's account and region come from the
# CDK environment the CLI sets from the profile (`cdk deploy --profile ...`): CDK_DEFAULT_ACCOUNT
# and CDK_DEFAULT_REGION (https://docs.aws.amazon.com/cdk/v2/guide/environments.html).
ENV_ACCOUNT = "CDK_DEFAULT_ACCOUNT"
ENV_REGION = "CDK_DEFAULT_REGION"
# RDS exports a snapshot only to a bucket in the snapshot's own region:
EXPORT_REGION_DOC = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html"
)
# IAM role names are at most 64 characters:
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
ROLE_NAME_MAX = 64
# S3 bucket names: 3 to 63 characters, lower-case letters, digits, hyphens and dots:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BUCKET_NAME_MAX = 63
# The roles of the pipeline account that the data account's bucket and key policies name, by
# purpose (the function's step module, or the export role): `<pipeline_name>-<suffix>`. Only
# the roles that touch the bucket or the key; the others keep CloudFormation's generated names.
CROSS_ACCOUNT_ROLES: Final[Mapping[str, str]] = {
    "export_role": "rds-export",
    "validate_input": "validate-input",
    "create_snapshot": "create-snapshot",
    "start_export": "start-export",
    "purge_prefix": "purge-prefix",
    "discard_failed_export": "discard-export",
    "publish_manifest": "publish-manifest",
}


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
    keep_snapshots: int | str  # a number, or rules.KEEP_ALL

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
            "keep_snapshots": self.keep_snapshots,
        }
        return value

    def settings_entry(self) -> dict[str, Any]:
        """This database in PIPELINE_SETTINGS: the validate step keeps a run inside its set
        and fills in what a run started by hand does not say."""
        run = self.execution_input()
        del run[self.identifier_key]
        return {"kind": self.kind, "id": self.identifier, **run}


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
    allow_export_only_override: bool
    # Snowflake's storage integration: both set (a read-only role is created) or neither
    snowflake_iam_user_arn: str | None = None
    snowflake_external_id: str | None = None
    # the stage's notification channel: the bucket notifies it when a manifest is written
    snowflake_stage_sqs_arn: str | None = None
    # Event triggers (infra/triggers.py), off by default
    snapshot_events: bool = False
    snapshot_events_manual: bool = False
    backup_vault: str | None = None
    # a successful run publishes a one-line summary to the alert topic
    notify_success: bool = False
    # The Glue database of the catalog (rds_s3_export.catalog): None, no catalog
    glue_database: str | None = None
    # Cross-account delivery: the data stack's account (None: one stack, one account, as
    # before), and the pipeline's own account and region, explicit in that mode only
    data_account_id: str | None = None
    account: str | None = None
    region: str | None = None

    @property
    def cross_account(self) -> bool:
        return self.data_account_id is not None

    def role_names(self) -> dict[str, str]:
        """purpose -> IAM role name of each pipeline role the data account's policies name
        ({} without data_account_id: the roles keep their generated names)."""
        if not self.cross_account:
            return {}
        return {
            purpose: f"{self.pipeline_name}-{suffix}"
            for purpose, suffix in CROSS_ACCOUNT_ROLES.items()
        }

    def role_arns(self) -> dict[str, str]:
        """purpose -> ARN of each role of `role_names` in the pipeline's account."""
        return {
            purpose: f"arn:aws:iam::{self.account}:role/{name}"
            for purpose, name in self.role_names().items()
        }

    @property
    def data_bucket_name(self) -> str:
        """The bucket the data stack creates (see `_data_bucket_name`)."""
        return _data_bucket_name(self.pipeline_name, str(self.data_account_id), str(self.region))

    @property
    def export_key_alias(self) -> str:
        """The alias of the export key the stack creates (the data stack's, cross-account)."""
        return f"alias/{self.pipeline_name}-export"

    @property
    def data_key_alias_arn(self) -> str:
        """What the pipeline names the data stack's key by before it exists: StartExportTask's
        KmsKeyId accepts an alias ARN
        (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_StartExportTask.html)."""
        return f"arn:aws:kms:{self.region}:{self.data_account_id}:{self.export_key_alias}"

    @property
    def data_stack_name(self) -> str:
        """`<pipeline_name>-data-<pipeline account>`: a second database account's pipeline of
        the same name never updates (and so never overwrites the grants of) this one."""
        return f"{self.pipeline_name}-data-{self.account}"

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
            "databases": [db.settings_entry() for db in self.databases],
            "allow_export_only_override": self.allow_export_only_override,
            # only when set: without the event keys, the functions' environment is unchanged
            **({"backup_vault": self.backup_vault} if self.backup_vault else {}),
            **({"notify_success": True} if self.notify_success else {}),
        }

    def function_environments(
        self, bucket: str, export_role_arn: str, key_arn: str
    ) -> dict[str, dict[str, str]]:
        """Each step's environment variables (docs/contracts.md), by step module. The stack
        passes its resources' names; the local sandbox passes its own through this same code."""
        return {
            "validate_input": {
                "PIPELINE_DEFAULTS": json.dumps(self.pipeline_defaults(), sort_keys=True),
                "PIPELINE_SETTINGS": json.dumps(self.pipeline_settings(), sort_keys=True),
                "EXPORT_BUCKET": bucket,
            },
            "start_export": {
                "EXPORT_BUCKET": bucket,
                "EXPORT_ROLE_ARN": export_role_arn,
                "EXPORT_KMS_KEY_ARN": key_arn,
            },
            # reads <prefix>/_manifest.json: is the run's snapshot already exported?
            "create_snapshot": {"EXPORT_BUCKET": bucket},
            # with a catalog, the purge keeps every folder its tables still point at
            "purge_prefix": {"EXPORT_BUCKET": bucket, **self._catalog_environment()},
            "discard_failed_export": {"EXPORT_BUCKET": bucket},
            "publish_manifest": {"EXPORT_BUCKET": bucket, "EXPORT_KMS_KEY_ARN": key_arn},
            # the catalog: without glue_database the step answers "not-configured" at once
            "update_catalog": {"EXPORT_BUCKET": bucket, **self._catalog_environment()},
        }

    def _catalog_environment(self) -> dict[str, str]:
        """GLUE_DATABASE (and the pipeline's name, which marks its tables), only when set."""
        if not self.glue_database:
            return {}
        return {"GLUE_DATABASE": self.glue_database, "PIPELINE_NAME": self.pipeline_name}

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


def _rule(key: str, check: Callable[[], T]) -> T:
    """Run one rule of rds_s3_export.rules; its RuleError becomes ConfigError naming the key."""
    try:
        return check()
    except rules.RuleError as err:
        raise ConfigError(key, str(err)) from err


def s3_prefix(key: str, value: Any) -> str:
    """A safe S3 prefix (rules.s3_prefix: the same check the validate step makes)."""
    return _rule(key, lambda: rules.s3_prefix(value))


def export_only(key: str, value: Any) -> tuple[str, ...]:
    value = _decode(key, value, "json")
    return tuple(_rule(key, lambda: rules.export_only([] if value == "" else value)))


def keep_snapshots(key: str, value: Any) -> int | str:
    """How many of the pipeline's snapshots to keep, or "all" (rules.KEEP_ALL).

    CDK context drops null values on their way through jsii, so "all" is the one spelling of
    keeping every snapshot (see infra/application.py, which refuses a null).
    """
    if isinstance(value, str) and value.strip() == rules.KEEP_ALL:
        return rules.KEEP_ALL
    return _rule(key, lambda: rules.keep_snapshots(_decode(key, value, "int")))


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


@functools.cache
def _known_timezones() -> frozenset[str]:
    """The zone names this machine's tz database knows (read once: it walks the database's
    files, and the configuration is loaded many times in one process)."""
    return frozenset(zoneinfo.available_timezones())


def timezone(key: str, value: Any) -> str:
    text = _string(key, value)
    known = _known_timezones()
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
        key = f"{key_prefix}db_cluster_identifier"
        return "cluster", _rule(key, lambda: rules.database_identifier(cluster, "cluster"))
    key = f"{key_prefix}db_instance_identifier"
    return "instance", _rule(key, lambda: rules.database_identifier(instance, "instance"))


def _database(key_prefix: str, entry: Mapping[str, Any], inherited: Mapping[str, Any]) -> Database:
    """One database from `entry`; keys it does not give come from `inherited`."""

    def pick(name: str) -> tuple[str, Any]:
        return f"{key_prefix}{name}", entry[name] if name in entry else inherited[name]

    kind, identifier = _database_pair(key_prefix, entry)
    return Database(
        kind=kind,
        identifier=identifier,
        s3_prefix=s3_prefix(*pick("s3_prefix")),
        snapshot_prefix=_rule(
            f"{key_prefix}snapshot_prefix",
            lambda: rules.snapshot_prefix(pick("snapshot_prefix")[1], kind),
        ),
        source=_choice(*pick("source"), rules.SCHEDULED_SOURCES),
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


def check_known_keys(context: Mapping[str, Any]) -> None:
    """A misspelt key would silently fall back to its default: refuse it instead.

    Only plain snake_case keys are checked; CDK's own context (feature flags such as
    `@aws-cdk/...`, `aws:cdk:...`, lookup caches) always contains `@`, `:` or `/`.
    """
    for key in context:
        if re.fullmatch(r"[a-z][a-z0-9_]*", key) and key not in CONTEXT_KEYS:
            close = difflib.get_close_matches(key, sorted(CONTEXT_KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(key, f"is not a context key of this stack{hint}")


def load_config(
    context: Mapping[str, Any], environment: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Validate the CDK context (defaults filled in from DEFAULTS) into a PipelineConfig.

    `environment`: the process environment, read only with `data_account_id` (the pipeline's
    account and region, CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION)."""
    check_known_keys(context)
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

    config = PipelineConfig(
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
            "snapshot_timeout_seconds", raw["snapshot_timeout_seconds"], rules.MIN_TIMEOUT_SECONDS
        ),
        export_timeout_seconds=_integer(
            "export_timeout_seconds", raw["export_timeout_seconds"], rules.MIN_TIMEOUT_SECONDS
        ),
        skipped_tables_policy=_choice(
            "skipped_tables_policy", raw["skipped_tables_policy"], rules.SKIPPED_TABLES_POLICIES
        ),
        alert_email=_optional("alert_email", raw["alert_email"], _EMAIL, "an e-mail address"),
        log_retention_days=_retention(raw["log_retention_days"]),
        allow_export_only_override=_boolean(
            "allow_export_only_override", raw["allow_export_only_override"]
        ),
        **_snowflake(raw),
        snowflake_stage_sqs_arn=_optional(
            "snowflake_stage_sqs_arn",
            raw["snowflake_stage_sqs_arn"],
            _SQS_ARN,
            "an SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>): the "
            "directory_notification_channel that DESC STAGE shows",
        ),
        **_event_triggers(raw),
        notify_success=_boolean("notify_success", raw["notify_success"]),
        glue_database=_glue_database(raw["glue_database"]),
        **_cross_account(raw, pipeline_name, environment or {}),
    )
    if not config.backup_vault:
        for database in config.databases:
            if database.source == "backup":
                raise ConfigError(
                    "source",
                    f"backup (for {database.kind} {database.identifier}) reads the recovery "
                    "points of an AWS Backup vault: set backup_vault=<vault name> too",
                )
    _check_fits_lambda_environment(config)
    return config


def _account_id(key: str, value: Any) -> str | None:
    """An account id: 12 digits, as a string (a JSON number in cdk.json is accepted; one with a
    leading zero has lost it, and is refused as too short)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _optional(key, value, _ACCOUNT_ID, "an AWS account id (12 digits, quoted in JSON)")


def _data_bucket_name(pipeline_name: str, data_account: str, region: str) -> str:
    """`<pipeline_name>-<data account>-<region>` in lower case: S3 bucket names are global and
    lower case, and this one is fixed before the data stack exists."""
    return f"{pipeline_name.lower()}-{data_account}-{region}"


def _cross_account(
    raw: Mapping[str, Any], pipeline_name: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """data_account_id and data_region, and the pipeline's own account and region (explicit
    in this mode: the data account's policies name the pipeline account's roles)."""
    data_account = _account_id("data_account_id", raw["data_account_id"])
    data_region = _optional(
        "data_region", raw["data_region"], _REGION, "an AWS region name such as eu-west-1"
    )
    pipeline_account = _account_id("pipeline_account_id", raw["pipeline_account_id"])
    if data_account is None:
        for key, value in (("data_region", data_region), ("pipeline_account_id", pipeline_account)):
            if value is not None:
                raise ConfigError(key, "applies only with data_account_id: set both")
        return {}
    # the pipeline's account: the context's, else the CLI's credentials' (which, when deploying
    # the data stack with the data account's profile, are the data account's)
    account = pipeline_account or environment.get(ENV_ACCOUNT, "").strip()
    region = environment.get(ENV_REGION, "").strip()
    if not _ACCOUNT_ID.match(account) or not _REGION.match(region):
        raise ConfigError(
            "data_account_id",
            f"needs the pipeline's own account and region explicit (pipeline_account_id or "
            f"{ENV_ACCOUNT}: {account or '<unset>'}; {ENV_REGION}: {region or '<unset>'}): the "
            "data account's policies name the pipeline account's roles. `cdk synth/deploy "
            "--profile <profile>` sets both from the profile",
        )
    if data_account == account:
        raise ConfigError(
            "pipeline_account_id" if pipeline_account else "data_account_id",
            f"{data_account} is also the pipeline's account (pipeline_account_id, else "
            f"{ENV_ACCOUNT}, the account of the CLI's credentials): for one account leave "
            "data_account_id empty; to deploy the data stack with the data account's profile, "
            "give -c pipeline_account_id=<the pipeline's account>",
        )
    if data_region is not None and data_region != region:
        raise ConfigError(
            "data_region",
            f"{data_region} is not the pipeline's region {region}: RDS exports a snapshot only to "
            f"a bucket in the snapshot's own region ({EXPORT_REGION_DOC}); copying the snapshot "
            "to another region first is not supported",
        )
    if raw["glue_database"]:
        raise ConfigError(
            "glue_database",
            "cannot be combined with data_account_id yet: the catalog would be in the "
            "pipeline's account, whose Athena users have no grant on the data account's bucket "
            "and key (docs/athena.md)",
        )
    if raw["bucket_name"]:
        raise ConfigError(
            "bucket_name",
            "cannot be combined with data_account_id: the data stack creates the bucket, with "
            "the name the pipeline stack uses (docs/deploy.md, cross-account delivery)",
        )
    # kms_key_arn, once the data stack exists: its key (output KmsKeyArn), which the pipeline
    # then names exactly instead of by alias (S3 asks for a key ARN across accounts)
    key_arn = raw["kms_key_arn"]
    if key_arn and not str(key_arn).startswith(f"arn:aws:kms:{region}:{data_account}:key/"):
        raise ConfigError(
            "kms_key_arn",
            f"with data_account_id it is the data stack's key (output KmsKeyArn), a key of "
            f"account {data_account} in {region}: got {key_arn!r}",
        )
    longest = max(CROSS_ACCOUNT_ROLES.values(), key=len)
    if len(f"{pipeline_name}-{longest}") > ROLE_NAME_MAX:
        raise ConfigError(
            "pipeline_name",
            f"{pipeline_name!r} makes the role name '{pipeline_name}-{longest}' longer than "
            f"IAM's {ROLE_NAME_MAX} characters (with data_account_id the roles the data "
            f"account names are '<pipeline_name>-<purpose>'): at most "
            f"{ROLE_NAME_MAX - len(longest) - 1} characters",
        )
    bucket = _data_bucket_name(pipeline_name, data_account, region)
    if len(bucket) > BUCKET_NAME_MAX:
        raise ConfigError(
            "pipeline_name",
            f"{pipeline_name!r} makes the data stack's bucket name {bucket!r} longer than S3's "
            f"{BUCKET_NAME_MAX} characters (<pipeline_name>-<data account>-<region>): at most "
            f"{BUCKET_NAME_MAX - len(bucket) + len(pipeline_name)} characters",
        )
    return {"data_account_id": data_account, "account": account, "region": region}


def _event_triggers(raw: Mapping[str, Any]) -> dict[str, Any]:
    """snapshot_events, snapshot_events_manual, backup_vault (infra/triggers.py)."""
    events = _boolean("snapshot_events", raw["snapshot_events"])
    manual = _boolean("snapshot_events_manual", raw["snapshot_events_manual"])
    if manual and not events:
        raise ConfigError(
            "snapshot_events_manual",
            "adds manual snapshots to the RDS snapshot events: set snapshot_events=true too",
        )
    vault = _optional(
        "backup_vault",
        raw["backup_vault"],
        _BACKUP_VAULT,
        "an AWS Backup vault name (2 to 50 letters, digits, hyphens or underscores)",
    )
    return {"snapshot_events": events, "snapshot_events_manual": manual, "backup_vault": vault}


def _glue_database(value: Any) -> str | None:
    """glue_database: "" (or null) for no catalog, else a name rules.glue_database accepts."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _rule("glue_database", lambda: rules.glue_database(value))


def _check_fits_lambda_environment(config: PipelineConfig) -> None:
    """What validates must deploy: every function's environment fits Lambda's 4 KB
    (rules.LAMBDA_ENVIRONMENT_MAX_BYTES), measured with the largest names the stack's own
    resources can have."""
    long_name = "x" * 63  # a bucket name is at most 63 characters
    long_arn = "x" * 200
    for module, environment in config.function_environments(long_name, long_arn, long_arn).items():
        size = rules.environment_bytes(environment)
        if size > rules.LAMBDA_ENVIRONMENT_MAX_BYTES:
            key = "databases" if config.multi_database else "export_only"
            raise ConfigError(
                key,
                f"makes the {module} function's environment {size} bytes, more than Lambda's "
                f"{rules.LAMBDA_ENVIRONMENT_MAX_BYTES} (the defaults and the list of configured "
                "databases travel there): name fewer tables (a whole database or schema counts "
                "as one entry), or split the databases over two stacks",
            )


def _snowflake(raw: Mapping[str, Any]) -> dict[str, Any]:
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
