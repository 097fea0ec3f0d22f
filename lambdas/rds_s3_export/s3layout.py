"""The S3 layout RDS writes, and which keys under a prefix belong to which export folder."""

from __future__ import annotations

from rds_s3_export import naming


def folder_prefix(s3_prefix: str, export_task_id: str) -> str:
    return f"{s3_prefix}/{export_task_id}/"


def export_info_key(s3_prefix: str, export_task_id: str) -> str:
    return f"{folder_prefix(s3_prefix, export_task_id)}export_info_{export_task_id}.json"


def tables_info_prefix(s3_prefix: str, export_task_id: str) -> str:
    return f"{folder_prefix(s3_prefix, export_task_id)}export_tables_info_{export_task_id}_from_"


def folder_of(s3_prefix: str, key: str) -> str | None:
    """The first path segment of `key` below `<s3_prefix>/`, or None if `key` is not below it
    or sits directly under it (a loose file, not in any export folder).

    The boundary is the `/` after the prefix: `exports/db` never matches `exports/db2/...`.
    """
    head = f"{s3_prefix}/"
    if not key.startswith(head):
        return None
    rest = key[len(head) :]
    folder, slash, _ = rest.partition("/")
    if not slash or not folder:
        return None
    return folder


def could_be_export_folder(folder: str) -> bool:
    """Only a valid export task id can be the name of an export folder."""
    return naming.is_export_task_id(folder)
