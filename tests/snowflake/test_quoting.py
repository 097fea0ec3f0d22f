"""The procedure builds SQL text, so its two escapes are what keep a table name or a value from
becoming SQL (the reason the Makefile's bandit run skips B608 on snowflake_sql only).

Rules: a quoted identifier doubles `"`
(https://docs.snowflake.com/en/sql-reference/identifiers-syntax); a string constant escapes
`'` and `\\` (https://docs.snowflake.com/en/sql-reference/data-types-text#escape-sequences-in-single-quoted-string-constants).
"""

from __future__ import annotations

import pytest

from snowflake_sql.local import connect
from snowflake_sql.procedure import literal, quote

AWKWARD = ["plain", "Mixed Case", 'a"b', 'x"; DROP TABLE t; --', "it's", "back\\slash"]
# fakesnow itself cannot record a table whose name holds `'` (its information-schema insert
# is not escaped), so the table is named without it; the value still carries it
NAMES = {value: value.replace("'", "_") for value in AWKWARD}


def test_quote_doubles_the_double_quote() -> None:
    assert quote('a"b') == '"a""b"'
    assert quote("x") == '"x"'


def test_quote_refuses_an_empty_identifier() -> None:
    with pytest.raises(ValueError, match="empty"):
        quote("")


def test_literal_escapes_quote_and_backslash() -> None:
    assert literal("it's") == "'it''s'"
    assert literal("a\\b") == "'a\\\\b'"


@pytest.mark.parametrize("name", AWKWARD)
def test_a_quoted_name_and_a_literal_round_trip_through_snowflake_sql(name: str) -> None:
    """On fakesnow: a table named `name` holds the value `name`, and both read back unchanged;
    an injection attempt stays a name (only one table exists afterwards)."""
    with connect() as cur:
        cur.execute("CREATE DATABASE D")
        cur.execute("CREATE SCHEMA D.S")
        target = f"D.S.{quote(NAMES[name])}"
        cur.execute(f"CREATE TABLE {target} (V VARCHAR)")
        cur.execute(f"INSERT INTO {target} (V) SELECT {literal(name)}")
        cur.execute(f"SELECT V FROM {target}")
        assert cur.fetchall() == [(name,)]
        cur.execute("SELECT TABLE_NAME FROM D.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'S'")
        assert [row[0] for row in cur.fetchall()] == [NAMES[name]]
