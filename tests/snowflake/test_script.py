"""The printed script: dependency order, run top to bottom on a fresh fakesnow connection, and
the statements fakesnow cannot execute, by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from snowflake_sql.generate import render, split_script
from snowflake_sql.local import NOT_ON_FAKESNOW, SUBSTITUTED, connect
from tests.snowflake.conftest import OPTIONS, TableSpec, fresh_snowflake, write_night

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _night(root: Path):
    import pyarrow as pa

    return write_night(
        root, "night-1", [TableSpec("shop.public.t", [("id", "bigint", pa.int64())], [(1,), (2,)])]
    )


def test_the_printed_script_runs_top_to_bottom_on_a_fresh_connection(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    night = _night(root)
    with connect() as cursor:  # creates no database or schema by itself
        assert not cursor.execute("SHOW DATABASES").fetchall()
    with fresh_snowflake(root, night) as snow:
        order = [name for name, _ in split_script(render(night.manifest, **OPTIONS))]
        # every statement was run, parsed or substituted, in the printed order
        assert sorted(snow.executed + snow.parsed + snow.substituted) == sorted(order)
        # what fakesnow could not execute, by name: the untested part
        assert snow.parsed == ["storage integration", "stream", "task", "task resume"]
        assert snow.substituted == ["session time zone", "stage", "procedure", "first load"]
        assert snow.executed == [n for n in order if n not in snow.parsed + snow.substituted]
        assert snow.first_load == "export night-1: 1 tables, 2 rows loaded; created PUBLIC_T"
    print(
        f"\nscript: {len(order)} statements, {len(snow.executed)} executed as printed, "
        f"{len(snow.substituted)} substituted, {len(snow.parsed)} parsed only: {snow.parsed}"
    )


def test_dependency_order_and_nothing_the_user_changes_is_if_not_exists(tmp_path: Path) -> None:
    night = _night(tmp_path)
    statements = dict(split_script(render(night.manifest, **OPTIONS)))
    order = list(statements)
    for before, after in [
        ("database", "schema"),
        ("schema", "parquet format"),
        ("parquet format", "stage"),
        ("storage integration", "stage"),
        ("stage", "control table"),
        ("control table", "procedure"),
        ("procedure", "stream"),
        ("stream", "task"),
        ("task", "task resume"),
        ("task resume", "first load"),
    ]:
        assert order.index(before) < order.index(after), (before, after)
    for name in ("parquet format", "manifest format", "stage", "procedure", "stream", "task"):
        assert statements[name].startswith("CREATE OR REPLACE"), name
    assert order[0] == "session time zone"
    assert statements["session time zone"] == "ALTER SESSION SET TIMEZONE = 'UTC'"


def test_the_file_format_pins_its_options(tmp_path: Path) -> None:
    fmt = dict(split_script(render(_night(tmp_path).manifest, **OPTIONS)))["parquet format"]
    for option in (
        "USE_LOGICAL_TYPE = TRUE",
        "BINARY_AS_TEXT = FALSE",
        "USE_VECTORIZED_SCANNER = TRUE",
        "REPLACE_INVALID_CHARACTERS = FALSE",
    ):
        assert option in fmt


def test_the_default_task_is_triggered_by_the_stream(tmp_path: Path) -> None:
    statements = dict(split_script(render(_night(tmp_path).manifest, **OPTIONS)))
    task = statements["task"]
    assert "SCHEDULE" not in task
    assert 'WHEN SYSTEM$STREAM_HAS_DATA(\'"RAW"."MYDB"."RDS_S3_EXPORT_MANIFESTS"\')' in task
    assert task.endswith('AS CALL "RAW"."MYDB"."RDS_S3_EXPORT_LOAD"()')
    assert statements["stream"] == (
        'CREATE OR REPLACE STREAM "RAW"."MYDB"."RDS_S3_EXPORT_MANIFESTS" '
        'ON STAGE "RAW"."MYDB"."RDS_MYDB"'
    )
    assert "DIRECTORY = (ENABLE = TRUE AUTO_REFRESH = TRUE)" in statements["stage"]
    procedure = statements["procedure"]
    for line in ("LANGUAGE PYTHON", "RUNTIME_VERSION = '3.11'", "HANDLER = 'run'"):
        assert line in procedure
    assert "PACKAGES = ('snowflake-snowpark-python')" in procedure


def test_a_schedule_and_notifications_when_asked(tmp_path: Path) -> None:
    manifest = _night(tmp_path).manifest
    script = render(
        manifest,
        **OPTIONS,
        schedule="USING CRON 0 7 * * * UTC",
        error_integration="LOAD_ERRORS",
        notify_email="data@example.com",
    )
    statements = dict(split_script(script))
    task = statements["task"]
    assert "SCHEDULE = 'USING CRON 0 7 * * * UTC'" in task and "WHEN" not in task
    assert 'ERROR_INTEGRATION = "LOAD_ERRORS"' in task
    assert "TYPE = EMAIL" in statements["email integration"]
    alert = statements["alert"]
    assert "TASK_HISTORY" in alert and "STATE = 'FAILED'" in alert
    assert "SYSTEM$SEND_EMAIL('RDS_S3_EXPORT_EMAIL', 'data@example.com'" in alert
    for name in ("email integration", "alert", "alert resume"):
        assert name in NOT_ON_FAKESNOW
        sqlglot.parse_one(statements[name], read="snowflake")


def test_the_lists_of_untested_statements_are_small() -> None:
    assert set(NOT_ON_FAKESNOW) == {
        "storage integration",
        "stream",
        "task",
        "task resume",
        "email integration",
        "alert",
        "alert resume",
    }
    assert set(SUBSTITUTED) == {"session time zone", "stage", "procedure", "first load"}


def test_the_procedure_body_needs_only_the_standard_library(tmp_path: Path) -> None:
    import ast

    procedure = dict(split_script(render(_night(tmp_path).manifest, **OPTIONS)))["procedure"]
    body = procedure.split("\n$$\n", 1)[1].rsplit("$$", 1)[0]
    imported = set()
    for node in ast.walk(ast.parse(body)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    # PACKAGES = ('snowflake-snowpark-python') gives the session; nothing else is installed
    assert imported == {"__future__", "json", "re", "dataclasses", "typing"}
    assert "def run(session: Any) -> str:" in body
