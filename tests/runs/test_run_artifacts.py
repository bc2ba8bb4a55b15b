"""A run's stored artifacts, read back by `apply`, `estimate --keywords` and `query`: bounded before they are parsed
and checked against their schema, so a damaged or planted file is one line naming the run and the file, exit 2,
before Prefect starts, never a traceback nor a silently wrong column (issue 32, item 8)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ml_headcount.config import Settings, StorageSettings
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists.run_lists import load_run_lists
from ml_headcount.lists.text_classifier import FORMAT, VECTORIZER, skipped_document
from tests.conftest import REPO

CLASSIFIER = {
    "format": FORMAT,
    "vectorizer": VECTORIZER,
    "terms": ["machine", "translation"],
    "idf": [1.0, 1.5],
    "categories": {"1": {"intercept": -0.5, "coefficients": [1.0, 2.0]}},
}
QUERIES = {"queries": {"1": {"broad": {"dialects": {"boolean": {"query": '"machine translation"'}}}}}}


def write_run(root: Path, **documents) -> Path:
    """A finished run `done` under `root` (what `apply` and `query` read of one), with `documents` (file -> JSON
    text or value) in place of its own."""
    run = root / "runs" / "done"
    run.mkdir(parents=True)
    files = {
        "manifest.json": {"run_id": "done", "parameters": Settings().model_dump(mode="json")},
        "keyword_lists.json": {"1": {"broad": {"keywords": ["machine translation"], "exclusions": []}}},
        "queries.json": QUERIES,
        "text_classifier.json": CLASSIFIER,
    } | {name.replace("_json", ".json"): value for name, value in documents.items()}
    for name, value in files.items():
        (run / name).write_text(value if isinstance(value, str) else json.dumps(value))
    return run


def cli(tmp_path: Path, *args: str) -> tuple[int, list[str], str, int]:
    """The command in a fresh process where no Prefect server can start: (exit code, its error lines, standard error,
    peak RSS in kB). A check that passes before Prefect is the only way to exit 2 here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL="http://127.0.0.1:9/api",
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
    )
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    errors = [line for line in done.stderr.splitlines() if line.startswith("ml-headcount: error:")]
    return done.returncode, errors, done.stderr, peak


def apply(tmp_path: Path, run: Path) -> tuple[int, list[str], str, int]:
    table = tmp_path / "profiles.csv"
    table.write_text("cv_text\nTrained transformer models for machine translation.\n")
    return cli(tmp_path, "apply", str(run), str(table), "--output", str(tmp_path / "matches.parquet"))


def assert_refused(outcome: tuple[int, list[str], str, int], run: Path, file: str, problem: str) -> None:
    code, errors, stderr, _ = outcome
    assert code == 2 and len(errors) == 1, stderr[-3000:]
    assert errors[0].startswith(f"ml-headcount: error: {run}/{file}: not a run's {file}: "), errors
    assert re.search(problem, errors[0]), errors[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "documents, file, problem",
    [
        ({"keyword_lists_json": {"1": {"broad": {"keywords": "research"}}}}, "keyword_lists.json", "valid list"),
        (
            {"text_classifier_json": CLASSIFIER | {"idf": [1.0]}},
            "text_classifier.json",
            "idf: 1 values for 2 terms",
        ),
        (
            {
                "text_classifier_json": CLASSIFIER
                | {"categories": {"1": {"intercept": float("nan"), "coefficients": [1, 2]}}}
            },
            "text_classifier.json",
            r"categories\.1\.intercept: Input should be a finite number",
        ),
        ({"manifest_json": {"run_id": "done", "parameters": {}}}, "manifest.json", "parameters.ingest: Field required"),
    ],
    ids=["keywords a string", "classifier lengths differ", "NaN intercept", "manifest without settings"],
)
def test_apply_refuses_a_run_artifact_of_another_shape_before_prefect_starts(documents, file, problem, tmp_path):
    run = write_run(tmp_path, **documents)
    assert_refused(apply(tmp_path, run), run, file, problem)


def test_a_flood_of_empty_arrays_is_refused_before_it_is_parsed(tmp_path):
    """45 MB of `[],` in keyword_lists.json cost 1.15 GB parsed before it was refused: now it is refused unparsed."""
    run = write_run(tmp_path, keyword_lists_json="[" + "[]," * 15_000_000 + "[]]")
    outcome = apply(tmp_path, run)
    assert_refused(outcome, run, "keyword_lists.json", "larger than 16,777,216 bytes, not read")
    assert outcome[3] < 400_000, f"peak RSS {outcome[3] / 1000:.0f} MB"
    (run / "keyword_lists.json").write_text("[" + "[]," * 4_000_000 + "[]]")  # 12 MB: under the bytes bound
    assert_refused(apply(tmp_path, run), run, "keyword_lists.json", "4,000,002 arrays and objects, over 1,000,000")


@pytest.mark.parametrize(
    "queries, problem",
    [
        ({"queries": []}, "queries: Input should be a valid dictionary"),
        ("[" * 200_000, "JSON nested too deeply"),
        (
            {"queries": {"1": {"broad": {"any_of": ["machine"], "none_of": []}}}},
            r"queries\.1\.broad\.dialects: Field required",
        ),
    ],
    ids=["queries a list", "nested 200,000 deep", "dialects missing"],
)
def test_query_refuses_a_malformed_queries_json_in_one_line(queries, problem, tmp_path):
    run = write_run(tmp_path, queries_json=queries)
    assert_refused(cli(tmp_path, "query", str(run)), run, "queries.json", problem)


def test_a_skipped_classifier_is_a_valid_record(tmp_path):
    write_run(tmp_path, text_classifier_json=skipped_document("no term is in 2 or more of its 12 CVs", 12))
    run_lists = load_run_lists(ArtifactStore(StorageSettings(url=str(tmp_path))), "done")
    assert run_lists.classifier is None and run_lists.lists["1/broad"] == ["machine translation"]
