"""The files an RDS snapshot export writes to S3, written by the sandbox.

moto's ``start_export_task`` records the task and writes nothing, so the local mode calls
:func:`write_export` to put into the (moto) bucket what RDS would have written: two JSON metadata
files and real gzip-compressed Parquet data files of a small, deterministic sample database,
under ``<s3_prefix>/<export_task_id>/``. ``export_info`` is written last, so that its presence
means the folder is complete.

docs/sandbox.md lists which field names are verified, which are guessed, and which are the
sandbox's own (the ``sandbox`` object in ``export_info``: pipeline code must not depend on it).
"""

from __future__ import annotations

import io
import json
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DATABASE: Final = "shop"
SCHEMA: Final = "public"

STATUS_COMPLETE: Final = "COMPLETE"
STATUS_FAILED: Final = "FAILED"
STATUS_SKIPPED: Final = "SKIPPED"
TABLE_STATUSES: Final = frozenset({STATUS_COMPLETE, STATUS_FAILED, STATUS_SKIPPED})

SKIPPED_REASON: Final = "PERMISSIONS_DO_NOT_EXIST"
"""The reason RDS gives for a PostgreSQL table the export role could not read."""

BATCH: Final = 1
"""The batch folder under each table; the sandbox always writes one batch."""

_GB: Final = 1024**3
_EPOCH: Final = datetime(2024, 1, 1)  # naive: the sample columns are "timestamp without time zone"


@dataclass(frozen=True)
class TableRef:
    """One table of the sample database."""

    database: str
    schema: str
    table: str

    @property
    def target(self) -> str:
        """``database.schema.table``: the name ``export_tables_info`` and ``table_outcomes`` use."""
        return f"{self.database}.{self.schema}.{self.table}"

    @property
    def folder(self) -> str:
        """``database/schema.table``: the table's folder under the export folder."""
        return f"{self.database}/{self.schema}.{self.table}"


@dataclass(frozen=True)
class Column:
    """A column: its source type as PostgreSQL reports it, and how it lands in Parquet."""

    name: str
    original_type: str
    arrow_type: Any  # a pyarrow DataType (pyarrow ships no type information)
    exported_type: str
    char_max_length: int = 0
    num_precision: int = 0
    datetime_precision: int = 0


@dataclass(frozen=True)
class TableSpec:
    """A sample table: its columns, its row count, and the partition numbers RDS "used"."""

    ref: TableRef
    columns: tuple[Column, ...]
    row_count: int
    partitions: tuple[int, ...] = (0,)


def _bigint(name: str) -> Column:
    return Column(name, "bigint", pa.int64(), "int64", num_precision=64)


def _integer(name: str) -> Column:
    return Column(name, "integer", pa.int32(), "int32", num_precision=32)


def _varchar(name: str, length: int) -> Column:
    return Column(name, "character varying", pa.string(), "binary (UTF8)", char_max_length=length)


def _timestamp(name: str) -> Column:
    return Column(
        name,
        "timestamp without time zone",
        pa.timestamp("us"),
        "int64 (TIMESTAMP_MICROS)",
        datetime_precision=6,
    )


def _numeric(name: str, precision: int, scale: int) -> Column:
    return Column(
        name,
        "numeric",
        pa.decimal128(precision, scale),
        f"fixed_len_byte_array (DECIMAL({precision},{scale}))",
        num_precision=precision,
    )


CUSTOMERS: Final = TableSpec(
    TableRef(DATABASE, SCHEMA, "customers"),
    (_bigint("id"), _varchar("name", 100), _varchar("email", 255), _timestamp("created_at")),
    row_count=40,
)
ORDERS: Final = TableSpec(
    TableRef(DATABASE, SCHEMA, "orders"),
    (
        _bigint("id"),
        _bigint("customer_id"),
        _numeric("total", 12, 2),
        _varchar("status", 20),
        _timestamp("ordered_at"),
    ),
    row_count=120,
    partitions=(0, 2),  # split in two, with a gap in the numbering, as RDS does
)
ORDER_ITEMS: Final = TableSpec(
    TableRef(DATABASE, SCHEMA, "order_items"),
    (
        _bigint("order_id"),
        _integer("line"),
        _varchar("sku", 32),
        _integer("quantity"),
        _numeric("price", 10, 2),
    ),
    row_count=300,
)

SAMPLE_SCHEMA: Final[tuple[TableSpec, ...]] = (CUSTOMERS, ORDERS, ORDER_ITEMS)
"""The sample database, in the order RDS lists its tables here."""

SAMPLE_TABLES: Final[tuple[TableRef, ...]] = tuple(spec.ref for spec in SAMPLE_SCHEMA)
_SPECS: Final[dict[str, TableSpec]] = {spec.ref.target: spec for spec in SAMPLE_SCHEMA}


# --- rows ----------------------------------------------------------------------------------

_FIRST_NAMES: Final = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Linus")
_LAST_NAMES: Final = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Allen")
_ORDER_STATUSES: Final = ("pending", "paid", "shipped", "delivered", "cancelled")


def _moment(rng: random.Random) -> datetime:
    return _EPOCH + timedelta(
        seconds=rng.randrange(365 * 24 * 3600), microseconds=rng.randrange(10**6)
    )


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randrange(low * 100, high * 100)) / 100


def _customers(rng: random.Random) -> dict[str, list[Any]]:
    n = CUSTOMERS.row_count
    names = [f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}" for _ in range(n)]
    return {
        "id": list(range(1, n + 1)),
        "name": names,
        "email": [
            f"{name.lower().replace(' ', '.')}{i}@example.com" for i, name in enumerate(names, 1)
        ],
        "created_at": sorted(_moment(rng) for _ in range(n)),
    }


def _orders(rng: random.Random) -> dict[str, list[Any]]:
    n = ORDERS.row_count
    return {
        "id": list(range(1, n + 1)),
        "customer_id": [rng.randint(1, CUSTOMERS.row_count) for _ in range(n)],
        "total": [_money(rng, 5, 900) for _ in range(n)],
        "status": [rng.choice(_ORDER_STATUSES) for _ in range(n)],
        "ordered_at": sorted(_moment(rng) for _ in range(n)),
    }


def _order_items(rng: random.Random) -> dict[str, list[Any]]:
    order_ids = sorted(rng.randint(1, ORDERS.row_count) for _ in range(ORDER_ITEMS.row_count))
    lines: list[int] = []
    for i, order_id in enumerate(order_ids):
        lines.append(lines[-1] + 1 if i and order_ids[i - 1] == order_id else 1)
    return {
        "order_id": order_ids,
        "line": lines,
        "sku": [f"SKU-{rng.randrange(10_000):04d}" for _ in order_ids],
        "quantity": [rng.randint(1, 5) for _ in order_ids],
        "price": [_money(rng, 1, 200) for _ in order_ids],
    }


_ROWS: Final[dict[str, Callable[[random.Random], dict[str, list[Any]]]]] = {
    CUSTOMERS.ref.target: _customers,
    ORDERS.ref.target: _orders,
    ORDER_ITEMS.ref.target: _order_items,
}


def sample_table(ref: TableRef, seed: int = 0) -> Any:
    """The rows of one sample table as a ``pyarrow.Table``; the same seed gives the same rows."""
    spec = _SPECS[ref.target]
    # seeded on purpose: sample rows must be reproducible, not secret
    columns = _ROWS[ref.target](random.Random(f"{seed}:{ref.target}"))  # nosec B311
    schema = pa.schema([(c.name, c.arrow_type, True) for c in spec.columns])
    return pa.table(
        {c.name: pa.array(columns[c.name], type=c.arrow_type) for c in spec.columns}, schema=schema
    )


# --- ExportOnly ----------------------------------------------------------------------------


def _matches(ref: TableRef, name: str) -> bool:
    parts = name.split(".")
    if parts[0] != ref.database:
        return False
    if len(parts) == 1:  # database
        return True
    if len(parts) == 2:  # database.schema (PostgreSQL) or database.table (MySQL, MariaDB)
        return parts[1] in (ref.schema, ref.table)
    if len(parts) == 3:  # database.schema.table (PostgreSQL)
        return parts[1] == ref.schema and parts[2] == ref.table
    return False


def select_tables(export_only: Sequence[str]) -> list[TableRef]:
    """The sample tables an export with this ``ExportOnly`` list would write.

    An empty list selects every table. Each name selects what it matches:
    ``database``, ``database.schema``, ``database.schema.table``, or the MySQL form
    ``database.table``. Names match exactly (case-sensitive). A name that matches nothing
    selects nothing and is not an error. The result keeps the schema's order and has no
    duplicates.
    """
    if not export_only:
        return list(SAMPLE_TABLES)
    return [ref for ref in SAMPLE_TABLES if any(_matches(ref, name) for name in export_only)]


# --- keys ----------------------------------------------------------------------------------


def export_folder(s3_prefix: str, export_task_id: str) -> str:
    """``<s3_prefix>/<export_task_id>/``: the folder that holds one export (trailing ``/``)."""
    if ":" in s3_prefix:
        raise ValueError(f"S3 prefix {s3_prefix!r} contains ':', which RDS refuses")
    prefix = s3_prefix.rstrip("/")
    return f"{prefix}/{export_task_id}/" if prefix else f"{export_task_id}/"


def export_info_key(s3_prefix: str, export_task_id: str) -> str:
    """The key of ``export_info_<export_task_id>.json``, the export's summary file."""
    return f"{export_folder(s3_prefix, export_task_id)}export_info_{export_task_id}.json"


def export_tables_info_prefix(s3_prefix: str, export_task_id: str) -> str:
    """The start shared by every ``export_tables_info_<id>_from_<n>_to_<m>.json`` key."""
    return f"{export_folder(s3_prefix, export_task_id)}export_tables_info_{export_task_id}_from_"


def export_tables_info_key(s3_prefix: str, export_task_id: str, first: int, last: int) -> str:
    """The key of the tables-info file that lists tables ``first`` to ``last`` (1-based)."""
    return f"{export_tables_info_prefix(s3_prefix, export_task_id)}{first}_to_{last}.json"


def data_file_key(folder: str, ref: TableRef, partition: int, file_id: uuid.UUID) -> str:
    """``<folder><database>/<schema>.<table>/1/part-<partition>-<uuid>.gz.parquet``."""
    return f"{folder}{ref.folder}/{BATCH}/part-{partition:05d}-{file_id}.gz.parquet"


# --- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """What :func:`write_export` wrote."""

    folder: str
    """The export folder, ``<s3_prefix>/<export_task_id>/``."""
    keys: list[str]
    """Every key written, in the order written (``export_info`` last)."""
    total_bytes: int
    """Bytes of every object written, JSON included."""
    data_bytes: int
    """Bytes of the Parquet files only (what ``totalExportedDataInGB`` counts)."""
    table_status: dict[str, str]
    """``database.schema.table`` -> ``COMPLETE``, ``FAILED`` or ``SKIPPED``; selected tables."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parquet_bytes(table: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="gzip")
    return buffer.getvalue()


def _split(table: Any, parts: int) -> list[Any]:
    size = -(-table.num_rows // parts)  # ceiling division: the last part may be shorter
    return [table.slice(i * size, size) for i in range(parts)]


def _file_id(seed: int, export_task_id: str, ref: TableRef, partition: int) -> uuid.UUID:
    rng = random.Random(f"{seed}:{export_task_id}:{ref.target}:{partition}")  # nosec B311
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _column_mapping(column: Column) -> dict[str, Any]:
    return {
        "columnName": column.name,
        "originalType": column.original_type,
        "expectedExportedType": column.exported_type,
        "originalCharMaxLength": column.char_max_length,
        "originalNumPrecision": column.num_precision,
        "originalDateTimePrecision": column.datetime_precision,
    }


def _check_outcomes(table_outcomes: Mapping[str, str]) -> None:
    for target, status in table_outcomes.items():
        if target not in _SPECS:
            known = ", ".join(sorted(_SPECS))
            raise ValueError(f"table_outcomes names {target!r}, not a sample table ({known})")
        if status not in TABLE_STATUSES:
            allowed = ", ".join(sorted(TABLE_STATUSES))
            raise ValueError(f"table_outcomes[{target!r}] is {status!r}, not one of {allowed}")


@dataclass
class _Writer:
    """Puts objects into the bucket, SSE-KMS when a key is given, and keeps count."""

    s3: S3Client
    bucket: str
    kms_key_id: str | None
    keys: list[str] = field(default_factory=list)
    total_bytes: int = 0

    def put(self, key: str, body: bytes, content_type: str) -> None:
        if self.kms_key_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        else:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self.kms_key_id,
            )
        self.keys.append(key)
        self.total_bytes += len(body)


def _export_table(
    writer: _Writer,
    folder: str,
    spec: TableSpec,
    status: str,
    *,
    export_task_id: str,
    seed: int,
    start: datetime,
    end: datetime,
) -> tuple[dict[str, Any], int]:
    """Write one table's data files (if it exported); its tables-info entry and data bytes."""
    ref = spec.ref
    entry: dict[str, Any] = {"target": ref.target, "status": status}
    if status == STATUS_SKIPPED:
        entry |= {"warningMessage": SKIPPED_REASON, "sizeGB": 0.0}
        return entry, 0
    if status == STATUS_FAILED:
        cause = f"Export of table {ref.target} failed (simulated by the sandbox)."
        entry |= {"failureCause": cause, "sizeGB": 0.0}
        return entry, 0
    data_bytes = 0
    parts = _split(sample_table(ref, seed), len(spec.partitions))
    for partition, part in zip(spec.partitions, parts, strict=True):
        body = _parquet_bytes(part)
        file_id = _file_id(seed, export_task_id, ref, partition)
        writer.put(data_file_key(folder, ref, partition, file_id), body, "application/octet-stream")
        data_bytes += len(body)
    entry["sizeGB"] = data_bytes / _GB
    entry["tableStatistics"] = {
        "extractionStartTime": _iso(start),
        "extractionEndTime": _iso(end),
        "partitioningInfo": {
            "numberOfPartitions": len(spec.partitions),
            "numberOfCompletedPartitions": len(spec.partitions),
        },
    }
    entry["schemaMetadata"] = {"originalTypeMappings": [_column_mapping(c) for c in spec.columns]}
    return entry, data_bytes


def _export_info(
    *,
    export_task_id: str,
    source_arn: str,
    export_only: Sequence[str],
    bucket: str,
    s3_prefix: str,
    folder: str,
    iam_role_arn: str | None,
    kms_key_id: str | None,
    times: tuple[datetime, datetime, datetime],
    table_status: Mapping[str, str],
    data_bytes: int,
) -> dict[str, Any]:
    snapshot, start, end = times
    info: dict[str, Any] = {
        "exportTaskIdentifier": export_task_id,
        "sourceArn": source_arn,
        "exportOnly": list(export_only),
        "snapshotTime": _iso(snapshot),
        "taskStartTime": _iso(start),
        "taskEndTime": _iso(end),
        "s3Bucket": bucket,
        "s3Prefix": s3_prefix,
        "exportedFilesPath": folder.rstrip("/"),
    }
    if iam_role_arn is not None:
        info["iamRoleArn"] = iam_role_arn
    if kms_key_id is not None:
        info["kmsKeyId"] = kms_key_id
    info |= {
        "status": STATUS_COMPLETE,
        "percentProgress": 100,
        "totalExportedDataInGB": data_bytes / _GB,
    }
    not_exported = [target for target, status in table_status.items() if status != STATUS_COMPLETE]
    if not_exported:
        info["warningMessage"] = (
            f"{len(not_exported)} table(s) were not exported: {', '.join(not_exported)}. "
            "See the export_tables_info files."
        )
    counts = dict.fromkeys(sorted(TABLE_STATUSES), 0)
    for status in table_status.values():
        counts[status] += 1
    info["sandbox"] = {
        "note": "Written by the local sandbox; real RDS export_info files have no such object.",
        "tableCount": len(table_status),
        "statusCounts": counts,
        "totalExportedBytes": data_bytes,
    }
    return info


def write_export(
    s3: S3Client,
    *,
    bucket: str,
    s3_prefix: str,
    export_task_id: str,
    source_arn: str,
    export_only: Sequence[str] = (),
    table_outcomes: Mapping[str, str] | None = None,
    kms_key_id: str | None = None,
    seed: int = 0,
    iam_role_arn: str | None = None,
    snapshot_time: datetime | None = None,
    task_start_time: datetime | None = None,
    task_end_time: datetime | None = None,
) -> ExportResult:
    """Write into ``bucket`` the files an RDS export of the sample database would write.

    ``table_outcomes`` maps ``database.schema.table`` to ``COMPLETE`` (the default),
    ``FAILED`` or ``SKIPPED``. A failed or skipped table gets no data file and is still listed
    in ``export_tables_info``. Outcomes for tables that ``export_only`` leaves out are ignored.
    A name that is not a sample table, or an unknown status, raises ``ValueError`` before
    anything is written.

    With ``kms_key_id`` every object is written SSE-KMS with that key, as RDS does.

    The contents depend only on the arguments: the same seed gives the same rows and file
    names. ``task_end_time`` defaults to now, ``task_start_time`` to ``task_end_time`` and
    ``snapshot_time`` to ``task_start_time``. Pass all three for output that is identical byte
    for byte.
    """
    outcomes = dict(table_outcomes or {})
    _check_outcomes(outcomes)
    folder = export_folder(s3_prefix, export_task_id)
    end = task_end_time or datetime.now(UTC)
    start = task_start_time or end
    snapshot = snapshot_time or start
    writer = _Writer(s3, bucket, kms_key_id)

    entries: list[dict[str, Any]] = []
    table_status: dict[str, str] = {}
    data_bytes = 0
    for ref in select_tables(export_only):
        status = outcomes.get(ref.target, STATUS_COMPLETE)
        entry, table_bytes = _export_table(
            writer,
            folder,
            _SPECS[ref.target],
            status,
            export_task_id=export_task_id,
            seed=seed,
            start=start,
            end=end,
        )
        table_status[ref.target] = status
        entries.append(entry)
        data_bytes += table_bytes

    if entries:
        writer.put(
            export_tables_info_key(s3_prefix, export_task_id, 1, len(entries)),
            json.dumps({"perTableStatus": entries}, indent=2).encode(),
            "application/json",
        )
    info = _export_info(
        export_task_id=export_task_id,
        source_arn=source_arn,
        export_only=export_only,
        bucket=bucket,
        s3_prefix=s3_prefix,
        folder=folder,
        iam_role_arn=iam_role_arn,
        kms_key_id=kms_key_id,
        times=(snapshot, start, end),
        table_status=table_status,
        data_bytes=data_bytes,
    )
    writer.put(
        export_info_key(s3_prefix, export_task_id),
        json.dumps(info, indent=2).encode(),
        "application/json",
    )
    return ExportResult(
        folder=folder,
        keys=writer.keys,
        total_bytes=writer.total_bytes,
        data_bytes=data_bytes,
        table_status=table_status,
    )
