"""The polling figures polling.py states are those of the bench table pasted in operating.md.

The bench (`python -m sandbox.bench --polling`) takes minutes and is not run here: its output
is pasted in docs/operating.md between the `bench:polling` marker and the end of the code
block. This test reads that table and checks the figures the module docstring and the page
state from it, so that neither can claim more than was measured.
"""

from __future__ import annotations

import re
from pathlib import Path

from rds_s3_export import polling

DOC = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
ROW = re.compile(r"^\s+([a-z-]+), (first night|nights after)\s+(\d+)\s+(\d+)\s")


def bench_table() -> dict[tuple[str, str], tuple[int, int]]:
    """(curve, night) -> (median, max) seconds late, from the pasted bench output."""
    block = DOC.read_text().split("<!-- bench:polling -->\n```text\n", 1)[1].split("```", 1)[0]
    rows = {}
    for line in block.splitlines():
        found = ROW.match(line)
        if found:
            rows[(found[1], found[2])] = (int(found[3]), int(found[4]))
    return rows


def test_the_stated_figures_are_the_benchs() -> None:
    table = bench_table()
    curves = {curve for curve, _ in table}
    assert curves == {"linear", "none-until-done", "slow-first", "fast-first"}
    progress = [c for c, _ in table if c != "none-until-done"]
    figures = {
        "with progress, first night, max": max(table[(c, "first night")][1] for c in progress),
        "with progress, nights after, max": max(table[(c, "nights after")][1] for c in progress),
        "without progress, first night, max": table[("none-until-done", "first night")][1],
        "without progress, first night, median": table[("none-until-done", "first night")][0],
        "without progress, nights after, max": table[("none-until-done", "nights after")][1],
    }
    docstring = " ".join((polling.__doc__ or "").split())
    page = " ".join(DOC.read_text().split())
    stated = (
        f"with RDS reporting progress, at most {figures['with progress, first night, max']} s "
        f"late on a first night and {figures['with progress, nights after, max']} s on later "
        f"nights; without progress until the end, up to "
        f"{figures['without progress, first night, max']} s late on a first night (median "
        f"{figures['without progress, first night, median']} s"
    )
    assert stated in docstring
    assert f"and at most {figures['without progress, nights after, max']} s on later nights" in (
        docstring
    )
    assert f"up to {figures['without progress, first night, max']} s late (median" in page
    assert f"at most {figures['without progress, nights after, max']} s." in page
    # and nobody claims the old, unmeasured "within about a minute whether ... or not"
    assert "whether RDS reports progress or not" not in docstring + page
