"""docs/snowflake.md's type table is what snowflake_sql.types does with every row of AWS's
conversion tables (transcribed in tests/fixtures/aws_docs/rds_export_data_types.json, page
cited there)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from snowflake_sql.types import snowflake_type

REPO = Path(__file__).resolve().parents[2]
TABLES = json.loads((REPO / "tests/fixtures/aws_docs/rds_export_data_types.json").read_text())
DOC = (REPO / "docs/snowflake.md").read_text()

EDGES = {
    "NUMBER": "every value of the declared range, exactly",
    "FLOAT": "64-bit IEEE: NaN and infinities kept",
    "BOOLEAN": "true / false",
    "BINARY": "any bytes; a value above 8 MB (Snowflake's BINARY limit) fails the load, named",
    "VARCHAR": "the exported text exactly",
    "TIMESTAMP_NTZ": "wall-clock time as written (session TIMEZONE pinned to UTC)",
    "TIMESTAMP_TZ": "the instant, offset +00:00",
    "VARIANT": "parsed JSON; a value above Snowflake's VARIANT size limit fails the load, named",
}


def _parquet(row: dict[str, Any]) -> dict[str, Any] | None:
    physical = re.sub(r"\(.*\)", "", row["parquet_primitive_type"])
    physical = {"FIXED_LEN_ARRAY": "FIXED_LEN_BYTE_ARRAY", "BINARY": "BYTE_ARRAY"}.get(
        physical, physical
    )
    if physical == "N/A":
        return None
    logical = row["logical_type_annotation"]
    out: dict[str, Any] = {"physical": physical, "logical": None}
    if logical == "STRING":
        out["logical"] = "STRING"
    elif logical.startswith("DECIMAL"):
        digits = re.findall(r"\d+", logical)
        precision = int(digits[0]) if digits else row.get("reading", {}).get("max_precision", 38)
        out.update(logical="DECIMAL", precision=precision, scale=int(digits[1]) if digits else 2)
    elif logical == "TIMESTAMP_MICROS":
        out.update(logical="TIMESTAMP", unit="MICROS", utc=True)
    elif logical.startswith("INT("):
        width, signed = re.findall(r"\w+", logical[4:])
        out.update(logical="INT", bit_width=int(width), signed=signed == "true")
    return out


def type_rows() -> list[str]:
    rows = []
    for engine, key in (("MySQL", "mysql_mariadb"), ("PostgreSQL", "postgresql")):
        for row in TABLES[key]:
            parquet = _parquet(row)
            if parquet is None:
                cells = [engine, row["source_type"], "not exported", "-", "-"]
            else:
                mapped = snowflake_type(
                    {"original_type": row["source_type"].lower(), "parquet": parquet}
                )
                written = row["parquet_primitive_type"]
                if row["logical_type_annotation"]:
                    written += f" {row['logical_type_annotation']}"
                edge = mapped.comment or EDGES[mapped.sql.split("(")[0]]
                if mapped.convert != "{}":
                    edge += (
                        f" (staged as {mapped.staging_sql}, loaded as {mapped.convert.format('x')})"
                    )
                cells = [engine, row["source_type"], written, mapped.sql, edge]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def test_the_docs_table_is_the_mapping_of_every_aws_row() -> None:
    rows = type_rows()
    assert len(rows) == len(TABLES["mysql_mariadb"]) + len(TABLES["postgresql"])
    missing = [r for r in rows if r not in DOC]
    assert not missing, "docs/snowflake.md lacks:\n" + "\n".join(missing)


if __name__ == "__main__":
    print("\n".join(type_rows()))
