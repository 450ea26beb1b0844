"""The repository stands alone: a fresh clone needs nothing beside it.

No tracked file points at the folder of shared material that sat next to the first clones
(its spec and fixtures); the project's own contract is docs/api.md and docs/attribution.md.
The one allowed exception is where the upstream dashboards, an external client that
tests/api/test_dashboards.py replays, are named through HUBCOST_UPSTREAM_DASHBOARDS: the
export line of .ci/run and Markdown lines naming that variable.

Every citation "docs/<file>.md §<n>" in the tracked files names a document that exists and a
numbered section heading ("## 2." or "### 2.1") that exists in it.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

VARIABLE = "HUBCOST_UPSTREAM_DASHBOARDS"
# Written in pieces so that this file does not mention what it looks for.
SHARED = "shared"
OUTSIDE = (
    f"../{SHARED}",
    f"{SHARED}/spec",
    f"{SHARED}/fixtures",
    "spec/" + "attribution",
    "spec/" + "api",
)
CITATION = re.compile(
    r"docs/(?P<doc>[\w.-]+\.md)(?P<sections>(?:(?:,|\s+and|\s+or)?\s*§\s?\d+(?:\.\d+)*)+)"
)
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


@cache
def tracked_texts() -> dict[str, str]:
    """path → text of every tracked file that is text (in the working tree)."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    texts = {}
    for name in filter(None, names):
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree, not yet committed
        data = path.read_bytes()
        if b"\0" in data:
            continue
        texts[name] = data.decode("utf-8", errors="replace")
    return texts


def allowed(path: str, line: str) -> bool:
    if VARIABLE not in line:
        return False
    if path == ".ci/run":
        return line.startswith(f"export {VARIABLE}=")
    return path.endswith(".md")


def test_no_tracked_file_reaches_outside_the_repository():
    found = [
        f"{path}:{number}: {line.strip()}"
        for path, text in tracked_texts().items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(needle in line for needle in OUTSIDE) and not allowed(path, line)
    ]
    assert not found, "\n".join(found)


def test_ci_names_the_upstream_dashboards_once():
    lines = [
        line for line in tracked_texts()[".ci/run"].splitlines() if any(n in line for n in OUTSIDE)
    ]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"export {VARIABLE}="), lines


@cache
def sections(doc: str) -> set[str]:
    return set(HEADING.findall((ROOT / "docs" / doc).read_text(encoding="utf-8")))


def citations() -> list[tuple[str, int, str, str]]:
    """(path, line, document, section) of every citation in the tracked files."""
    found = []
    for path, text in tracked_texts().items():
        for number, line in enumerate(text.splitlines(), 1):
            for match in CITATION.finditer(line):
                for section in SECTION.findall(match["sections"]):
                    found.append((path, number, match["doc"], section))
    return found


def test_the_documents_have_numbered_sections():
    for doc in ("api.md", "attribution.md"):
        assert {"1", "2", "2.1"} <= sections(doc), doc


def test_the_code_cites_both_documents():
    cited = {doc for path, _, doc, _ in citations() if not path.startswith("docs/")}
    assert {"api.md", "attribution.md"} <= cited


@pytest.mark.parametrize(
    ("path", "number", "doc", "section"),
    [pytest.param(*c, id=f"{c[0]}:{c[1]}:{c[2]}-{c[3]}") for c in citations()],
)
def test_every_citation_names_an_existing_section(path, number, doc, section):
    where = f"{path}:{number} cites docs/{doc} §{section}"
    assert (ROOT / "docs" / doc).is_file(), f"{where}: no such document"
    assert section in sections(doc), f"{where}: no such section heading"


def test_the_citation_pattern_reads_lists_of_sections():
    # Assembled, so that the example is not itself a citation of this file.
    text = "see docs/" + "a.md §3, §5 and §6.1; docs/" + "b.md §2"
    got = [(m["doc"], SECTION.findall(m["sections"])) for m in CITATION.finditer(text)]
    assert got == [("a.md", ["3", "5", "6.1"]), ("b.md", ["2"])]


def test_this_file_finds_nothing_outside_itself():
    # The needles are assembled, so this file itself is clean.
    assert not any(needle in Path(__file__).read_text() for needle in OUTSIDE)
