"""The pipeline's rules, written once: identifiers, prefixes, limits, keys and defaults.

Pure Python, no AWS calls. The stack's configuration (`infra/config.py`, at synth) and the
validate step (`inputs.py`, at run time) both call these functions, so a value that one accepts
the other accepts too (tests/unit/test_rules_agree.py feeds both the same generated values).

Each check returns the normalised value or raises `RuleError` with a message that does not name
the key; the caller prefixes the key (a context key at synth, an input key at run time).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final, Literal

DatabaseKind = Literal["instance", "cluster"]


class RuleError(ValueError):
    """A value breaks one of the rules below; the message says which and why."""


# --- identifiers, per engine ------------------------------------------------------------------
# RDS identifiers: a letter first, then letters, digits and single hyphens, no trailing hyphen.
# RDS stores them in lower case and compares them case-insensitively, so they are normalised
# to lower case here (IAM compares ARNs case-sensitively: the stack must use the stored form).
_RDS_ID: Final = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$")
# DBInstanceIdentifier, 1 to 63 characters for the engines snapshot export supports:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
# DBClusterIdentifier, 1 to 63 characters:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html
DATABASE_ID_MAX: Final[Mapping[DatabaseKind, int]] = {"instance": 63, "cluster": 63}
# DBSnapshotIdentifier, 1 to 255 characters:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBSnapshot.html
# DBClusterSnapshotIdentifier, 1 to 63 characters:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterSnapshot.html
SNAPSHOT_ID_MAX: Final[Mapping[DatabaseKind, int]] = {"instance": 255, "cluster": 63}
# The RDS API reference gives no length for ExportTaskIdentifier; the console's "Export
# identifier" field takes 1 to 60 characters, and that is the limit kept here:
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html
EXPORT_TASK_ID_MAX: Final = 60
# What the pipeline appends to a prefix: `-YYYY-mm-dd-HH-MM`, and `-xxxxxx` (a run token) when
# another run already took the minute's id. The date must survive in every id it makes.
STAMP_FORMAT: Final = "%Y-%m-%d-%H-%M"
STAMP_LENGTH: Final = len("-YYYY-mm-dd-HH-MM")
RUN_SUFFIX_LENGTH: Final = 6
TAIL_LENGTH: Final = STAMP_LENGTH + 1 + RUN_SUFFIX_LENGTH


def snapshot_prefix_max(kind: DatabaseKind) -> int:
    """The longest snapshot prefix whose snapshot ids (with date and run token) still fit."""
    return SNAPSHOT_ID_MAX[kind] - TAIL_LENGTH


def is_rds_identifier(value: str, maximum: int) -> bool:
    return 0 < len(value) <= maximum and bool(_RDS_ID.fullmatch(value.lower()))


def _identifier(value: Any, what: str, maximum: int) -> str:
    if not isinstance(value, str):
        raise RuleError(f"must be a string, got {_type_name(value)}: {value!r}")
    text = value.strip()
    if not is_rds_identifier(text, maximum):
        raise RuleError(
            f"{text!r} is not a valid {what}: 1 to {maximum} letters, digits or single "
            "hyphens, starting with a letter and not ending with a hyphen"
        )
    return text.lower()


def database_identifier(value: Any, kind: DatabaseKind) -> str:
    what = "DB cluster identifier" if kind == "cluster" else "DB instance identifier"
    return _identifier(value, what, DATABASE_ID_MAX[kind])


def snapshot_prefix(value: Any, kind: DatabaseKind) -> str:
    maximum = snapshot_prefix_max(kind)
    text = _identifier(value, "snapshot prefix", SNAPSHOT_ID_MAX[kind])
    if len(text) > maximum:
        raise RuleError(
            f"{text!r} is {len(text)} characters; a {kind} snapshot id is at most "
            f"{SNAPSHOT_ID_MAX[kind]}, and the pipeline adds {TAIL_LENGTH} (date and run "
            f"token), so the prefix may have at most {maximum}"
        )
    return text


# The service prefixes RDS puts before the ids of snapshots it did not take on a user's request:
# `rds:` for automated snapshots, `awsbackup:` for the snapshots AWS Backup takes (recovery
# points of RDS and Aurora, `awsbackup:job-<uuid>`; DescribeDBSnapshots lists them as snapshot
# type `awsbackup`: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBSnapshots.html).
SERVICE_SNAPSHOT_PREFIXES: Final = ("rds:", "awsbackup:")


def snapshot_identifier(value: Any, kind: DatabaseKind) -> str:
    """A named snapshot: a manual one, an automated one (`rds:<database>-<date>`) or one of AWS
    Backup (`awsbackup:job-<id>`)."""
    if not isinstance(value, str):
        raise RuleError(f"must be a string, got {_type_name(value)}: {value!r}")
    service = next((p for p in SERVICE_SNAPSHOT_PREFIXES if value.startswith(p)), "")
    bare = value.removeprefix(service)
    what = f"{'DB cluster' if kind == 'cluster' else 'DB'} snapshot identifier"
    return service + _identifier(bare, what, SNAPSHOT_ID_MAX[kind])


# An RDS snapshot ARN: arn:<partition>:rds:<region>:<account>:snapshot:<id> for a DB snapshot,
# ...:cluster-snapshot:<id> for a DB cluster snapshot (the resource types of "Amazon Resource
# Names (ARNs) in Amazon RDS":
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.ARN.Constructing.html).
# RDS snapshot events carry it as detail.SourceArn; an AWS Backup recovery point of RDS or
# Aurora is such a snapshot, and its recovery point ARN is this ARN.
_SNAPSHOT_ARN: Final = re.compile(
    r"^arn:(aws[a-z-]*):rds:([a-z0-9-]+):(\d{12}):(snapshot|cluster-snapshot):(.+)$"
)
SNAPSHOT_ARN_TYPES: Final[Mapping[DatabaseKind, str]] = {
    "instance": "snapshot",
    "cluster": "cluster-snapshot",
}
SNAPSHOT_ARN_MAX: Final = 1024


def snapshot_arn(value: Any, kind: DatabaseKind) -> tuple[str, str]:
    """(the ARN, the snapshot id it names) of a snapshot of a database of `kind`."""
    if not isinstance(value, str):
        raise RuleError(f"must be a string, got {_type_name(value)}: {value!r}")
    found = _SNAPSHOT_ARN.fullmatch(value) if len(value) <= SNAPSHOT_ARN_MAX else None
    if found is None:
        raise RuleError(
            f"{value[:200]!r} is not an RDS snapshot ARN "
            "(arn:aws:rds:<region>:<account>:snapshot:<id> or ...:cluster-snapshot:<id>)"
        )
    if found.group(4) != SNAPSHOT_ARN_TYPES[kind]:
        raise RuleError(
            f"{value!r} is a {found.group(4)} ARN; a {kind} is exported from its "
            f"{SNAPSHOT_ARN_TYPES[kind]}s"
        )
    return value, snapshot_identifier(found.group(5), kind)


# --- S3 prefixes ------------------------------------------------------------------------------
# One segment of a prefix: letters, digits and `. _ = + -`. Stricter than S3: no `*`, `?` or `$`
# (they would widen or template the IAM resources built from the prefix), no characters RDS
# rewrites in the paths it writes, no spaces or quotes.
_S3_SEGMENT: Final = re.compile(r"^[A-Za-z0-9._=+-]+$")
# Far below S3's 1,024-byte key limit, leaving room for the export's own paths beneath it:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
S3_PREFIX_MAX: Final = 512


def s3_prefix(value: Any) -> str:
    """A safe prefix, without a trailing `/`."""
    if not isinstance(value, str):
        raise RuleError(f"must be a string, got {_type_name(value)}: {value!r}")
    prefix = value.rstrip("/") if len(value) > 1 else value
    if prefix in ("", "/", ".", ".."):
        raise RuleError(f"must not be empty, '/', '.' or '..' (got {value!r})")
    if prefix.startswith("/"):
        raise RuleError(f"must not start with '/' (got {value!r})")
    segments = prefix.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise RuleError(f"must not contain empty, '.' or '..' segments (got {value!r})")
    if not all(_S3_SEGMENT.fullmatch(segment) for segment in segments):
        raise RuleError(
            f"may contain only letters, digits and . _ = + - between single '/' (got {value!r})"
        )
    if len(prefix) > S3_PREFIX_MAX:
        raise RuleError(f"is longer than {S3_PREFIX_MAX} characters")
    return prefix


def prefixes_overlap(first: str, second: str) -> bool:
    """True when one prefix is the other or lies below it (`/` is the boundary)."""
    return first == second or first.startswith(f"{second}/") or second.startswith(f"{first}/")


# --- AWS limits the steps work within ---------------------------------------------------------
# No state's input or output may exceed 256 KB (262,144 bytes), a Lambda result included:
# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
STATE_MAX_BYTES: Final = 262_144
# A DeleteObjects request names at most 1,000 keys (S3 answers MalformedXML to more):
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
S3_DELETE_OBJECTS_MAX_KEYS: Final = 1000
# ListObjectsV2 returns at most 1,000 keys a page:
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
S3_LIST_PAGE_MAX_KEYS: Final = 1000
# A Standard execution's history holds at most 25,000 events:
# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
HISTORY_EVENTS_MAX: Final = 25_000
# At most five snapshot export tasks run at once per account:
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html
CONCURRENT_EXPORTS_MAX: Final = 5

# --- export_only --------------------------------------------------------------------------
# database | database.table | database.schema | database.schema.table (the forms StartExportTask
# documents for ExportOnly):
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_StartExportTask.html
# A partial export takes only names made of Latin letters (A-Z), digits (0-9), `$` and `_`; a
# name with any other character (a hyphen, an accent, a space, `/`) can only be exported with
# the whole snapshot, and StartExportTask fails the run after its snapshot was made:
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html
# (Considerations, "partial export isn't supported"; the same rule for clusters:
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/export-cluster-data.Considerations.html).
# "Latin letters" is read as both cases: the API reference's own ExportOnly examples are lower
# case, and PostgreSQL stores unquoted names in lower case.
EXPORT_ONLY_NAME_PART: Final = re.compile(r"^[A-Za-z0-9$_]+$")
EXPORT_ONLY_PARTS_MAX: Final = 3
# The list travels in the run's state; a quarter of STATE_MAX_BYTES leaves room for the rest.
EXPORT_ONLY_MAX_BYTES: Final = 64 * 1024


def export_only(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise RuleError(f"must be a list of strings, got {_type_name(value)}: {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise RuleError(f"entry {item!r} must be a string")
        parts = item.split(".")
        if len(parts) > EXPORT_ONLY_PARTS_MAX or not all(parts):
            raise RuleError(
                f"entry {item!r} must be 'database', 'database.table', 'database.schema' or "
                "'database.schema.table'"
            )
        bad = sorted({c for c in item.replace(".", "") if not EXPORT_ONLY_NAME_PART.fullmatch(c)})
        if bad:
            raise RuleError(
                f"entry {item!r} has {' '.join(repr(c) for c in bad)}: RDS exports partially "
                "only names of letters A-Z, digits 0-9, '$' and '_', as 'database', "
                "'database.table', 'database.schema' or 'database.schema.table' (export the "
                "whole snapshot instead)"
            )
    if len(json.dumps(value).encode()) > EXPORT_ONLY_MAX_BYTES:
        raise RuleError(
            f"is larger than {EXPORT_ONLY_MAX_BYTES} bytes (the run's state is capped at 256 KB)"
        )
    return list(value)


# --- keep_snapshots -----------------------------------------------------------------------
KEEP_ALL: Final = "all"  # the one spelling of "keep every snapshot the pipeline made"
# Manual snapshots per region, 100 by default (DB instances and DB clusters alike):
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html
KEEP_SNAPSHOTS_MAX: Final = 100


def keep_snapshots(value: Any) -> int | str:
    """A whole number from 0 to 100, or "all"."""
    if value == KEEP_ALL:
        return KEEP_ALL
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(
            f'must be a whole number from 0 to {KEEP_SNAPSHOTS_MAX}, or "{KEEP_ALL}" to keep '
            f"every snapshot (got {_type_name(value)}: {value!r})"
        )
    if not 0 <= value <= KEEP_SNAPSHOTS_MAX:
        raise RuleError(f"must be between 0 and {KEEP_SNAPSHOTS_MAX}, got {value}")
    return value


# --- sources, policies, settings ----------------------------------------------------------
SOURCES: Final = ("new-snapshot", "latest-automated", "snapshot", "backup")
# What started a run. A run started by an event ends quietly (Succeeded, with the reason) when
# the event's snapshot is not one of its database: an event pattern cannot always tell (an
# automated snapshot id prefix `rds:mydb-` also matches database `mydb-2`'s snapshots).
TRIGGERS: Final = ("manual", "rds-event", "backup-event")
# A schedule can only use sources that need no per-run value.
SCHEDULED_SOURCES: Final = ("new-snapshot", "latest-automated", "backup")
SKIPPED_TABLES_POLICIES: Final = ("warn", "fail")
MIN_TIMEOUT_SECONDS: Final = 60


def choice(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise RuleError(f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def whole_number(value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(f"must be a whole number, got {_type_name(value)}: {value!r}")
    if value < minimum:
        raise RuleError(f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise RuleError(f"must be at most {maximum}, got {value}")
    return value


# The keys of the execution input.
DATABASE_KEYS: Final = ("db_instance_identifier", "db_cluster_identifier")
INPUT_KEYS: Final = frozenset(
    {
        *DATABASE_KEYS,
        "source",
        "snapshot_identifier",
        "snapshot_arn",
        "recovery_point_arn",
        "trigger",
        "snapshot_prefix",
        "s3_prefix",
        "export_only",
        "keep_snapshots",
        "dry_run",
    }
)
# The keys of one configured database: what a run of that database may be started with.
DATABASE_ENTRY_KEYS: Final = frozenset(
    {*DATABASE_KEYS, "s3_prefix", "snapshot_prefix", "source", "export_only", "keep_snapshots"}
)
# The keys of the stack's settings that the validate step enforces on every run.
SETTING_KEYS: Final = frozenset(
    {
        "pipeline_name",
        "poll_min_seconds",
        "poll_max_seconds",
        "snapshot_timeout_seconds",
        "export_timeout_seconds",
        "skipped_tables_policy",
        "databases",
        "allow_export_only_override",
        "backup_vault",
        "notify_success",
    }
)

# The defaults of every configuration key. cdk.json holds only what a user chose on top.
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
    "snapshot_timeout_seconds": 4 * 3600,
    "export_timeout_seconds": 12 * 3600,
    "skipped_tables_policy": "warn",
    "alert_email": "",
    "log_retention_days": 30,
    # Snowflake's storage integration (DESC INTEGRATION): both set, or neither
    "snowflake_iam_user_arn": "",
    "snowflake_external_id": "",
    "snowflake_stage_sqs_arn": "",
    "databases": None,
    # A run started by hand may name another export_only than its database's configured one
    # only when this is true: the prefix would otherwise hold other tables than its consumers
    # expect.
    "allow_export_only_override": False,
    # Event triggers (infra/events.py), off by default: an EventBridge rule per database for
    # its automated snapshot-created events, and for its manual ones too when
    # snapshot_events_manual is also true; and, when backup_vault names a vault, a rule for its
    # completed AWS Backup jobs
    "snapshot_events": False,
    "snapshot_events_manual": False,
    "backup_vault": "",
    # A successful run publishes a one-line summary to the alert topic (off: only failures do)
    "notify_success": False,
    # The Glue database the pipeline keeps one table per exported table in (Athena), pointing
    # at the newest export; "" (the default): no catalog (rds_s3_export.catalog)
    "glue_database": "",
    # Cross-account delivery (infra/data_stack.py): the account of the data stack (bucket, key,
    # Snowflake role), its region ("" = the pipeline's own; another one is refused), and the
    # pipeline's own account ("" = CDK_DEFAULT_ACCOUNT, the account of the CLI's credentials)
    "data_account_id": "",
    "data_region": "",
    "pipeline_account_id": "",
}

# A Glue database name: 1 to 255 characters of the single-line string pattern
# (https://docs.aws.amazon.com/glue/latest/webapi/API_DatabaseInput.html); Athena wants it in
# lower case and reads only lower-case letters, digits and `_` without quoting
# (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html). The
# stack takes only that: it is also part of the database's IAM ARN.
GLUE_NAME_MAX: Final = 255
_GLUE_DATABASE: Final = re.compile(r"^[a-z0-9_]{1,255}$")


def glue_database(value: Any) -> str:
    """A Glue database name the pipeline may create: lower-case letters, digits and `_`."""
    if not isinstance(value, str):
        raise RuleError(f"must be a string, got {_type_name(value)}: {value!r}")
    text = value.strip()
    if not _GLUE_DATABASE.fullmatch(text):
        raise RuleError(
            f"{text!r} is not a Glue database name Athena reads as it is: 1 to {GLUE_NAME_MAX} "
            "lower-case letters, digits or underscores"
        )
    return text


# Lambda caps a function's environment variables at 4 KB in aggregate (names and values):
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_ENVIRONMENT_MAX_BYTES: Final = 4096


def environment_bytes(environment: Mapping[str, str]) -> int:
    """The size Lambda counts against its 4 KB: every name and value, UTF-8 encoded."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- RDS tag values -------------------------------------------------------------------------
# A tag value: 0 to 256 Unicode letters, digits, white space and `_ . : / = + - @`, not starting
# with `aws:` or `rds:` (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Tag.html,
# and https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.html). An execution
# name may hold `! ' ( )` besides, so it cannot always be one as it is.
RDS_TAG_VALUE_MAX: Final = 256
RDS_TAG_VALUE_PUNCTUATION: Final = frozenset("_.:/=+-@")
RDS_TAG_RESERVED_PREFIXES: Final = ("aws:", "rds:")


def rds_tag_character(char: str) -> bool:
    """A character RDS takes in a tag value: \\p{L}, \\p{Z}, \\p{N} or one of `_.:/=+-@`."""
    return char in RDS_TAG_VALUE_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def is_rds_tag_value(value: str) -> bool:
    return (
        len(value) <= RDS_TAG_VALUE_MAX
        and not value.lower().startswith(RDS_TAG_RESERVED_PREFIXES)
        and all(rds_tag_character(c) for c in value)
    )
