"""Identifiers: snapshot ids, export task ids, and the rules RDS imposes on them."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

# RDS DB instance / cluster / manual snapshot identifiers: a letter first, then letters,
# digits and single hyphens, no trailing hyphen.
_RDS_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-))*(?<!-)$")
RDS_ID_MAX = {"instance": 63, "cluster": 63, "snapshot": 255}
EXPORT_TASK_ID_MAX = 60  # no documented limit; 60 is what is known to work everywhere
RUN_SUFFIX_LEN = 6


def is_rds_identifier(value: str, kind: str) -> bool:
    return 0 < len(value) <= RDS_ID_MAX[kind] and bool(_RDS_ID.match(value))


def is_export_task_id(value: str) -> bool:
    return 0 < len(value) <= EXPORT_TASK_ID_MAX and bool(_RDS_ID.match(value))


def minute_stamp(moment: datetime) -> str:
    """`YYYY-mm-dd-HH-MM` in UTC: the original tool's snapshot id format. An aware time in
    another zone is converted first (a naive one is taken to be UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d-%H-%M")


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


def export_task_id(snapshot_identifier: str, suffix: str) -> str:
    """Export task id: the snapshot id made RDS-safe, cut to fit, plus this run's suffix.

    Automated snapshot ids start with `rds:`; `:` is replaced. The suffix keeps the id unique
    per run (two runs exporting the same automated snapshot get two ids) and stable under
    retries of the same run. A snapshot id that already ends in this run's suffix (taken when
    another run had the minute's plain id) does not get it twice.
    """
    room = EXPORT_TASK_ID_MAX - len(suffix) - 1
    base = sanitize(snapshot_identifier).removesuffix(f"-{suffix}")
    base = base[:room].rstrip("-")
    return f"{base}-{suffix}"
