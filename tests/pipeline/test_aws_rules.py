"""AWS rules moto does not check, exercised end to end in the sandbox (issue 17).

The sandbox enforces them (sandbox/limits.py) as AWS would answer, so a run that breaks one
fails here as it would in AWS.
"""

from __future__ import annotations

import pytest

from rds_s3_export import naming
from sandbox.runtime import Sandbox

PREFIX = "exports/mydb"

# RDS tag values: Unicode letters, digits, white space and `_ . : / = + - @` (transcribed from
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Tag.html). A Step Functions
# execution name may also hold `! ' ( )`. The characters RDS takes, written out here by hand:
TAG_PUNCTUATION = set("_.:/=+-@")


def _rds_accepts(value: str) -> bool:
    return len(value) <= 256 and all(
        c.isalpha() or c.isdigit() or c.isspace() or c in TAG_PUNCTUATION for c in value
    )


def test_the_sandbox_refuses_a_tag_value_rds_refuses(sandbox: Sandbox) -> None:
    # Given the sandbox's RDS, When a snapshot is tagged with `rerun(2)`, Then it is refused
    # as RDS refuses it (so the test below can fail)
    with pytest.raises(Exception, match="InvalidParameterValue"):
        sandbox.client("rds").create_db_snapshot(
            DBSnapshotIdentifier="tagged",
            DBInstanceIdentifier="mydb",
            Tags=[{"Key": "k", "Value": "rerun(2)"}],
        )


@pytest.mark.parametrize("name", ["rerun(2)", "it's-mine!", "plain-name_1"])
def test_a_run_named_with_characters_rds_tags_refuse_creates_its_snapshot(
    sandbox: Sandbox, name: str
) -> None:
    # Given a hand-started run whose name has characters RDS tag values may not hold
    result = sandbox.run({}, name=name)
    # Then it creates its snapshot and succeeds
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    snapshot = result.output["snapshot"]["id"]
    tags = sandbox.client("rds").list_tags_for_resource(
        ResourceName=result.output["snapshot"]["arn"]
    )["TagList"]
    value = next(t["Value"] for t in tags if t["Key"] == "rds-s3-export:execution")
    # and the tag value is one RDS takes, the name itself when RDS takes it
    assert _rds_accepts(value), value
    assert (value == name) == _rds_accepts(name)
    assert sandbox.snapshots("mydb", snapshot_type="manual") == [snapshot]


def test_tag_values_are_deterministic_and_tell_names_apart() -> None:
    assert naming.tag_value("rerun(2)") == naming.tag_value("rerun(2)")
    assert naming.tag_value("rerun(2)") != naming.tag_value("rerun!2!")
    assert naming.tag_value("rerun(2)").startswith("rerun_2_-")
    assert all(_rds_accepts(naming.tag_value(n)) for n in ("a'b", "(x)", "!" * 80))


def test_a_retried_create_of_a_run_named_rerun_2_adopts_its_own_snapshot(
    sandbox: Sandbox,
) -> None:
    # Given a create whose answer is lost after RDS made the snapshot, in a run named rerun(2)
    sandbox.faults.crash_after("create_snapshot", times=1)
    result = sandbox.run({}, name="rerun(2)")
    # Then the retry recognises its own snapshot by the (sanitised) tag and adopts it
    assert result.status == "SUCCEEDED", result.cause
    assert result.output is not None
    assert result.output["snapshot"]["adopted"] is True
    assert sandbox.snapshots("mydb", snapshot_type="manual") == [result.output["snapshot"]["id"]]
