"""The README's first command: the CLI on the bundled demo data, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import REPO


def test_demo_run_prints_its_location_and_learns_separating_keywords(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "examples/demo_cvs.csv", "--storage-url", str(tmp_path / "artifacts")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = Path(result.stdout.strip().splitlines()[-1])
    assert run.parent == tmp_path / "artifacts" / "runs"

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["ingest"]["cvs"] == 40 and manifest["ingest"]["duplicates"] == 1
    assert manifest["ingest"]["repaired_encoding"] == 1
    rejected = pd.read_csv(run / "rejected.csv")
    assert sorted(rejected["reason"]) == ["duplicate of row 6", "empty text", "missing label"]

    lists = json.loads((run / "keyword_lists.json").read_text())
    for category in ("0", "1"):
        assert lists[category]["broad"]["keywords"]
        assert lists[category]["broad"]["in_sample_sensitivity"] >= 0.9
        assert lists[category]["broad"]["in_sample_specificity"] >= 0.9
    assert "naïve" in pd.read_parquet(run / "cvs.parquet")["text"].str.cat()
