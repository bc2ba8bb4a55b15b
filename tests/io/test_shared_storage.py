"""Shared storage holds only open formats read by the product's own code; user errors read as one line, not a crash."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
from prefect import Task
from prefect.cache_policies import NO_CACHE

from flows.cli import main
from flows.cv_keywords import cv_keywords
from ml_headcount.clustering import CLUSTERING_VERSION
from ml_headcount.config import load_settings
from tests.conftest import REPO

PRODUCT_PACKAGES = ["ml_headcount", "tasks", "flows", "modal_workers", "deployments"]
TASK_MODULES = [f"tasks.{p.stem}" for p in (REPO / "tasks").glob("*.py") if p.stem not in {"__init__", "modal_backend"}]


class TouchOnUnpickle:
    """A pickle that creates a file when loaded: what an attacker with write access to the bucket would plant."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory, rated_cvs) -> Path:
    short = rated_cvs[rated_cvs["cv_text"].str.len().between(200, 700)]
    sample = pd.concat([short[short["category"] == c].head(4) for c in (1, 0)])
    path = tmp_path_factory.mktemp("data") / "small.csv"
    sample.to_csv(path, index=False)
    return path


def settings_for(storage: Path):
    return load_settings(storage={"url": str(storage)}, extraction={"ngram_max": 2, "top_n": 10, "shard_size": 4})


def test_no_code_path_persists_or_reads_prefect_results_or_pickles():
    sources = [p for package in PRODUCT_PACKAGES for p in (REPO / package).rglob("*") if p.suffix in {".py", ".yaml"}]
    for forbidden in (
        "prefect-results",
        "result_storage",
        "persist_result=True",
        "cache_key_fn",
        "import pickle",
        "read_pickle",
    ):
        offenders = [str(p.relative_to(REPO)) for p in sources if forbidden in p.read_text()]
        assert not offenders, f"{forbidden!r} in {offenders}"
    tasks = [
        obj for name in TASK_MODULES for obj in vars(importlib.import_module(name)).values() if isinstance(obj, Task)
    ]
    assert len(tasks) >= 15
    for task in tasks:
        assert task.persist_result is False and task.cache_policy in (None, NO_CACHE), task.name


def plant_pickles(storage: Path, marker: Path) -> list[Path]:
    """A Prefect result record under the cache key the old keyword-clusters task derived from the run's own
    discriminative_keywords.csv, and raw pickles in place of the product's cluster cache entries."""
    payload = pickle.dumps(TouchOnUnpickle(marker))
    run = next(p for p in (storage / "runs").iterdir() if p.is_dir())
    content = pd.read_csv(run / "discriminative_keywords.csv", dtype={"category": str}, keep_default_na=False)
    settings = settings_for(storage)
    parts = [
        content[["category", "keyword", "score"]].to_csv(index=False),
        settings.extraction.model,
        settings.clustering.model_dump_json(),
        CLUSTERING_VERSION,
    ]
    old_key = "clusters-" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
    record = {
        "metadata": {
            "storage_key": old_key,
            "expiration": None,
            "serializer": {"type": "pickle", "picklelib": "cloudpickle"},
            "prefect_version": "3.9.1",
            "storage_block_id": None,
        },
        "result": base64.b64encode(payload).decode(),
    }
    planted = [storage / "prefect-results" / old_key]
    planted[0].parent.mkdir(parents=True, exist_ok=True)
    planted[0].write_text(json.dumps(record))
    for entry in (storage / "cache" / "clusters").glob("*/clusters.json"):
        entry.write_bytes(payload)
        planted.append(entry)
    return planted


def test_a_planted_pickle_never_runs_and_the_run_recomputes(prefect_harness, small_csv, tmp_path):
    storage, marker = tmp_path / "store", tmp_path / "pwned"
    cv_keywords(str(small_csv), settings=settings_for(storage), run_id="first")
    planted = plant_pickles(storage, marker)
    assert len(planted) == 2

    location = cv_keywords(str(small_csv), settings=settings_for(storage), run_id="second")
    assert not marker.exists(), "a planted pickle ran"
    first = json.loads((storage / "runs" / "first" / "clusters.json").read_text())
    assert json.loads((Path(location) / "clusters.json").read_text()) == first
    assert json.loads(planted[1].read_text()) == first, "the damaged cache entry was recomputed and replaced"


def test_a_cluster_entry_of_other_keywords_is_ignored_recomputed_replaced_and_reported(
    prefect_harness, small_csv, tmp_path
):
    """An entry whose summary.json vouches for its clusters.json (digests match) is still used only when it holds the
    clusters of exactly this run's keywords: anyone who can write to the store can write a consistent entry."""
    storage = tmp_path / "store"
    cv_keywords(str(small_csv), settings=settings_for(storage), run_id="first")
    (entry,) = (storage / "cache" / "clusters").glob("*/clusters.json")
    first = json.loads(entry.read_text())
    category = sorted(first)[0]
    forged = {**first, category: {**first[category], "clusters": first[category]["clusters"][:1]}}
    forged[category]["clusters"] = [{**forged[category]["clusters"][0], "keywords": ["planted keyword"]}]
    entry.write_text(json.dumps(forged))
    summary = json.loads((entry.parent / "summary.json").read_text())
    summary["sha256"]["clusters.json"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    (entry.parent / "summary.json").write_text(json.dumps(summary))

    location = cv_keywords(str(small_csv), settings=settings_for(storage), run_id="second")
    assert json.loads((Path(location) / "clusters.json").read_text()) == first
    assert json.loads(entry.read_text()) == first, "the forged entry was recomputed and replaced"
    manifest = json.loads((Path(location) / "manifest.json").read_text())
    assert {"entry": str(entry.parent), "reason": "not the clusters of this run's keywords"} in manifest[
        "cache_rejected"
    ]


def test_clearing_the_cache_makes_the_next_run_recompute(prefect_harness, small_csv, tmp_path, model_calls):
    storage = tmp_path / "store"
    first = cv_keywords(str(small_csv), settings=settings_for(storage), run_id="first")
    shutil.rmtree(storage / "cache")
    model_calls.clear()
    second = cv_keywords(str(small_csv), settings=settings_for(storage), run_id="second")
    assert model_calls, "nothing stale answered for the cleared cache"
    assert pd.read_parquet(Path(second) / "keywords.parquet").equals(pd.read_parquet(Path(first) / "keywords.parquet"))


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["run", "{tmp}/missing.csv"], "missing.csv"),
        (["run", "{csv}", "--config", "{tmp}/settings.yaml"], "extraction.top_k"),
    ],
    ids=["missing-file", "misspelt-setting"],
)
def test_user_errors_print_one_line_exit_2_no_traceback_no_retry(
    prefect_harness, small_csv, tmp_path, capfd, arguments, named
):
    (tmp_path / "settings.yaml").write_text("extraction:\n  top_k: 10\n")
    argv = [a.format(tmp=tmp_path, csv=small_csv) for a in arguments] + ["--storage-url", str(tmp_path / "store")]
    assert main(argv) == 2
    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output and "Retry" not in output
    errors = [line for line in captured.err.splitlines() if line.startswith("ml-headcount: error:")]
    assert len(errors) == 1 and named in errors[0]
