"""`-c glue_database=<name>`: the stack creates the Glue database, and the catalog's grants name
the catalog, that database and its tables, nothing wider
(https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ConfigError, load_config
from rds_s3_export import rules
from tests.infra.conftest import GLUE, Synthesized, _json_arn

DATABASE = GLUE["glue_database"]
GLUE_ARNS = [
    _json_arn("glue", "catalog"),
    _json_arn("glue", f"database/{DATABASE}"),
    _json_arn("glue", f"table/{DATABASE}/*"),
]
CATALOG_ACTIONS = {"glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"}


@pytest.fixture(scope="module")
def glue_stack(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(**GLUE)


def _glue_statements(stack: Synthesized, policy: Any) -> list[dict[str, Any]]:
    return [
        s
        for s in stack.statements(policy)
        if any(
            str(a).startswith("glue:")
            for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        )
    ]


def test_the_stack_creates_the_glue_database(glue_stack: Synthesized) -> None:
    glue_stack.template.resource_count_is("AWS::Glue::Database", 1)
    (database,) = [r for r in glue_stack.resources.values() if r["Type"] == "AWS::Glue::Database"]
    assert database["Properties"]["DatabaseInput"]["Name"] == DATABASE
    assert database["Properties"]["CatalogId"] == {"Ref": "AWS::AccountId"}


def test_without_the_key_there_is_no_database_and_no_glue_grant(
    default_stack: Synthesized,
) -> None:
    default_stack.template.resource_count_is("AWS::Glue::Database", 0)
    actions = {
        a
        for _, s in default_stack.identity_statements()
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not {a for a in actions if a.startswith("glue:")}
    environment = default_stack.function("update_catalog")["Properties"]["Environment"]
    assert "GLUE_DATABASE" not in environment["Variables"]


def test_update_catalog_may_change_the_tables_of_its_database_only(
    glue_stack: Synthesized,
) -> None:
    (statement,) = _glue_statements(
        glue_stack, glue_stack.stack.functions.policies["update_catalog"].policy
    )
    assert set(statement["Action"]) == CATALOG_ACTIONS
    assert statement["Resource"] == GLUE_ARNS
    variables = glue_stack.function("update_catalog")["Properties"]["Environment"]["Variables"]
    assert variables["GLUE_DATABASE"] == DATABASE


def test_the_purge_may_only_read_the_catalog(glue_stack: Synthesized) -> None:
    (statement,) = _glue_statements(
        glue_stack, glue_stack.stack.functions.policies["purge_prefix"].policy
    )
    assert statement["Action"] == "glue:GetTables"
    assert statement["Resource"] == GLUE_ARNS
    variables = glue_stack.function("purge_prefix")["Properties"]["Environment"]["Variables"]
    assert variables["GLUE_DATABASE"] == DATABASE


def test_no_other_function_touches_glue(glue_stack: Synthesized) -> None:
    for module, policy in glue_stack.stack.functions.policies.items():
        if module not in ("update_catalog", "purge_prefix"):
            assert _glue_statements(glue_stack, policy.policy) == [], module


def test_the_tables_wildcard_is_acknowledged_with_its_reason(glue_stack: Synthesized) -> None:
    rules_acknowledged = {rule for _, rule in glue_stack.acknowledgements}
    assert any("table/shop_exports/*" in rule for rule in rules_acknowledged)
    assert glue_stack.synth_error is None


@pytest.mark.parametrize(
    "value",
    ["Shop", "shop-exports", "shop exports", "a" * (rules.GLUE_NAME_MAX + 1), 7],
)
def test_a_glue_database_name_athena_cannot_read_as_is_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match="glue_database"):
        load_config({"glue_database": value})


@pytest.mark.parametrize(("value", "expected"), [("", None), ("  ", None), ("a_1", "a_1")])
def test_glue_database_values(value: str, expected: str | None) -> None:
    assert load_config({"glue_database": value}).glue_database == expected
