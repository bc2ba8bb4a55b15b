"""A store copied or synced elsewhere is whole: its manifests and latest pointer name keys, not the old place."""

from __future__ import annotations

import json
import shutil

import pandas as pd

from tests.conftest import REPO


def test_a_copied_store_points_at_its_own_runs(demo_run, tmp_path, capsys):
    from flows.cli import main

    original = demo_run.parent.parent
    copy = tmp_path / "synced" / "artifacts"
    shutil.copytree(original, copy)
    run = copy / "runs" / demo_run.name

    manifest = json.loads((run / "manifest.json").read_text())
    latest = json.loads((copy / "runs" / "latest.json").read_text())
    assert manifest["location"] == f"runs/{demo_run.name}" == latest["location"]
    assert manifest["extraction"]["cache"].startswith("cache/keywords/")
    assert (copy / manifest["extraction"]["cache"]).is_dir()
    recorded = {k: v for k, v in manifest.items() if k != "parameters"}  # the settings as given stay as given
    for text in (json.dumps(recorded), (copy / "runs" / "latest.json").read_text()):
        assert str(original) not in text

    # the copy answers on its own, with the original out of the way (moved back after: other tests use it)
    hidden = original.with_name("moved-away")
    original.rename(hidden)
    try:
        output = tmp_path / "matches.csv"
        code = main(
            [
                "apply",
                "latest",
                str(REPO / "examples" / "demo_cvs.csv"),
                "--storage-url",
                str(copy),
                "--output",
                str(output),
                "--json",
                "-q",
            ]
        )
    finally:
        hidden.rename(original)
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["run_id"] == demo_run.name and summary["rows"] == 43
    assert len(pd.read_csv(output)) == 43
