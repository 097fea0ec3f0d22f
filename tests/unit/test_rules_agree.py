"""The stack's configuration (at synth) and the validate step (at run time) agree on every rule.

Both call rds_s3_export.rules; these properties feed the same generated values to both sides
and require the same verdict, so a rule changed on one side only turns them red.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from infra.config import ConfigError, _decode, load_config
from rds_s3_export import rules
from rds_s3_export.errors import InvalidInput
from rds_s3_export.inputs import build_config

EXAMPLES = hypothesis_settings(max_examples=150, deadline=None)
STACK_DEFAULTS = load_config({}).pipeline_defaults()

IDENTIFIER_LIKE = st.from_regex(r"\A[A-Za-z0-9_ -]{0,70}\Z") | st.sampled_from(
    ["a" * 63, "a" * 64, "mydb", "My-DB", "my--db", "db-", "1db", ""]
)
PREFIX_LIKE = st.from_regex(r"\A[A-Za-z0-9._=+*:/ -]{0,40}\Z") | st.sampled_from(
    [
        "exports/mydb",
        "exports/mydb/",
        "/x",
        "a//b",
        "a/../b",
        "exports/mydb/a*b",
        "x" * 513,
        "0\n",
        "exports/mydb\n",
    ]
)
SNAPSHOT_PREFIX_LIKE = IDENTIFIER_LIKE | st.integers(30, 240).map(lambda n: "p" * n)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=12)
EXPORT_ONLY_LIKE = (
    st.lists(st.from_regex(r"\A[a-z./ ]{0,20}\Z") | st.integers(), max_size=4) | JSON_SCALARS
)
KEEP_LIKE = st.integers(-3, 120) | st.sampled_from(["all", "ALL", "null", None, True, 1.5, "3"])


def synth_accepts(context: dict[str, Any]) -> bool:
    try:
        load_config(context)
    except ConfigError:
        return False
    return True


def run_accepts(raw: dict[str, Any]) -> bool:
    try:
        build_config(raw, STACK_DEFAULTS, {})
    except InvalidInput:
        return False
    return True


def cli_decoded(key: str, value: Any, kind: str) -> Any:
    """What a `-c key=value` string means at synth: the run-time input carries the decoded
    JSON value (a context value that is not valid JSON is refused at synth, so at run time it
    is given as the raw string, which is refused too)."""
    try:
        return _decode(key, value, kind)  # type: ignore[arg-type]
    except ConfigError:
        return value


@EXAMPLES
@given(value=IDENTIFIER_LIKE, kind=st.sampled_from(["instance", "cluster"]))
def test_database_identifiers(value: str, kind: str) -> None:
    key = "db_cluster_identifier" if kind == "cluster" else "db_instance_identifier"
    context = {"db_instance_identifier": "", key: value}
    assert synth_accepts(context) == run_accepts({key: value}), value


@EXAMPLES
@given(value=PREFIX_LIKE)
def test_s3_prefixes(value: str) -> None:
    assert synth_accepts({"s3_prefix": value}) == run_accepts({"s3_prefix": value}), value


@EXAMPLES
@given(value=SNAPSHOT_PREFIX_LIKE, kind=st.sampled_from(["instance", "cluster"]))
def test_snapshot_prefixes_per_engine(value: str, kind: str) -> None:
    database = (
        {"db_instance_identifier": "", "db_cluster_identifier": "c1"}
        if kind == "cluster"
        else {"db_instance_identifier": "i1"}
    )
    raw = {**database, "snapshot_prefix": value}
    if kind == "cluster":
        raw.pop("db_instance_identifier")
    assert synth_accepts({**database, "snapshot_prefix": value}) == run_accepts(raw), value


@EXAMPLES
@given(value=EXPORT_ONLY_LIKE)
def test_export_only(value: Any) -> None:
    decoded = cli_decoded("export_only", value, "json")
    # an empty -c string means "no list" at synth, as an absent key does at run time
    raw = {} if value == "" else {"export_only": decoded}
    assert synth_accepts({"export_only": value}) == run_accepts(raw), value


@EXAMPLES
@given(value=KEEP_LIKE)
def test_keep_snapshots(value: Any) -> None:
    decoded = cli_decoded("keep_snapshots", value, "int")
    assert synth_accepts({"keep_snapshots": value}) == run_accepts({"keep_snapshots": decoded})


@pytest.mark.parametrize("source", [*rules.SCHEDULED_SOURCES, "latest", "", "NEW-SNAPSHOT"])
def test_scheduled_sources(source: str) -> None:
    # `snapshot` needs a per-run snapshot_identifier, so only a run (not a schedule) may use it
    assert synth_accepts({"source": source}) == run_accepts({"source": source})


def test_both_sides_take_the_prefix_rule_from_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a prefix both sides refuse (the example where the two old validators disagreed)
    loose = "exports/mydb/a*b"
    assert not synth_accepts({"s3_prefix": loose})
    assert not run_accepts({"s3_prefix": loose})
    # When the one rule is loosened, Then both sides accept it: neither keeps a copy
    monkeypatch.setattr(rules, "s3_prefix", str)
    assert synth_accepts({"s3_prefix": loose})
    assert run_accepts({"s3_prefix": loose})
