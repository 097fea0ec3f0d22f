"""The docs stay usable: a short README, links that resolve, nothing pointing outside the repo."""

from __future__ import annotations

import ast
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


# --- the docs agree with the code ------------------------------------------------------------

NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
COUNTED_FUNCTIONS = re.compile(
    rf"\b({'|'.join(NUMBERS)}|\d+)\s+(?:small\s+)?(?:Lambda\s+)?functions\b", re.IGNORECASE
)
STEPS_DIR = ROOT / "lambdas" / "rds_s3_export" / "steps"
ASL = ROOT / "statemachine" / "export_pipeline.asl.json"


def declared_steps() -> dict[str, str]:
    """module -> description of every `Step(...)` in infra/functions.py, read without importing
    the CDK (the unit tests do not start jsii)."""
    tree = ast.parse((ROOT / "infra" / "functions.py").read_text(encoding="utf-8"))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Step":
            module, _construct_id, description = (ast.literal_eval(a) for a in node.args[:3])
            found[module] = description
    return found


def step_modules() -> set[str]:
    """The handler modules in lambdas/ (one function each) and the ASL's function placeholders."""
    on_disk = {p.stem for p in STEPS_DIR.glob("*.py") if p.stem != "__init__"}
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)FunctionArn\}", ASL.read_text()))
    from_asl = {re.sub(r"(?<!^)(?=[A-Z])", "_", p).lower() for p in placeholders}
    assert on_disk == from_asl, (on_disk, from_asl)
    return on_disk


def test_the_docs_count_the_functions_there_are() -> None:
    # Given the functions the code and the stack have (one per handler module, one per ASL
    # placeholder, one per Step of infra/functions.py)
    modules = step_modules()
    assert set(declared_steps()) == modules
    # When the docs say how many functions there are, Then they say that many
    counts = [
        (path.relative_to(ROOT), match.group(0))
        for path in markdown_files()
        for match in COUNTED_FUNCTIONS.finditer(path.read_text(encoding="utf-8"))
    ]
    assert counts, "no page counts the functions: is the pattern broken?"
    wrong = [
        (str(path), said)
        for path, said in counts
        if NUMBERS.get(said.split()[0].lower()) != len(modules)
        and said.split()[0] != str(len(modules))
    ]
    assert wrong == [], f"there are {len(modules)} functions"
    # and deploy.md's list of them names each one
    row = next(
        line
        for line in (DOCS / "deploy.md").read_text().splitlines()
        if "Lambda functions (" in line
    )
    listed = set(re.findall(r"`([a-z_]+)`", row.split("), handlers")[0]))
    assert listed == modules


def errors_table() -> list[str]:
    """The error names of docs/inputs.md's "Errors" table, in order."""
    lines = (DOCS / "inputs.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("## Errors")
    names = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        match = re.match(r"^\| `(\w+)` \|", line)
        if match:
            names.append(match.group(1))
    return names


def test_the_errors_table_lists_exactly_the_terminal_errors() -> None:
    from rds_s3_export import errors

    terminal = [e.__name__ for e in errors.TERMINAL_ERRORS]
    assert errors_table() == terminal


def test_the_alert_docs_name_every_terminal_error() -> None:
    from rds_s3_export import errors

    text = (DOCS / "operating.md").read_text(encoding="utf-8")
    section = text[text.index("## What alerts look like") :]
    section = section[: section.index("```")]  # the prose before the example message
    named = set(re.findall(r"`(\w+)`", section))
    assert {e.__name__ for e in errors.TERMINAL_ERRORS} <= named


# What a verb in a function's description claims, as the calls of docs/contracts.md's "AWS calls
# per function" table (which the IAM replay holds the stack's grants to) show it.
VERB_CALLS = {
    "delete": re.compile(r"s3:DeleteObject|rds:Delete"),
    "write": re.compile(r"s3:PutObject"),
    "create": re.compile(r"rds:Create"),
    "start": re.compile(r"rds:StartExportTask"),
    "send": re.compile(r"events:PutEvents"),
    "tag": re.compile(r"rds:AddTagsToResource"),
}


def contract_calls() -> dict[str, str]:
    text = (DOCS / "contracts.md").read_text(encoding="utf-8")
    section = text[text.index("### AWS calls per function") :]
    rows = re.findall(r"^\| (\w+) \| (.+) \|$", section.split("\n### ")[0], re.MULTILINE)
    return {module: calls for module, calls in rows if module != "module"}


def test_each_functions_description_matches_what_it_calls() -> None:
    # Given each function's description (infra/functions.py) and its calls (contracts.md)
    descriptions, calls = declared_steps(), contract_calls()
    assert set(calls) == set(descriptions) == step_modules()
    mismatched = []
    for module, description in descriptions.items():
        for verb, call in VERB_CALLS.items():
            says = re.search(rf"\b{verb}", description, re.IGNORECASE) is not None
            # Then a verb is in the description exactly when the function makes such a call
            if says != bool(call.search(calls[module])):
                mismatched.append(f"{module}: says {verb!r}: {says}; calls: {calls[module]}")
    assert mismatched == []


def test_the_purge_is_described_as_it_deletes() -> None:
    """The purge deletes page after page while its time budget lasts (purge_prefix.PAGE_SIZE
    keys a request, until TIME_MARGIN_MS remain), not one page a call."""
    from rds_s3_export.steps import purge_prefix

    description = declared_steps()["purge_prefix"]
    assert purge_prefix.PAGE_SIZE > 0 and purge_prefix.TIME_MARGIN_MS > 0
    assert "page after page" in description and "time budget" in description
    assert "one page" not in description
