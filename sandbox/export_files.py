"""The files an RDS snapshot export writes to S3, written by the sandbox.

moto's ``start_export_task`` records the task and writes nothing, so the local mode calls
:func:`write_export` to put into the (moto) bucket what RDS would have written for a source
database (a :class:`sandbox.fixture_db.FixtureDatabase`; by default the small PostgreSQL sample
``shop``): two JSON metadata files and real gzip-compressed Parquet data files, under
``<s3_prefix>/<export_task_id>/``. ``export_info`` is written last, so that its presence means
the folder is complete.

Each column is written with the Parquet type AWS's data-conversion tables give for its engine
(:mod:`sandbox.parquet_types`). The layout is AWS's, "File naming conventions for exports to
Amazon S3" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.FileNames.html):
``<export id>/<database>/<schema>.<table>/<batch index>/part-<partition>-<uuid>-c000.gz.parquet``,
with several batch folders for some tables and gaps in the partition numbers, MySQL's schema
being the database (AWS's example is ``rdststdb/rdststdb.DataInsert_7ADB5D19965123A2/``), and a
space, ``\\``, backtick or ``"`` in a name written as ``_`` in the path
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html,
"Limitations").

docs/sandbox.md lists which field names are verified, which are guessed, and which are the
sandbox's own (the ``sandbox`` object in ``export_info``: pipeline code must not depend on it),
and, in one place, what AWS does not document and what the sandbox writes instead.
"""

from __future__ import annotations

import io
import json
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.fixture_db import Engine, FixtureColumn, FixtureDatabase, FixtureTable
from sandbox.parquet_types import arrow_value, parquet_type

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
"""The batch folder of a table that RDS reads in one batch (the sample's tables)."""

MysqlTarget = Literal["db.table", "db.db.table"]
"""How ``export_tables_info`` spells a MySQL table's ``target``: AWS documents neither."""
TypeSpelling = Literal["data_type", "column_type"]
"""What ``originalType`` holds for a MySQL column: information_schema's DATA_TYPE
(``bigint``: no ``unsigned``) or COLUMN_TYPE (``bigint unsigned``). AWS documents neither."""
EmptyTableFiles = Literal["none", "one_empty_file"]
"""What RDS writes for a table with no rows: AWS documents that an empty partition gets no file,
not what an empty table gets."""

_GB: Final = 1024**3
_EPOCH: Final = datetime(2024, 1, 1)  # naive: the sample columns are "timestamp without time zone"
_PATH_SUBSTITUTED: Final = re.compile(r'[ \\`"]')


def path_segment(name: str) -> str:
    """A database, schema or table name as RDS writes it in an S3 path: a space, ``\\``,
    backtick or ``"`` becomes ``_`` (USER_ExportSnapshot.html, "Limitations")."""
    return _PATH_SUBSTITUTED.sub("_", name)


def table_folder(table: FixtureTable) -> str:
    """``<database>/<schema>.<table>``, each part path-substituted: the table's base prefix."""
    return f"{path_segment(table.database)}/{path_segment(table.schema)}.{path_segment(table.name)}"


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
        return (
            f"{path_segment(self.database)}/{path_segment(self.schema)}.{path_segment(self.table)}"
        )


@dataclass(frozen=True)
class TableSpec:
    """A sample table: its columns, its row count, and the partition numbers RDS "used"."""

    ref: TableRef
    columns: tuple[FixtureColumn, ...]
    row_count: int
    partitions: tuple[int, ...] = (0,)


def _bigint(name: str) -> FixtureColumn:
    return FixtureColumn(name, "BIGINT", "bigint", precision=64)


def _integer(name: str) -> FixtureColumn:
    return FixtureColumn(name, "INTEGER", "integer", precision=32)


def _varchar(name: str, length: int) -> FixtureColumn:
    return FixtureColumn(name, "VARCHAR(N)", f"character varying({length})", char_length=length)


def _timestamp(name: str) -> FixtureColumn:
    return FixtureColumn(name, "TIMESTAMP", "timestamp without time zone", datetime_precision=6)


def _numeric(name: str, precision: int, scale: int) -> FixtureColumn:
    return FixtureColumn(
        name, "DECIMAL", f"numeric({precision},{scale})", precision=precision, scale=scale
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
"""The sample database (PostgreSQL), in the order RDS lists its tables here."""

SAMPLE_TABLES: Final[tuple[TableRef, ...]] = tuple(spec.ref for spec in SAMPLE_SCHEMA)
_SPECS: Final[dict[str, TableSpec]] = {spec.ref.target: spec for spec in SAMPLE_SCHEMA}


# --- the sample's rows -------------------------------------------------------------------

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


_ROWS: Final = {
    CUSTOMERS.ref.target: _customers,
    ORDERS.ref.target: _orders,
    ORDER_ITEMS.ref.target: _order_items,
}


def _sample_fixture_table(spec: TableSpec, seed: int) -> FixtureTable:
    # seeded on purpose: sample rows must be reproducible, not secret
    columns = _ROWS[spec.ref.target](random.Random(f"{seed}:{spec.ref.target}"))  # nosec B311
    rows = tuple(zip(*(columns[c.name] for c in spec.columns), strict=True))
    return FixtureTable(
        spec.ref.database,
        spec.ref.schema,
        spec.ref.table,
        spec.columns,
        rows,
        files=tuple((BATCH, partition) for partition in spec.partitions),
    )


def sample_database(seed: int = 0) -> FixtureDatabase:
    """The small PostgreSQL sample ``shop`` (customers, orders, order_items); seeded rows."""
    return FixtureDatabase(
        "postgres", DATABASE, tuple(_sample_fixture_table(spec, seed) for spec in SAMPLE_SCHEMA)
    )


def arrow_table(engine: Engine, table: FixtureTable, rows: Sequence[tuple[Any, ...]]) -> Any:
    """``rows`` of ``table`` as the ``pyarrow.Table`` RDS would write, column types per AWS's
    conversion table for ``engine`` (see :mod:`sandbox.parquet_types`)."""
    fields, arrays = [], []
    for i, column in enumerate(table.columns):
        written = parquet_type(engine, column)
        values = [arrow_value(engine, column, written.kind, row[i]) for row in rows]
        fields.append(pa.field(column.name, written.arrow_type, nullable=True))
        arrays.append(pa.array(values, type=written.arrow_type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def sample_table(ref: TableRef, seed: int = 0) -> Any:
    """One sample table as the ``pyarrow.Table`` written for it; the same seed, the same rows."""
    table = _sample_fixture_table(_SPECS[ref.target], seed)
    return arrow_table("postgres", table, table.rows)


# --- ExportOnly ----------------------------------------------------------------------------


def _matches(table: FixtureTable, name: str) -> bool:
    parts = name.split(".")
    if parts[0] != table.database:
        return False
    if len(parts) == 1:  # database
        return True
    if len(parts) == 2:  # database.schema (PostgreSQL) or database.table (MySQL, MariaDB)
        return parts[1] in (table.schema, table.name)
    if len(parts) == 3:  # database.schema.table (PostgreSQL)
        return parts[1] == table.schema and parts[2] == table.name
    return False


def select_tables(
    export_only: Sequence[str], database: FixtureDatabase | None = None
) -> list[TableRef]:
    """The tables of ``database`` (the sample by default) an ``ExportOnly`` list selects.

    An empty list selects every table. Each name selects what it matches:
    ``database``, ``database.schema``, ``database.schema.table``, or the MySQL form
    ``database.table``. Names match exactly (case-sensitive). A name that matches nothing
    selects nothing and is not an error. The result keeps the schema's order and has no
    duplicates.
    """
    source = database or sample_database()
    return [
        TableRef(t.database, t.schema, t.name)
        for t in source.tables
        if not export_only or any(_matches(t, name) for name in export_only)
    ]


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


def data_file_key(
    folder: str, table_path: str, batch: int, partition: int, file_id: uuid.UUID
) -> str:
    """``<folder><database>/<schema>.<table>/<batch>/part-<partition>-<uuid>-c000.gz.parquet``,
    the current naming convention of USER_ExportSnapshot.FileNames.html (whose examples carry
    the ``-c000`` before ``.gz.parquet``)."""
    return f"{folder}{table_path}/{batch}/part-{partition:05d}-{file_id}-c000.gz.parquet"


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
    """``target`` (as in ``export_tables_info``) -> ``COMPLETE``, ``FAILED`` or ``SKIPPED``;
    selected tables."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def parquet_bytes(table: Any) -> bytes:
    """A ``pyarrow.Table`` as a gzip-compressed Parquet file. ``store_decimal_as_integer``
    writes a DECIMAL of precision up to 9 as INT32 and up to 18 as INT64, as AWS's MySQL table
    says; above 18, pyarrow writes a FIXED_LEN_BYTE_ARRAY of the smallest width."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="gzip", store_decimal_as_integer=True)
    return buffer.getvalue()


def _slices(rows: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    size = -(-len(rows) // parts) if rows else 0  # ceiling division: the last part may be shorter
    return [rows[i * size : (i + 1) * size] for i in range(parts)]


def _file_id(seed: int, export_task_id: str, target: str, batch: int, partition: int) -> uuid.UUID:
    rng = random.Random(f"{seed}:{export_task_id}:{target}:{batch}:{partition}")  # nosec B311
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def table_target(
    engine: Engine, table: FixtureTable, mysql_target: MysqlTarget = "db.table"
) -> str:
    """The ``target`` ``export_tables_info`` gives a table: ``database.schema.table`` on
    PostgreSQL; on MySQL (no schema but the database) ``database.table`` or
    ``database.database.table``, as ``mysql_target`` says: AWS documents neither."""
    if engine == "mysql" and mysql_target == "db.table":
        return f"{table.database}.{table.name}"
    return table.target


_PG_OWN_TYPES: Final = {
    "mood": "USER-DEFINED",
    "address": "USER-DEFINED",
    "positive_int": "integer",
}
_PG_SERIALS: Final = {"smallserial": "smallint", "serial": "integer", "bigserial": "bigint"}


def original_type(engine: Engine, column: FixtureColumn, spelling: TypeSpelling) -> str:
    """``originalType`` for a column: AWS documents the field, not its spelling.

    PostgreSQL: information_schema's ``data_type`` (``numeric``, ``ARRAY``, ``USER-DEFINED``
    for an enum or a composite type, a domain's base type), the spelling public code that reads
    real exports expects. MySQL: ``DATA_TYPE`` (``bigint``, no ``unsigned``) or ``COLUMN_TYPE``
    (``bigint unsigned``, ``decimal(38,10)``), as ``spelling`` says.
    """
    declared = column.sql_type
    if engine == "postgres":
        if declared.endswith("[]"):
            return "ARRAY"
        if declared in _PG_OWN_TYPES:
            return _PG_OWN_TYPES[declared]
        base = re.sub(r"\(.*?\)", "", declared).strip()
        return _PG_SERIALS.get(base, base)
    if spelling == "column_type":
        return declared
    return re.split(r"[ (]", declared, maxsplit=1)[0]


def _column_mapping(
    engine: Engine, column: FixtureColumn, spelling: TypeSpelling
) -> dict[str, Any]:
    return {
        "columnName": column.name,
        "originalType": original_type(engine, column, spelling),
        "expectedExportedType": parquet_type(engine, column).exported_type,
        "originalCharMaxLength": column.char_length,
        "originalNumPrecision": column.precision,
        "originalDateTimePrecision": column.datetime_precision,
    }


@dataclass(frozen=True)
class _Options:
    engine: Engine
    export_task_id: str
    seed: int
    start: datetime
    end: datetime
    mysql_target: MysqlTarget
    type_spelling: TypeSpelling
    empty_table_files: EmptyTableFiles


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
    writer: _Writer, folder: str, table: FixtureTable, *, target: str, status: str, opts: _Options
) -> tuple[dict[str, Any], int]:
    """Write one table's data files (if it exported); its tables-info entry and data bytes."""
    entry: dict[str, Any] = {"target": target, "status": status}
    if status == STATUS_SKIPPED:
        entry |= {"warningMessage": table.skipped_reason or SKIPPED_REASON, "sizeGB": 0.0}
        return entry, 0
    if status == STATUS_FAILED:
        cause = f"Export of table {target} failed (simulated by the sandbox)."
        entry |= {"failureCause": cause, "sizeGB": 0.0}
        return entry, 0
    files = table.files
    if not table.rows:
        # An empty partition gets no file (USER_ExportSnapshot.FileNames.html); what an empty
        # table gets is undocumented: no file by default, or one file of no rows.
        files = files[:1] if opts.empty_table_files == "one_empty_file" else ()
    data_bytes = 0
    table_path = table_folder(table)
    for (batch, partition), rows in zip(
        files, _slices(table.rows, max(len(files), 1)), strict=False
    ):
        body = parquet_bytes(arrow_table(opts.engine, table, rows))
        file_id = _file_id(opts.seed, opts.export_task_id, target, batch, partition)
        key = data_file_key(folder, table_path, batch, partition, file_id)
        writer.put(key, body, "application/octet-stream")
        data_bytes += len(body)
    entry["sizeGB"] = data_bytes / _GB
    entry["tableStatistics"] = {
        "extractionStartTime": _iso(opts.start),
        "extractionEndTime": _iso(opts.end),
        "partitioningInfo": {
            "numberOfPartitions": len(files),
            "numberOfCompletedPartitions": len(files),
        },
    }
    entry["schemaMetadata"] = {
        "originalTypeMappings": [
            _column_mapping(opts.engine, c, opts.type_spelling) for c in table.columns
        ]
    }
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


def _check_outcomes(table_outcomes: Mapping[str, str], targets: Sequence[str]) -> None:
    for target, status in table_outcomes.items():
        if target not in targets:
            known = ", ".join(sorted(targets))
            raise ValueError(f"table_outcomes names {target!r}, not a sample table ({known})")
        if status not in TABLE_STATUSES:
            allowed = ", ".join(sorted(TABLE_STATUSES))
            raise ValueError(f"table_outcomes[{target!r}] is {status!r}, not one of {allowed}")


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
    database: FixtureDatabase | None = None,
    mysql_target: MysqlTarget = "db.table",
    type_spelling: TypeSpelling = "data_type",
    empty_table_files: EmptyTableFiles = "none",
) -> ExportResult:
    """Write into ``bucket`` the files an RDS export of ``database`` would write.

    ``database`` defaults to the sample ``shop`` with rows drawn from ``seed``; a
    :mod:`sandbox.fixture_db` database is written with its own rows (``seed`` then only names
    the files). ``table_outcomes`` maps a table's ``target`` (as ``export_tables_info`` spells
    it) to ``COMPLETE`` (the default), ``FAILED`` or ``SKIPPED``. A table the fixture marks as
    skipped by RDS is SKIPPED. A failed or skipped table gets no data file and is still listed
    in ``export_tables_info``. Outcomes for tables that ``export_only`` leaves out are ignored.
    A name that is not a table, or an unknown status, raises ``ValueError`` before anything is
    written. ``mysql_target``, ``type_spelling`` and ``empty_table_files`` choose between the
    readings of what AWS does not document (docs/sandbox.md).

    With ``kms_key_id`` every object is written SSE-KMS with that key, as RDS does.

    The contents depend only on the arguments: the same seed gives the same rows and file
    names. ``task_end_time`` defaults to now, ``task_start_time`` to ``task_end_time`` and
    ``snapshot_time`` to ``task_start_time``. Pass all three for output that is identical byte
    for byte.
    """
    source = database or sample_database(seed)
    targets = {table_target(source.engine, t, mysql_target): t for t in source.tables}
    outcomes = dict(table_outcomes or {})
    _check_outcomes(outcomes, list(targets))
    folder = export_folder(s3_prefix, export_task_id)
    end = task_end_time or datetime.now(UTC)
    start = task_start_time or end
    snapshot = snapshot_time or start
    writer = _Writer(s3, bucket, kms_key_id)
    opts = _Options(
        source.engine, export_task_id, seed, start, end, mysql_target, type_spelling,
        empty_table_files,
    )  # fmt: skip

    entries: list[dict[str, Any]] = []
    table_status: dict[str, str] = {}
    data_bytes = 0
    selected = {(r.database, r.schema, r.table) for r in select_tables(export_only, source)}
    for target, table in targets.items():
        if (table.database, table.schema, table.name) not in selected:
            continue
        default = STATUS_COMPLETE if table.exported else STATUS_SKIPPED
        status = outcomes.get(target, default)
        entry, table_bytes = _export_table(
            writer, folder, table, target=target, status=status, opts=opts
        )
        table_status[target] = status
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
