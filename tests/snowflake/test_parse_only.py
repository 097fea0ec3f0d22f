"""The statements fakesnow cannot run (integration, stage, procedure, task), parsed by sqlglot.

sqlglot parses CREATE STORAGE INTEGRATION, CREATE STAGE and CREATE FILE FORMAT into real
syntax trees and raises on broken text (checked below). It keeps CREATE TASK and ALTER TASK
as opaque ``Command`` nodes and a procedure body as a string, so for those the tests check the
clauses that matter, and that the body runs the very statements executed on fakesnow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from snowflake_sql.generate import SECTIONS, render, split_script
from tests.snowflake.conftest import NIGHT_1, OPTIONS, Night, sections

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_sqlglot_raises_on_broken_statements() -> None:
    broken = [
        "CREATE STAGE s URL = 's3://b/p/' STORAGE_INTEGRATION = ",
        "CREATE FILE FORMAT f TYPE = = PARQUET",
        "CREATE STORAGE INTEGRATION i TYPE = EXTERNAL_STAGE STORAGE_ALLOWED_LOCATIONS = ('s3://b/'",
    ]
    for text in broken:
        with pytest.raises(sqlglot.errors.ParseError):
            sqlglot.parse(text, read="snowflake")


def test_integration_and_stage_parse_and_allow_only_the_prefix(
    nights: tuple[Path, Night, Night],
) -> None:
    _, first, _ = nights
    integration, stage = sections(first.manifest)["access"]
    for text in (integration, stage):
        (tree,) = sqlglot.parse(text, read="snowflake")
        assert isinstance(tree, exp.Create), text
    url = "s3://snowflake-test-bucket/exports/mydb/"
    assert f"STORAGE_ALLOWED_LOCATIONS = ('{url}')" in integration
    assert "STORAGE_PROVIDER = 'S3'" in integration
    assert f"STORAGE_AWS_ROLE_ARN = '{OPTIONS['role_arn']}'" in integration
    assert f"STORAGE_AWS_EXTERNAL_ID = '{OPTIONS['external_id']}'" in integration
    assert f"URL = '{url}'" in stage
    assert 'STORAGE_INTEGRATION = "RDS_EXPORTS"' in stage
    assert NIGHT_1 not in integration + stage  # the prefix, never one export folder


def test_file_formats_parse(nights: tuple[Path, Night, Night]) -> None:
    _, first, _ = nights
    for text in sections(first.manifest)["formats"]:
        (tree,) = sqlglot.parse(text, read="snowflake")
        assert isinstance(tree, exp.Create)


def test_procedure_and_task(nights: tuple[Path, Night, Night]) -> None:
    _, first, _ = nights
    generated = sections(first.manifest)
    procedure, task, resume = generated["schedule"]
    (tree,) = sqlglot.parse(procedure, read="snowflake")
    assert isinstance(tree, exp.Create)
    assert tree.args["kind"] == "PROCEDURE"
    proc_name = tree.this.this.sql(dialect="snowflake")  # the name, without "()"
    assert proc_name == '"RAW"."MYDB"."RDS_S3_EXPORT_LOAD"'

    for text in (task, resume):
        (node,) = sqlglot.parse(text, read="snowflake")  # a Command: checked by content below
        assert isinstance(node, exp.Expr)
    assert task.startswith('CREATE TASK IF NOT EXISTS "RAW"."MYDB"."RDS_S3_EXPORT_NIGHTLY"')
    assert 'WAREHOUSE = "LOAD_WH"' in task
    assert "SCHEDULE = 'USING CRON 0 7 * * * UTC'" in task
    assert task.endswith(f"AS CALL {proc_name}()")
    assert resume == 'ALTER TASK "RAW"."MYDB"."RDS_S3_EXPORT_NIGHTLY" RESUME'

    body = procedure.split("$$")[1]
    # reads the manifest from the stage, and stops when its task id was loaded before
    assert '@"RAW"."MYDB"."RDS_MYDB"/_manifest.json' in body
    assert 'FROM "RAW"."MYDB"."_RDS_EXPORT_LOADS" WHERE EXPORT_TASK_ID = :task_id' in body
    assert body.index("already loaded") < body.index("COPY INTO")
    # blocks are balanced
    assert body.count("IF (") == body.count("END IF;")
    assert body.strip().startswith("DECLARE") and body.strip().endswith("END;")
    # the replace statements are those executed on fakesnow, character for character
    flat_body = {line.strip() for line in body.splitlines()}
    for statement in generated["load"]:
        if statement.startswith(("DELETE", "BEGIN", "COMMIT", "DROP")):
            assert f"{statement};" in flat_body, statement
        if statement.startswith('INSERT INTO "RAW"."MYDB"."PUBLIC_'):
            first_line = statement.splitlines()[0]
            assert first_line in flat_body
    # and its COPY is the executed COPY with the task id spliced in, minus the FILES list
    executed = next(s for s in generated["load"] if s.startswith("COPY INTO"))
    template = re.search(r"copy_sql := (.*?);\n", body, re.DOTALL)
    assert template is not None
    spliced = template.group(1).replace("' || task_id || '", NIGHT_1)
    spliced = spliced[1:-1].replace("''", "'")  # the literal's text
    without_files = "\n".join(
        line for line in executed.splitlines() if not line.lstrip().startswith("FILES")
    )
    assert spliced == without_files


def test_rendered_script_has_every_section_in_order(nights: tuple[Path, Night, Night]) -> None:
    _, first, _ = nights
    script = render(first.manifest, **OPTIONS)
    parts = split_script(script)
    assert list(parts) == list(SECTIONS)
    generated = sections(first.manifest)
    for name in SECTIONS:
        for statement in generated[name]:
            assert statement in parts[name]
