"""The committed ASL file is exactly what statemachine/definition.py generates."""

from __future__ import annotations

import json

from statemachine import definition


def test_the_committed_asl_file_is_generated_from_its_source() -> None:
    # Given the source and the committed file, Then they are the same text
    assert definition.ASL_PATH.read_text() == definition.render(), (
        "statemachine/export_pipeline.asl.json differs from statemachine/definition.py: "
        "run `make asl` and commit the result"
    )


def test_every_lambda_task_shares_the_retry_and_the_named_error_catch() -> None:
    states = json.loads(definition.render())["States"]
    tasks = {
        name: s
        for name, s in states.items()
        if s["Type"] == "Task" and s["Resource"] == "arn:aws:states:::lambda:invoke"
    }
    assert tasks
    for name, state in tasks.items():
        assert state["Retry"][:2] == [definition.RETRY_LAMBDA_SERVICE, definition.RETRY_THROTTLED]
        named = [c for c in state["Catch"] if c["ErrorEquals"] == definition.NAMED_ERRORS]
        # a best-effort step (pruning, discarding a failed export) catches everything itself
        assert named or state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "export_pipeline.asl.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(definition, "ASL_PATH", stale)
    assert definition.main(["--check"]) == 1
    assert definition.main([]) == 0
    assert definition.main(["--check"]) == 0
