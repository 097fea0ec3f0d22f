"""Each step returns exactly the fields its module declares, which the ASL selects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rds_s3_export.steps import (
    create_snapshot,
    describe_status,
    discard_failed_export,
    prune_snapshots,
    publish_manifest,
    purge_prefix,
    shaped,
    start_export,
    update_catalog,
    validate_input,
)

ASL = json.loads(
    (Path(__file__).resolve().parents[2] / "statemachine" / "export_pipeline.asl.json").read_text()
)["States"]

# state -> the fields its module declares
DECLARED = {
    "ValidateInput": validate_input.RESULT_FIELDS,
    "CreateSnapshot": create_snapshot.RESULT_FIELDS,
    "DescribeSnapshotStatus": describe_status.RESULT_FIELDS,
    "StartExport": start_export.RESULT_FIELDS,
    "DescribeExportStatus": describe_status.EXPORT_RESULT_FIELDS,
    "PurgePrefix": purge_prefix.RESULT_FIELDS,
    "PurgePreviousExport": purge_prefix.RESULT_FIELDS,
    "PublishManifest": publish_manifest.RESULT_FIELDS,
    "PruneSnapshots": prune_snapshots.RESULT_FIELDS,
    "DiscardFailedExport": discard_failed_export.RESULT_FIELDS,
    "UpdateCatalog": update_catalog.RESULT_FIELDS,
}


@pytest.mark.parametrize("state", sorted(DECLARED))
def test_the_asl_selects_exactly_the_declared_fields(state: str) -> None:
    selected = [key.removesuffix(".$") for key in ASL[state]["ResultSelector"]]
    assert selected == list(DECLARED[state])


def test_a_catalog_that_did_not_complete_has_the_step_s_fields() -> None:
    # Summarize and IsPreviousExportPurged read $.catalog whichever way it was made
    made = [key.removesuffix(".$") for key in ASL["UpdateCatalogDidNotComplete"]["Parameters"]]
    assert sorted(made) == sorted(update_catalog.RESULT_FIELDS)
    assert ASL["UpdateCatalogDidNotComplete"]["Parameters"]["previous_export_may_go"] is False


def test_defaults_are_only_for_declared_fields() -> None:
    assert set(purge_prefix.RESULT_DEFAULTS) <= set(purge_prefix.RESULT_FIELDS)
    assert set(validate_input.RESULT_DEFAULTS) <= set(validate_input.RESULT_FIELDS)


def test_shaped_fills_defaults_and_keeps_the_declared_order() -> None:
    assert shaped({"b": 2}, ("a", "b"), {"a": 0}) == {"a": 0, "b": 2}
    assert list(shaped({"b": 2, "a": 1}, ("a", "b"))) == ["a", "b"]


def test_shaped_refuses_an_undeclared_field() -> None:
    # it would be dropped by the ResultSelector without a word: a purge cursor lost, say
    with pytest.raises(ValueError, match=r"undeclared \['cursor2'\]"):
        shaped({"a": 1, "cursor2": ""}, ("a",))


def test_shaped_refuses_a_missing_field_without_a_default() -> None:
    # Step Functions would fail the state with States.Runtime on the missing path
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        shaped({"a": 1}, ("a", "b"))
