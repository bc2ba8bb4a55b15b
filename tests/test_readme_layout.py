"""The README's layout section is the tree: every module of the packages is listed where it lives, and nothing else."""

from __future__ import annotations

import re

from tests.conftest import REPO

PACKAGES = ("ml_headcount", "tasks", "flows", "modal_workers")


def layout_entries() -> set[str]:
    """The paths the layout block lists: a line's first word, a folder (ending in /) or a module, two spaces of
    indentation per level; other lines continue a description."""
    block = re.search(r"^## Layout\n\n```\n(.*?)^```", (REPO / "README.md").read_text(), re.S | re.M).group(1)
    folders: list[str] = []
    entries = set()
    for line in block.splitlines():
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        if not word.endswith(("/", ".py")):
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        folders = folders[:depth]
        path = "".join(folders) + word
        entries.add(path.rstrip("/"))
        if word.endswith("/"):
            folders.append(word)
    return entries


def test_the_layout_section_lists_every_module_and_only_those():
    listed = {path for path in layout_entries() if path.split("/")[0] in PACKAGES and path.endswith(".py")}
    modules = {
        str(p.relative_to(REPO))
        for package in PACKAGES
        for p in (REPO / package).rglob("*.py")
        if p.name != "__init__.py"
    }
    assert sorted(modules - listed) == [] and sorted(listed - modules) == []


def test_every_folder_the_layout_names_exists():
    assert sorted(path for path in layout_entries() if not (REPO / path).exists()) == []
