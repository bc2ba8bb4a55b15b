"""docs/architecture.md's layout section is the tree: every module of the packages is listed where it lives, and nothing
else."""

from __future__ import annotations

import re

from tests.conftest import REPO

PACKAGES = ("ml_headcount", "tasks", "flows", "modal_workers")


ARCHITECTURE = REPO / "docs" / "architecture.md"


def layout_entries(document: str) -> set[str]:
    """The paths the layout section's tree lists (its first plain code block): a line's first word, a folder (ending
    in /) or a module, two spaces of indentation per level; other lines continue a description."""
    block = re.search(r"^## Layout\n.*?^```\n(.*?)^```", document, re.S | re.M).group(1)
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


def unlisted_and_unknown(document: str) -> tuple[list[str], list[str]]:
    """(the modules the tree does not list, the modules it lists that do not exist)."""
    listed = {path for path in layout_entries(document) if path.split("/")[0] in PACKAGES and path.endswith(".py")}
    modules = {
        str(p.relative_to(REPO))
        for package in PACKAGES
        for p in (REPO / package).rglob("*.py")
        if p.name != "__init__.py"
    }
    return sorted(modules - listed), sorted(listed - modules)


def test_the_layout_section_lists_every_module_and_only_those():
    assert unlisted_and_unknown(ARCHITECTURE.read_text()) == ([], [])


def test_every_folder_the_layout_names_exists():
    assert sorted(path for path in layout_entries(ARCHITECTURE.read_text()) if not (REPO / path).exists()) == []


def test_the_check_sees_a_module_left_out_and_one_that_does_not_exist():
    """The tree as written with one module's name misspelt: the module is found unlisted and the misspelt one unknown,
    so the check cannot pass on a tree it failed to read."""
    document = ARCHITECTURE.read_text()
    layout_at = document.index("## Layout")
    name = re.compile(r"^( +)(\w+)\.py ", re.M).search(document, layout_at)
    edited = document[: name.start(2)] + name.group(2) + "_gone" + document[name.end(2) :]
    (removed,) = layout_entries(document) - layout_entries(edited)
    (added,) = layout_entries(edited) - layout_entries(document)
    assert added.endswith("_gone.py")
    unlisted, unknown = unlisted_and_unknown(document)
    assert unlisted_and_unknown(edited) == (sorted([*unlisted, removed]), sorted([*unknown, added]))
