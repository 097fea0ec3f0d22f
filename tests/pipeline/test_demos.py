"""The demos the README promises (`make demo`, `demo-sources`, `demo-glue`,
`demo-cross-account`) run in-process, end in `passed`, and show what the README says they show.

Each demo checks its own outcome (row counts against the fixture, the catalog's folders, the
data account's reads) and returns 1 when a check fails; these tests hold them to it, so a
demo that silently stopped proving its point fails here, not on a user's laptop.
"""

from __future__ import annotations

import re

import pytest

from sandbox import demo, demo_glue, demo_sources


def test_the_demo_passes_three_nights_with_the_load_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^demo passed in ", out, re.M), out[-2000:]
    assert "row counts against the fixture database: every table complete" in out


def test_the_cross_account_demo_shows_the_two_accounts_and_reads_as_snowflake(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert demo.main(["--cross-account"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^demo passed in ", out, re.M), out[-2000:]
    pipeline, data = demo.DEMO_PIPELINE_ACCOUNT, demo.DEMO_DATA_ACCOUNT
    assert f"pipeline account {pipeline}" in out and f"data account {data}" in out
    assert f"export role      arn:aws:iam::{pipeline}:role/" in out
    assert re.search(rf"export key       arn:aws:kms:[a-z0-9-]+:{data}:key/", out)
    # after each successful night the data account's Snowflake role read every listed file
    reads = re.findall(rf"as arn:aws:iam::{data}:role/\S+: read _manifest.json", out)
    assert len(reads) >= 2, out[-2000:]
    assert "could NOT read" not in out


def test_the_glue_demo_shows_the_catalog_following_the_export(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert demo_glue.main() == 0
    out = capsys.readouterr().out
    assert re.search(r"^Glue demo passed in ", out, re.M), out[-2000:]
    assert "MISSING" not in out
    assert "which the catalog still names: kept" in out


def test_the_sources_demo_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_sources.main() == 0
    assert "passed" in capsys.readouterr().out
