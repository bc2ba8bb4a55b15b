"""Local files written atomically: under a temporary name beside the target (the same filesystem), then renamed or
linked into place, so a reader never sees a partial file and a crash leaves nothing under the target's name."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_MARK = ".tmp-"  # in every temporary name: listings leave such files out


def temporary_beside(path: str) -> str:
    """A fresh temporary name next to `path`, its folder created."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return f"{path}{TEMPORARY_MARK}{uuid.uuid4().hex}"


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary path to write `path`'s content to: renamed to `path` when the block completes, removed if not."""
    temporary = temporary_beside(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
