"""The export manifest: one small JSON file that tells Snowflake what the newest export holds.

RDS writes, under ``<s3_prefix>/<export_task_id>/``, an ``export_info`` file, one or more
``export_tables_info_*`` files and the Parquet data. A loader that reads those directly has to
list the bucket, pick the export folder, merge the tables-info pages and map each table to its
folder. The manifest does that once, at the end of a successful run, and puts the answer at a
fixed key, ``<s3_prefix>/_manifest.json``, so that a Snowflake task can read one file and know:
which export is current (``export_task_id``), which tables it holds, with which status, where
each table's files are and what the source column types were.

This module is pure and uses only the standard library: it runs in the Lambda runtime, which
ships boto3 and nothing else. Reading S3 and writing the file is the caller's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

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

MANIFEST_VERSION: Final = 1

STATUS_COMPLETE: Final = "COMPLETE"

MAX_FILES_LISTED: Final = 10_000
"""Above this many data files a table's ``files`` list is dropped (``files_omitted: true``).

Why: a load never needs the list (it reads the table's folder, ``@stage/<task>/<folder>/``);
the list is there for people and for checks. At ~60 bytes a relative key, 10,000 files is
~600 KB per table, which keeps a manifest of a few hundred tables readable in one GET and far
below Snowflake's 16 MB limit on one VARIANT value, which is what the task reads the whole
manifest into. ``folder`` and ``file_count`` are always kept.
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


def table_folder(target: str) -> str:
    """The folder of a table's data files, relative to the export folder.

    RDS names a table ``<database>.<schema>.<table>`` in ``export_tables_info`` and writes its
    files under ``<database>/<schema>.<table>/<batch>/``: the first ``.`` becomes ``/``. That
    rule holds for a schema or table name that itself contains a dot (the database name is
    the part before the first dot), and for the two-part ``<database>.<table>`` of MySQL.
    """
    database, dot, rest = target.partition(".")
    if not dot or not database or not rest:
        raise ValueError(f"table target {target!r} is not <database>.<schema>.<table>")
    return f"{database}/{rest}"


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


def _files_by_folder(
    folder_prefix: str, data_keys: Iterable[str], folders: Sequence[str]
) -> dict[str, list[str]]:
    """Each table folder's Parquet keys, relative to the export folder, sorted."""
    found: dict[str, list[str]] = {folder: [] for folder in folders}
    # The trailing "/" keeps "db/s.t" from taking the files of "db/s.t2/"; longest first in
    # case one table's folder is a leading part of another's path.
    ordered = sorted(folders, key=len, reverse=True)
    for key in data_keys:
        if not key.startswith(folder_prefix) or not key.endswith(PARQUET_SUFFIX):
            continue
        relative = key[len(folder_prefix) :]
        for folder in ordered:
            if relative.startswith(f"{folder}/"):
                found[folder].append(relative)
                break
    return {folder: sorted(keys) for folder, keys in found.items()}


def build_manifest(
    *,
    bucket: str,
    s3_prefix: str,
    export_task_id: str,
    export_info: Mapping[str, Any],
    tables_info: Sequence[Mapping[str, Any]],
    data_keys: Sequence[str],
    database: Mapping[str, Any],
    snapshot: Mapping[str, Any],
    execution: str,
    written_at: str,
) -> dict[str, Any]:
    """The manifest of one export, as a JSON-safe dict (see the module docstring).

    ``tables_info`` is the concatenation of the ``perTableStatus`` lists of every
    ``export_tables_info`` file; ``data_keys`` is every key under the export folder (the
    metadata files are ignored). A table that RDS skipped or failed is listed with its status
    and no files. Raises :class:`ManifestTooLarge` above :data:`MAX_MANIFEST_BYTES`.
    """
    info_id = export_info.get("exportTaskIdentifier")
    if info_id is not None and info_id != export_task_id:
        raise ValueError(f"export_info is for task {info_id!r}, not {export_task_id!r}")
    prefix = s3_prefix.strip("/")
    folder = export_folder(prefix, export_task_id)
    entries = [entry for entry in tables_info if "target" in entry]
    folders = [table_folder(str(entry["target"])) for entry in entries]
    files = _files_by_folder(folder, data_keys, folders)

    tables = []
    for entry, table_dir in zip(entries, folders, strict=True):
        table_files = files[table_dir]
        table: dict[str, Any] = {
            "target": str(entry["target"]),
            "status": str(entry.get("status", "")),
            "folder": f"{folder}{table_dir}/",
            "file_count": len(table_files),
        }
        if len(table_files) > MAX_FILES_LISTED:
            table["files_omitted"] = True
        else:
            table["files"] = table_files
        for source, name in (("warningMessage", "warning"), ("failureCause", "failure_cause")):
            if entry.get(source):
                table[name] = str(entry[source])
        table["columns"] = _columns(entry)
        tables.append(table)

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


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as the bytes to write: compact UTF-8 JSON, keys in a stable order."""
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
