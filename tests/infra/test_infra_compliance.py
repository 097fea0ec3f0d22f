"""cdk-nag (AwsSolutions, run at synth) and cfn-lint on every configuration's template."""

from __future__ import annotations

from typing import Any

import pytest

LINT_REGIONS = ["us-east-1", "eu-west-1", "eu-central-1"]


@pytest.fixture(scope="module")
def lint_rules() -> Any:
    """cfn-lint's rules for this configuration, loaded once (`lint` alone loads them again for
    every template), as cfn-lint's command line does for several templates. (Imported here:
    only the worker that synthesises needs cfn-lint, which takes a second to import.)"""
    from cfnlint.api import ManualArgs
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn(**ManualArgs(regions=LINT_REGIONS))).rules


def test_cdk_nag_reports_no_unacknowledged_finding(any_stack: Any) -> None:
    # Given a configuration synthesised as app.py does it (AwsSolutions checks at synth)
    # Then synthesis succeeded and the report lists no violation
    assert any_stack.synth_error is None, any_stack.synth_error
    (report,) = any_stack.report["pluginReports"]
    assert report["pluginName"] == "AwsSolutions"
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_each_acknowledgement_sits_on_its_resource_with_a_reason(any_stack: Any) -> None:
    (report,) = any_stack.report["pluginReports"]
    acknowledged = report["suppressedViolations"]
    assert acknowledged  # the wildcards AWS requires are acknowledged, not hidden
    for finding in acknowledged:
        (violating,) = finding["violatingConstructs"]
        # on the construct whose resource it concerns, not on the stack or a parent
        assert violating["constructPath"] == f"{finding['acknowledgedAt']}/Resource", finding
        assert len(finding["reason"]) > 40, finding


def test_each_resource_star_acknowledgement_says_aws_requires_it(any_stack: Any) -> None:
    (report,) = any_stack.report["pluginReports"]
    stars = [f for f in report["suppressedViolations"] if f["ruleName"].endswith("[Resource::*]")]
    assert stars
    for finding in stars:
        assert finding["reason"].startswith("AWS requires Resource '*'"), finding


def test_every_acknowledgement_is_used(any_stack: Any) -> None:
    # Given every acknowledgement written into the construct tree (the cloud assembly's metadata)
    written = any_stack.acknowledgements
    assert written

    # Then each one matches a finding cdk-nag made (no stale acknowledgement)
    (report,) = any_stack.report["pluginReports"]
    used = {(f["acknowledgedAt"], f["ruleName"]) for f in report["suppressedViolations"]}
    assert written == used


def test_cfn_lint_finds_no_error_and_no_warning(any_stack: Any, lint_rules: Any) -> None:
    from cfnlint.api import ManualArgs, lint

    config = ManualArgs(regions=LINT_REGIONS)
    matches = lint(any_stack.template_path.read_text(), rules=lint_rules, config=config)
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
