"""Identifiers: snapshot ids, export task ids, and the rules RDS imposes on them."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from rds_s3_export import rules

RUN_SUFFIX_LEN = rules.RUN_SUFFIX_LENGTH
_ENDS_WITH_STAMP = re.compile(r"-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})$")


def is_rds_identifier(value: str, kind: str) -> bool:
    """`kind`: "instance" or "cluster" (databases), or "snapshot" (the longest snapshot ids)."""
    if kind == "snapshot":
        return rules.is_rds_identifier(value, rules.SNAPSHOT_ID_MAX["instance"])
    return rules.is_rds_identifier(
        value, rules.DATABASE_ID_MAX["cluster" if kind == "cluster" else "instance"]
    )


def is_export_task_id(value: str) -> bool:
    return rules.is_rds_identifier(value, rules.EXPORT_TASK_ID_MAX)


def minute_stamp(moment: datetime) -> str:
    """`YYYY-mm-dd-HH-MM` in UTC: the original tool's snapshot id format. An aware time in
    another zone is converted first (a naive one is taken to be UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(rules.STAMP_FORMAT)


def run_suffix(execution_id: str) -> str:
    """A short, stable token of one execution: the same on every retry, distinct across runs."""
    digest = hashlib.sha256(execution_id.encode()).hexdigest()
    return digest[:RUN_SUFFIX_LEN]


def snapshot_id(prefix: str, started: datetime) -> str:
    """The snapshot id of a run that starts at `started`: `<prefix>-YYYY-mm-dd-HH-MM`."""
    return f"{prefix}-{minute_stamp(started)}".lower()  # RDS stores identifiers in lower case


def sanitize(text: str) -> str:
    """Letters, digits and single hyphens only, starting with a letter, no trailing hyphen."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"x-{cleaned}".rstrip("-")
    return cleaned


def export_task_id(snapshot_identifier: str, suffix: str, stamp: str) -> str:
    """Export task id (and so the export's folder): `<name>-YYYY-mm-dd-HH-MM-<suffix>`.

    `<name>` is the snapshot id made RDS-safe (`rds:` of automated snapshots becomes `rds-`)
    without its date, cut to fit rules.EXPORT_TASK_ID_MAX; the date is the one the snapshot id
    ends with, else `stamp` (the run's start), and is never cut. The suffix keeps the id unique
    per run (two runs exporting the same automated snapshot get two ids) and stable under
    retries of the same run. A snapshot id that already ends in this run's suffix (taken when
    another run had the minute's plain id) does not get it twice.
    """
    base = sanitize(snapshot_identifier).removesuffix(f"-{suffix}")
    dated = _ENDS_WITH_STAMP.search(base)
    if dated:
        stamp, base = dated.group(1), base[: dated.start()]
    room = rules.EXPORT_TASK_ID_MAX - rules.TAIL_LENGTH
    base = base[:room].rstrip("-") or "x"
    return f"{base}-{stamp}-{suffix}".lower()


def tag_value(text: str) -> str:
    """`text` as an RDS tag value (see rules.is_rds_tag_value), deterministically: unchanged when
    RDS takes it; otherwise each refused character becomes `_` and 8 hex digits of the
    original's SHA-256 follow a `-`, so two names that differ only in refused characters
    (`rerun(2)`, `rerun!2!`) still get different values, and a retry gets the same one."""
    if rules.is_rds_tag_value(text):
        return text
    cleaned = "".join(c if rules.rds_tag_character(c) else "_" for c in text)
    if cleaned.lower().startswith(rules.RDS_TAG_RESERVED_PREFIXES):
        cleaned = f"x-{cleaned}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{cleaned[: rules.RDS_TAG_VALUE_MAX - 9]}-{digest}"
