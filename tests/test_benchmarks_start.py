"""Every script in benchmarks/ starts: a rename elsewhere broke two of them (extraction.py and apply_throughput.py
imported benchmarks.filter_quality after it became list_quality.py), and nothing noticed. Their figures live in the
docs; this only proves each one imports and parses its arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = sorted(path.name for path in (REPO / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_starts(script):
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--help"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
