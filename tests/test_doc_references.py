"""Every file that README.md and docs/ point at exists: relative links, and repository paths named in the text."""

from __future__ import annotations

import re
from collections import Counter
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


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives a document's headings (code blocks left out): lower case, punctuation dropped, spaces
    as hyphens, a repeated heading's anchor numbered."""
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.S | re.M)
    seen: Counter[str] = Counter()
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?)[ #]*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def broken_anchors(document: Path) -> list[str]:
    """The links of the document to a heading (`file.md#anchor` or `#anchor`) whose heading does not exist."""
    broken = []
    for target in LINK.findall(document.read_text()):
        if "#" not in target or re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        path, anchor = target.split("#", 1)
        linked = (document.parent / path).resolve() if path else document
        if linked.suffix == ".md" and linked.exists() and anchor not in anchors(linked):
            broken.append(target)
    return sorted(set(broken))


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(REPO)) for d in DOCUMENTS])
def test_every_link_to_a_heading_finds_it(document):
    assert broken_anchors(document) == []


def test_the_anchor_check_reads_headings_as_github_does(tmp_path):
    document = tmp_path / "page.md"
    document.write_text(
        "# A page\n\n## Lists as search queries: `queries.json` and `ml-headcount query`\n\n## Notes\n\n## Notes\n\n"
        "```bash\n# a comment, not a heading\n```\n\n"
        "[a](#lists-as-search-queries-queriesjson-and-ml-headcount-query) [b](#notes-1) [c](#a-comment-not-a-heading)"
        " [d](page.md#a-page) [e](page.md#missing)\n"
    )
    assert broken_anchors(document) == ["#a-comment-not-a-heading", "page.md#missing"]


def test_the_readme_is_a_front_door():
    """At most 150 lines, and its first lines are the two commands: the main job on the demo data, and the test command
    that CI (.ci/run) runs."""
    readme = (REPO / "README.md").read_text()
    first_block = re.search(r"^```bash\n(.*?)^```", readme, re.S | re.M).group(1)
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]
    ci_commands = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert len(readme.splitlines()) <= 150
    assert readme.index("```bash") < 50 and commands[0].startswith("uv run ml-headcount run examples/")
    assert commands[1] == "uv run pytest" and ci_commands[-1] == commands[1]


def test_the_check_finds_links_and_paths():
    """The patterns see what the documents use, so a missing file cannot hide behind a format."""
    readme = {written for written, _ in references(REPO / "README.md")}
    assert {"docs/performance.md", "examples/demo_cvs.csv", "examples/from_python.py"} <= readme
    assert any(
        written.startswith("ml_headcount/") or written.endswith(".py")
        for written, _ in references(REPO / "docs" / "performance.md")
    )
