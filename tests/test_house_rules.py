"""The house rules that anyone can check: layers, sizes, lint. Cheap, so they run with every suite."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("ml_headcount", "tasks", "flows", "modal_workers", "deployments")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def sources(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py"))


def test_the_domain_package_imports_neither_prefect_nor_modal():
    offenders = []
    for path in sources("ml_headcount"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in {"prefect", "modal"}]
    assert offenders == []


def test_no_domain_module_is_longer_than_the_limit():
    lengths = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in sources("ml_headcount")}
    long = {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_longer_than_the_limit():
    long = []
    for path in sources(*PACKAGES):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_ruff_finds_nothing_and_formats_nothing():
    """pyproject.toml's ruff rules (lint, and pydocstyle for public functions and classes) and its formatting."""
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_every_subpackage_names_its_public_api():
    """Each subpackage's __init__ names what other packages use in `__all__`: its public modules, or, where its modules
    are private (one per variant or part), the names it imports from them. A name there must exist, and a public
    module must be named (a rename cannot leave the list behind)."""
    import importlib
    import pkgutil

    import ml_headcount

    problems = []
    for info in pkgutil.walk_packages(ml_headcount.__path__, "ml_headcount."):
        if info.ispkg:
            package = importlib.import_module(info.name)
            public = {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")}
            problems += [
                f"{info.name}.{n} does not exist"
                for n in package.__all__
                if n not in public and not hasattr(package, n)
            ]
            problems += [f"{info.name}.{m} is not named" for m in sorted(public - set(package.__all__))]
    assert problems == []


def test_cache_keys_take_settings_through_the_machine_only_marker():
    """Which fields enter a cache key is marked on the fields (`config.MACHINE_ONLY`): no key or container payload
    picks a section's fields by hand."""
    by_hand = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sources(*PACKAGES)
        if path.name != "_result_fields.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "model_dump" in line and ("exclude=" in line or "include=" in line) and "machine_only_fields" not in line
    ]
    assert by_hand == []


# Prefect internals the product has used: its server's classes, the log and event workers, a flow run's policy
PREFECT_INTERNAL_MODULES = ("prefect.server", "prefect.events.worker", "prefect._internal")
PREFECT_INTERNAL_NAMES = {"SubprocessASGIServer", "APILogWorker", "EventsWorker", "drain_all", "empirical_policy"}


def test_prefect_internals_are_used_in_one_adapter_only():
    """tasks/prefect_internals.py says what the product needs of Prefect beyond its public API, and why; nothing
    else reaches past that API (pyproject.toml pins the Prefect release it was tested on)."""
    found = []
    for path in sources(*PACKAGES):
        if path.name == "prefect_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = {a.name for a in node.names} if isinstance(node, ast.Import | ast.ImportFrom) else set()
            names |= {node.attr} if isinstance(node, ast.Attribute) else set()
            if (module or "").startswith(PREFECT_INTERNAL_MODULES) or names & PREFECT_INTERNAL_NAMES:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


# (room, room it must not import): each pair was a circle or an arrow back up
FORBIDDEN_ARROWS = [
    ("ml_headcount/extraction", "ml_headcount.scoring"),  # scoring finds extraction's candidates, never the reverse
    ("ml_headcount/config", "ml_headcount.extraction"),  # settings are plain data; cache keys live with the caches
    ("ml_headcount/config", "ml_headcount.io"),
    ("modal_workers/app.py", "modal_workers.client"),  # the client drives the app; the app knows no client
]


def test_no_room_imports_one_that_imports_it():
    found = [
        f"{path.relative_to(REPO)} imports {module}"
        for room, banned in FORBIDDEN_ARROWS
        for path in ([REPO / room] if room.endswith(".py") else sources(room))
        for module in sorted(_imports(path))
        if module == banned or module.startswith(banned + ".")
    ]
    assert found == []


# The domain functions that may take the whole `Settings`: entry points of a whole stage, which read many sections
# and `Settings`'s own methods. Every other domain function takes the section(s) it reads.
WHOLE_SETTINGS_ENTRY_POINTS = {
    # the scoring stage: reads extraction, scoring and lists, and cpu_workers() for its batch workers
    "ml_headcount/scoring/stage.py::write_run_scores",
    "ml_headcount/lists/stage.py::learn_run_lists",
}


def test_a_domain_function_takes_the_settings_sections_it_reads_not_the_whole_settings():
    """One way in for settings: a parameter annotated `Settings` (also `Settings | None`) in ml_headcount/ is a stage
    entry point of the allow-list; an allowed entry must still exist, so the list cannot outlive its reason."""
    taking_settings = set()
    for path in sources("ml_headcount"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            annotations = [a.annotation for a in arguments if a.annotation is not None]
            if any(isinstance(n, ast.Name) and n.id == "Settings" for a in annotations for n in ast.walk(a)):
                taking_settings.add(f"{path.relative_to(REPO).as_posix()}::{node.name}")
    assert sorted(taking_settings - WHOLE_SETTINGS_ENTRY_POINTS) == []
    assert sorted(WHOLE_SETTINGS_ENTRY_POINTS - taking_settings) == []
