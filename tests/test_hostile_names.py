"""Names chosen by a hostile user (issue 32): category labels, a file name, organisation and annotator names that are
Markdown, HTML, mathtext or spreadsheet formulas, and a run's artifacts edited after it was written.

Each case goes through the real command line (`python -m flows.cli`, its own temporary Prefect server). report.md is
rendered by markdown-it (CommonMark with GFM tables), as the Prefect UI renders a markdown artifact: a name must show
as its text, in its own table cell, and never become an HTML element or a link.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "examples"
# a browser that rendered these as HTML fetched the URL; the link and the pipe are Markdown's
IMAGE = "<img src=http://127.0.0.1:4299/x onerror=alert(1)>"
NAME = f"$x^$ | {IMAGE} [link](http://127.0.0.1:4299/y) *a_b* & \\|"
FORMULA = "=cmd|' /C calc'!A0"
FILE_NAME = "cvs `x` | y.csv"


def cli(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
    )
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`run` on the demo CVs labelled NAME and FORMULA, read from a file named FILE_NAME: the command and its
    storage."""
    folder = tmp_path_factory.mktemp("hostile")
    table = pd.read_csv(EXAMPLES / "demo_cvs.csv", dtype={"category": str})
    table["category"] = table["category"].map({"0": NAME, "1": FORMULA})
    table.to_csv(folder / FILE_NAME, index=False)
    storage = folder / "artifacts"
    return cli("run", str(folder / FILE_NAME), "--storage-url", str(storage), home=folder / "prefect"), storage


@pytest.fixture(scope="module")
def run(hostile_run) -> Path:
    result, storage = hostile_run
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def test_a_category_with_mathtext_in_it_is_drawn_as_typed(hostile_run, run):
    """Item 4: matplotlib parsed `$x^$` as mathtext and the run failed at its report (exit 1, a traceback)."""
    result, _ = hostile_run
    assert "Traceback" not in result.stderr
    for artifact in ("top_keywords.png", "report.html", "manifest.json"):
        assert (run / artifact).stat().st_size > 0, artifact
