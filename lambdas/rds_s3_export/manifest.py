"""The export manifest: one small JSON file that tells Snowflake what the newest export holds.

RDS writes, under ``<s3_prefix>/<export_task_id>/``, an ``export_info`` file, one or more
``export_tables_info_*`` files and the Parquet data. A loader that reads those directly has to
list the bucket, pick the export folder, merge the tables-info pages and map each table to its
folder. The manifest does that once, at the end of a successful run, and puts the answer at a
fixed key, ``<s3_prefix>/_manifest.json``, so that a Snowflake task can read one file and know:
which export is current (``export_task_id``), which tables it holds, with which status, where
each table's files are, how many rows each file holds (read from its Parquet footer), and each
column's type twice: as RDS describes the source column and as the Parquet file stores it.

A table's folder and files are found by listing the export and matching what is there to
export_tables_info (see "where each table's files are" below), never derived from a name
alone; and a COMPLETE table whose files cannot be found is an error, never an empty table.

This module is pure and uses only the standard library: it runs in the Lambda runtime, which
ships boto3 and nothing else. Reading S3 and writing the file is the caller's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from rds_s3_export.parquet_footer import Footer

MANIFEST_NAME: Final = "_manifest.json"
"""The manifest's file name, directly under the prefix.

Why a top-level key beside the export folders, and why the leading ``_``:

* it sits at a key that does not change from night to night, so the Snowflake stage (whose URL
  is the prefix) can read ``@stage/_manifest.json`` without knowing the export task id;
* it can never be taken for an export folder, nor land inside one: export task ids are RDS
  identifiers, which start with a letter, so no export folder is named ``_...``; and the
  purge keeps loose files under the prefix (it deletes only export folders);
* a ``PUT`` of one object replaces it atomically, so a reader sees the old or the new
  manifest, never half of one.
"""

MANIFEST_VERSION: Final = 2
"""2: tables carry row counts, files with their rows and sizes, and each column's Parquet type."""

STATUS_COMPLETE: Final = "COMPLETE"

MAX_FILES_LISTED: Final = 5_000
"""Above this many data files a table's ``files`` list is dropped (``files_omitted: true``).

Why: a load never needs the list (it reads the table's folder, ``@stage/<task>/<folder>/``,
and checks the table's ``row_count``); the list is there for people and for checks. At ~130
bytes a file (its relative path, rows and size), 5,000 files is ~650 KB per table, which
keeps a manifest of a few hundred tables readable in one GET and below Snowflake's 16 MB
limit on one VARIANT value, which is what the task reads the whole manifest into.
``folder``, ``file_count`` and ``row_count`` are always kept.
"""

MAX_MANIFEST_BYTES: Final = 50 * 1024 * 1024
"""The cap on the serialised manifest; :func:`build_manifest` raises above it.

S3 takes far larger objects; the cap only catches a runaway input (a listing gone wrong) before
a Lambda tries to hold and upload it. A real manifest, with ``files`` capped per table, is
hundreds of times smaller.
"""

PARQUET_SUFFIX: Final = ".parquet"


class ManifestTooLarge(ValueError):
    """The manifest would exceed :data:`MAX_MANIFEST_BYTES`."""


def manifest_key(s3_prefix: str) -> str:
    """``<s3_prefix>/_manifest.json``: the manifest's key (see :data:`MANIFEST_NAME`)."""
    prefix = s3_prefix.strip("/")
    return f"{prefix}/{MANIFEST_NAME}" if prefix else MANIFEST_NAME


def export_folder(s3_prefix: str, export_task_id: str) -> str:
    """``<s3_prefix>/<export_task_id>/``, with the trailing ``/`` that bounds the folder."""
    prefix = s3_prefix.strip("/")
    return f"{prefix}/{export_task_id}/" if prefix else f"{export_task_id}/"


# --- where each table's files are: found by listing, matched to export_tables_info ----------
#
# What AWS documents (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/
# USER_ExportSnapshot.FileNames.html): a table's files are under
# `<export id>/<database>/<schema>.<table>/`, in batch folders `<batch index>/part-<partition
# index>-<uuid>.<extension>` (the current convention; files of the older one sit directly in
# the table's folder); a table can span several batch folders and partition numbers can have
# gaps. The example is a MySQL export, `rdststdb/rdststdb.DataInsert_7ADB5D19965123A2/`: for
# MySQL the schema is the database. In the S3 path, a space, `\`, a backtick and `"` become `_`
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/
# aurora-export-snapshot.Considerations.html, "Limitations").
#
# What AWS does not document: how export_tables_info spells a MySQL table's `target` (the
# documented ExportOnly forms are `database.table` for MySQL, `database.schema.table` for
# PostgreSQL; a MySQL target may as well read `database.database.table`). Nor does it document
# a row count per table. So a folder is never built from a target: the export is listed, and
# each folder `<db>/<rest>/` that holds Parquet files is matched to the targets it can belong
# to, with the substitution applied to the target (never undone on the folder, which is lossy):
#
# * `sub(target) == db + "." + rest`: the three-part spelling, `db.schema.table` in
#   `db/schema.table/` (and a two-part `db.table` written to `db/table/`);
# * `sub(target) == rest` and `rest` starts with `db + "."`: the two-part MySQL spelling,
#   `db.table` in `db/db.table/`.
#
# Neither needs the target split at a dot, so dots inside names do no harm. A folder that
# matches two targets (`a b` and `a_b` both become `a_b`), a target that matches two folders, a
# folder that matches none, and a COMPLETE table with no folder are mismatches: the export does
# not say where a table's rows are, and nothing may be published or purged on a guess.

PATH_SUBSTITUTED: Final = frozenset(' \\`"')
"""The characters RDS replaces with ``_`` in an export's S3 paths (see above)."""

MAX_PROBLEMS_SHOWN: Final = 5  # in an error message; the rest are counted
MAX_FOUND_SHOWN: Final = 8  # folders named as "found" beside a missing table


class ExportMismatch(ValueError):
    """The export's files do not match its export_tables_info (see :func:`locate_tables`)."""


def path_segment(name: str) -> str:
    """``name`` as RDS writes it in an S3 path: space, ``\\``, backtick and ``"`` become ``_``."""
    return "".join("_" if char in PATH_SUBSTITUTED else char for char in name)


@dataclass(frozen=True)
class DataFile:
    key: str  # the full S3 key
    size: int  # bytes, from the listing


@dataclass
class LocatedTable:
    entry: Mapping[str, Any]  # its export_tables_info entry
    target: str
    status: str
    folder: str | None  # relative to the export folder, `<db>/<rest>/`; None: no files
    files: list[DataFile] = field(default_factory=list)  # sorted by key


def rds_says_empty(entry: Mapping[str, Any]) -> bool:
    """RDS's own metadata shows the table empty: its ``sizeGB`` is the number 0.

    The only size RDS writes per table in export_tables_info (docs/sandbox.md lists the fields
    public readers of real exports use); AWS documents no per-table row count. A missing or
    non-numeric ``sizeGB`` is not evidence of an empty table."""
    size = entry.get("sizeGB")
    return not isinstance(size, bool) and isinstance(size, (int, float)) and size == 0


def _folders(
    export_dir: str, listing: Iterable[tuple[str, int]]
) -> tuple[dict[str, list[DataFile]], list[str]]:
    """(`{"<db>/<rest>/": [DataFile]}` for every Parquet key at least two folders deep below
    the export folder, stray Parquet keys above that depth)."""
    folders: dict[str, list[DataFile]] = {}
    stray: list[str] = []
    for key, size in listing:
        if not key.startswith(export_dir) or not key.endswith(PARQUET_SUFFIX):
            continue
        parts = key[len(export_dir) :].split("/")
        if len(parts) < 3 or not parts[0] or not parts[1]:
            stray.append(key)
            continue
        folders.setdefault(f"{parts[0]}/{parts[1]}/", []).append(DataFile(key, int(size)))
    return folders, sorted(stray)


def _owners(folder: str, by_spelling: Mapping[str, list[LocatedTable]]) -> list[LocatedTable]:
    """The tables whose target, as RDS spells it in a path, fits ``<db>/<rest>/``: as
    ``db.rest`` (three parts, or MySQL's ``db.table`` in ``db/table/``), or as ``rest`` when
    ``rest`` starts with ``db.`` (MySQL's ``db.table`` in ``db/db.table/``)."""
    database, _, rest = folder.rstrip("/").partition("/")
    found = list(by_spelling.get(f"{database}.{rest}", []))
    if rest.startswith(f"{database}."):
        found += by_spelling.get(rest, [])  # another key of by_spelling: no table twice
    return found


def _looked_for(target: str) -> list[str]:
    """The folders a target's files would be in, under either spelling (for messages)."""
    database, dot, rest = target.partition(".")
    if not dot:
        return []
    db = path_segment(database)
    return list(dict.fromkeys([f"{db}/{path_segment(rest)}/", f"{db}/{path_segment(target)}/"]))


def _shown(items: Sequence[str], limit: int) -> str:
    if not items:
        return "nothing"
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def locate_tables(
    export_dir: str,
    tables_info: Sequence[Mapping[str, Any]],
    listing: Iterable[tuple[str, int]],
) -> tuple[list[LocatedTable], list[str]]:
    """Each table of ``tables_info`` with its folder and Parquet files, found in ``listing``
    (``(key, size)`` of every key under ``export_dir``, the export folder with its ``/``),
    and the mismatches, each a sentence naming the table or folder (empty: all is well).

    Entries without a dotted ``target`` (RDS may write one for the database itself) are not
    tables and are left out. A COMPLETE table with no files is a mismatch unless RDS's
    metadata shows it empty (:func:`rds_says_empty`). SKIPPED and FAILED tables may have
    files or not."""
    folders, stray = _folders(export_dir, listing)
    entries = [e for e in tables_info if "." in str(e.get("target", ""))]
    tables = [
        LocatedTable(entry=e, target=str(e["target"]), status=str(e.get("status", "")), folder=None)
        for e in entries
    ]
    by_spelling: dict[str, list[LocatedTable]] = {}
    for table in tables:
        by_spelling.setdefault(path_segment(table.target), []).append(table)
    problems: list[str] = []
    claimed: dict[int, list[str]] = {}  # id(table) -> the folders that are its alone
    shared: set[int] = set()  # tables whose folder another table also matches
    for folder in sorted(folders):
        found = _owners(folder, by_spelling)
        if len(found) > 1:
            names = ", ".join(t.target for t in found)
            problems.append(f"folder {export_dir}{folder} matches more than one table: {names}")
            shared.update(id(t) for t in found)
        elif not found:
            problems.append(
                f"folder {export_dir}{folder} ({len(folders[folder])} Parquet files) matches "
                "no table of export_tables_info"
            )
        else:
            claimed.setdefault(id(found[0]), []).append(folder)
    for table in tables:
        if id(table) in shared:
            continue  # reported above
        mine = claimed.get(id(table), [])
        if len(mine) > 1:
            problems.append(
                f"table {table.target} matches more than one folder: "
                + ", ".join(f"{export_dir}{f}" for f in mine)
            )
            continue
        if mine:
            table.folder = mine[0]
            table.files = sorted(folders[mine[0]], key=lambda f: f.key)
            continue
        if table.status.upper() == STATUS_COMPLETE and not rds_says_empty(table.entry):
            looked = " or ".join(f"{export_dir}{f}" for f in _looked_for(table.target))
            database = path_segment(table.target.partition(".")[0])
            near = sorted(f for f in folders if f.startswith(f"{database}/"))
            problems.append(
                f"table {table.target} is COMPLETE but has no data files: looked for {looked}; "
                f"found under {export_dir}{database}/: {_shown(near, MAX_FOUND_SHOWN)}"
            )
    if stray:
        problems.append(
            f"{len(stray)} Parquet files are not in a <database>/<schema>.<table>/ folder: "
            + _shown(stray, MAX_FOUND_SHOWN)
        )
    return tables, problems


def mismatch_message(export_uri: str, problems: Sequence[str]) -> str:
    """One message for ``problems`` (at most MAX_PROBLEMS_SHOWN spelt out)."""
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = (
        f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more"
        if len(problems) > MAX_PROBLEMS_SHOWN
        else ""
    )
    return f"the files of export {export_uri} do not match its export_tables_info: {shown}{more}"


def _int_or_none(value: Any) -> int | None:
    """The ``original*`` numbers: RDS writes 0 where a property does not apply."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _scale(exported_type: str) -> int | None:
    """The scale of a decimal column, read from the exported type ``...DECIMAL(p,s)...``.

    ``originalTypeMappings`` carries a precision but no scale; the exported Parquet type, when
    it is a decimal, carries both.
    """
    text = exported_type.upper()
    start = text.find("DECIMAL(")
    if start < 0:
        return None
    inside = text[start + len("DECIMAL(") :].split(")", 1)[0]
    parts = [p.strip() for p in inside.split(",")]
    if len(parts) == 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def _columns(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    mappings = (entry.get("schemaMetadata") or {}).get("originalTypeMappings") or []
    columns = []
    for mapping in mappings:
        original = str(mapping.get("originalType", ""))
        exported = str(mapping.get("expectedExportedType", ""))
        columns.append(
            {
                "name": str(mapping["columnName"]),
                "original_type": original,
                "exported_type": exported,
                "precision": _int_or_none(mapping.get("originalNumPrecision")),
                "scale": _scale(exported),
                "char_length": _int_or_none(mapping.get("originalCharMaxLength")),
                "datetime_precision": _datetime_precision(mapping),
            }
        )
    return columns


def _datetime_precision(mapping: Mapping[str, Any]) -> int | None:
    # 0 is a real precision for a timestamp(0) column; it is also what RDS writes for columns
    # that have none. Keep 0 only for date/time types.
    value = mapping.get("originalDateTimePrecision")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    original = str(mapping.get("originalType", "")).lower()
    if value == 0 and not any(word in original for word in ("time", "date")):
        return None
    return value


def _parquet_columns(
    table: LocatedTable, footers: Mapping[str, Footer]
) -> tuple[dict[str, dict[str, Any]], list[str]] | None:
    """`{column name: its parquet object}` in the order of the files' schema, read from the
    table's footers (they must agree), or None for a table without files."""
    if not table.files:
        return None
    first = footers[table.files[0].key].columns
    for data_file in table.files[1:]:
        if footers[data_file.key].columns != first:
            raise ExportMismatch(
                f"the Parquet files of table {table.target} do not share one schema: "
                f"{table.files[0].key} and {data_file.key} differ"
            )
    return {c.name: c.as_manifest() for c in first}, [c.name for c in first]


def _table_columns(table: LocatedTable, footers: Mapping[str, Footer]) -> list[dict[str, Any]]:
    """RDS's columns (originalTypeMappings), each with its ``parquet`` type from the footers;
    then any column the files hold that RDS did not list (its RDS fields null)."""
    columns = _columns(table.entry)
    read = _parquet_columns(table, footers)
    if read is None:
        return [{**c, "parquet": None} for c in columns]
    types, order = read
    named = {c["name"] for c in columns}
    for column in columns:
        column["parquet"] = types.get(column["name"])
    for name in order:
        if name not in named:
            columns.append(
                {
                    "name": name,
                    "original_type": None,
                    "exported_type": None,
                    "precision": None,
                    "scale": None,
                    "char_length": None,
                    "datetime_precision": None,
                    "parquet": types[name],
                }
            )
    return columns


def footers_to_read(
    bucket: str,
    export_task_id: str,
    s3_prefix: str,
    tables_info: Sequence[Mapping[str, Any]],
    listing: Sequence[tuple[str, int]],
) -> list[DataFile]:
    """Every data file whose footer :func:`build_manifest` needs. Raises ExportMismatch."""
    export_dir = export_folder(s3_prefix.strip("/"), export_task_id)
    tables, problems = locate_tables(export_dir, tables_info, listing)
    if problems:
        raise ExportMismatch(mismatch_message(f"s3://{bucket}/{export_dir}", problems))
    return [f for t in tables for f in t.files]


def build_manifest(
    *,
    bucket: str,
    s3_prefix: str,
    export_task_id: str,
    export_info: Mapping[str, Any],
    tables_info: Sequence[Mapping[str, Any]],
    listing: Sequence[tuple[str, int]],
    footers: Mapping[str, Footer],
    database: Mapping[str, Any],
    snapshot: Mapping[str, Any],
    execution: str,
    written_at: str,
) -> dict[str, Any]:
    """The manifest of one export, as a JSON-safe dict (see the module docstring).

    ``tables_info`` is the concatenation of the ``perTableStatus`` lists of every
    ``export_tables_info`` file; ``listing`` is ``(key, size)`` of every key under the export
    folder (the metadata files are ignored); ``footers`` the footer of every data file, by key
    (:func:`footers_to_read` says which). A table that RDS skipped or failed is listed with its
    status and whatever files it has. Raises :class:`ExportMismatch` when the files do not
    match the tables (:func:`locate_tables`) and :class:`ManifestTooLarge` above
    :data:`MAX_MANIFEST_BYTES`.
    """
    info_id = export_info.get("exportTaskIdentifier")
    if info_id is not None and info_id != export_task_id:
        raise ValueError(f"export_info is for task {info_id!r}, not {export_task_id!r}")
    prefix = s3_prefix.strip("/")
    folder = export_folder(prefix, export_task_id)
    located, problems = locate_tables(folder, tables_info, listing)
    if problems:
        raise ExportMismatch(mismatch_message(f"s3://{bucket}/{folder}", problems))
    missing = [f.key for t in located for f in t.files if f.key not in footers]
    if missing:
        raise ValueError(f"no footer was read for {_shown(missing, MAX_FOUND_SHOWN)}")

    tables = []
    for table in located:
        table_dir = f"{folder}{table.folder}" if table.folder else _expected_folder(folder, table)
        files = [
            {
                "path": f.key[len(table_dir) :],
                "rows": footers[f.key].num_rows,
                "size": f.size,
            }
            for f in table.files
        ]
        entry: dict[str, Any] = {
            "target": table.target,
            "status": table.status,
            "folder": table_dir,
            "file_count": len(files),
            "row_count": sum(f["rows"] for f in files),
        }
        if len(files) > MAX_FILES_LISTED:
            entry["files_omitted"] = True
        else:
            entry["files"] = files
        for source, name in (("warningMessage", "warning"), ("failureCause", "failure_cause")):
            if table.entry.get(source):
                entry[name] = str(table.entry[source])
        entry["columns"] = _table_columns(table, footers)
        tables.append(entry)

    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "bucket": bucket,
        "s3_prefix": prefix,
        "export_folder": folder,
        "s3_uri": f"s3://{bucket}/{folder}",
        "export_task_id": export_task_id,
        "snapshot": {
            "id": snapshot.get("id"),
            "arn": snapshot.get("arn"),
            "time": snapshot.get("time"),
        },
        "database": {"kind": database.get("kind"), "id": database.get("id")},
        "execution": execution,
        "written_at": written_at,
        "export_status": export_info.get("status"),
        "tables": tables,
    }
    size = len(dumps(manifest))
    if size > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(
            f"the manifest of export {export_task_id} would be {size} bytes, above the "
            f"{MAX_MANIFEST_BYTES}-byte cap"
        )
    return manifest


def _expected_folder(export_dir: str, table: LocatedTable) -> str:
    """The folder of a table without files: where its three-part spelling would put them."""
    looked = _looked_for(table.target)
    return f"{export_dir}{looked[0]}" if looked else export_dir


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as the bytes to write: compact UTF-8 JSON, keys in a stable order."""
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
