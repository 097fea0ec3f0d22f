"""Every example input under examples/inputs/ (the README shows them) is executed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.runtime import Sandbox, Settings

ROOT = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted((ROOT / "inputs").glob("*.json"))
STACKS = json.loads((ROOT / "stacks.json").read_text())


def test_there_are_examples_and_each_names_its_stack() -> None:
    assert len(EXAMPLES) >= 5
    assert sorted(STACKS["examples"]) == sorted(p.stem for p in EXAMPLES)
    assert set(STACKS["examples"].values()) <= set(STACKS["stacks"])


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """The stack configuration the example is written for (examples/stacks.json)."""
    path: Path = request.node.callspec.params["path"]
    return Settings(**STACKS["stacks"][STACKS["examples"][path.stem]])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_input_runs(sandbox: Sandbox, path: Path) -> None:
    # Given a world in which every example's source exists, on the example's stack
    sandbox.add_cluster("mycluster")
    sandbox.add_automated_snapshot("mydb", age_hours=5)
    execution_input = json.loads(path.read_text())
    if execution_input.get("source") == "snapshot":
        name = execution_input["snapshot_identifier"]
        if "db_cluster_identifier" in execution_input:
            sandbox.client("rds").create_db_cluster_snapshot(
                DBClusterIdentifier=execution_input["db_cluster_identifier"],
                DBClusterSnapshotIdentifier=name,
            )
        else:
            sandbox.client("rds").create_db_snapshot(
                DBInstanceIdentifier="mydb", DBSnapshotIdentifier=name
            )
        sandbox.clock.advance(sandbox.rds.timing.snapshot_seconds)

    # When the example is started as it is
    result = sandbox.run(execution_input)

    # Then it succeeds and its export (or, for a dry run, nothing) is in the bucket
    assert result.status == "SUCCEEDED", f"{path.name}: {result.error}: {result.cause}"
    out = result.output
    assert out is not None
    if execution_input.get("dry_run"):
        assert out["status"] == "DRY_RUN"
        assert sandbox.listing() == {}
    else:
        prefix = execution_input.get("s3_prefix", "exports/mydb")
        assert sandbox.export_folders(prefix) == [out["export"]["task_id"]]
