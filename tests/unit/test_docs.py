"""The docs stay usable: a short README, links that resolve, nothing pointing outside the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250
# Written in two pieces so this file does not contain the string it looks for.
OUTSIDE = "../" + "shared"

LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (where `#` starts a comment, not a heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path) -> list[str]:
    found = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        found.extend(LINK.findall(re.sub(r"`[^`]*`", "``", line)))
    return found


def broken_links(path: Path) -> list[str]:
    """Every relative link of `path` that names no file in the repository, or no heading."""
    problems = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}: {target}"
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where} names no file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where} names no heading of {resolved.relative_to(ROOT)}")
    return problems


def test_the_readme_is_short() -> None:
    # Given the README, Then it fits in 250 lines: the rest belongs in docs/
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    # Given a Markdown page, When its relative links are followed, Then each names a file
    # inside the repository, and each anchor a heading of that file
    assert links(path) or path != README, "the README links to nothing: is the parser broken?"
    assert broken_links(path) == []


def test_the_readme_links_every_docs_page() -> None:
    # Given the docs pages, Then the README links to each of them
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    assert [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked] == []


def test_no_tracked_file_points_outside_the_repository() -> None:
    # Given every file git tracks, Then none refers to the sibling folder outside the repo
    git = shutil.which("git")
    assert git, "git is needed to list the tracked files"
    command = [git, "ls-files", "-z"]  # fixed arguments; git's path from shutil.which
    listing = subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # noqa: S603
    names = listing.stdout.decode()
    offenders = []
    for name in filter(None, names.split("\0")):
        path = ROOT / name
        if path.is_file() and OUTSIDE.encode() in path.read_bytes():
            offenders.append(name)
    assert offenders == []


def test_the_parser_finds_links_and_headings(tmp_path: Path) -> None:
    # Given a page with links and a heading, When it is parsed, Then the links and the heading's
    # anchor are found as GitHub would find them (so the checks above are not vacuous)
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](nothing.md) [b](#no-such-heading) [c](#title)\n")
    assert slug("`export_only`: some tables only") == "export_only-some-tables-only"
    assert links(page) == ["nothing.md", "#no-such-heading", "#title"]
    assert anchors(page) == {"title"}
