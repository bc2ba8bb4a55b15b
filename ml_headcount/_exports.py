"""Lazy public names of a subpackage: each subpackage's __init__ names what other packages may use, without importing
its modules until a name is first asked for (so importing a package does no work, and a Modal container that needs
one module never imports the others)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def exported(package: str, names_by_module: dict[str, list[str]]) -> tuple[list[str], Callable[[str], object]]:
    """(`__all__`, a module-level `__getattr__`) for `package`, from {module: [name, ...]}."""
    module_of = {name: module for module, names in names_by_module.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)

    return sorted(module_of), __getattr__
