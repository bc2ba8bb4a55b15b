"""Every file that README.md and docs/ point at exists: relative links, and repository paths named in the text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# a path into one of the repository's folders, or a top-level document
REPO_PATH = re.compile(
    r"(?<![\w./<-])((?:ml_headcount|flows|tasks|tests|benchmarks|docs|examples|deployments|modal_workers|\.ci)"
    r"/[\w./-]*[\w/])|(?<![\w./-])([A-Z][A-Z_]*\.md)\b"
)


def references(document: Path) -> list[tuple[str, Path]]:
    """(as written, where it points) for each relative link and each repository path the document names."""
    text = document.read_text()
    found = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        found.append((target, (document.parent / target.split("#", 1)[0]).resolve()))
    for path, top_level in REPO_PATH.findall(text):
        written = path or top_level
        found.append((written, REPO / written))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(REPO)) for d in DOCUMENTS])
def test_every_referenced_file_exists(document):
    missing = sorted({written for written, target in references(document) if not target.exists()})
    assert missing == [], f"{document.relative_to(REPO)} names files that do not exist: {missing}"


def test_the_check_finds_links_and_paths():
    """The patterns see what the documents use, so a missing file cannot hide behind a format."""
    readme = {written for written, _ in references(REPO / "README.md")}
    assert {"docs/performance.md", "examples/demo_cvs.csv", "benchmarks/headcount_calibration.py"} <= readme
    assert any(
        written.startswith("ml_headcount/") or written.endswith(".py")
        for written, _ in references(REPO / "docs" / "performance.md")
    )
