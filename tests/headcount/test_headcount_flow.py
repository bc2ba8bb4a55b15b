"""The headcount flow on the demo tables (real Prefect server), and keyword runs as annotators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import (
    ExtractionSettings,
    HeadcountSettings,
    IngestSettings,
    ListSettings,
    StorageSettings,
    load_settings,
)
from ml_headcount.corpus.cleaning import clean_text, cv_id, text_hash
from ml_headcount.errors import InputError
from ml_headcount.headcount.keyword_annotators import keyword_values
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunExistsError, RunLayout
from tests.conftest import REPO

VALIDATION = str(REPO / "examples" / "headcount_validation.csv")
POPULATION = str(REPO / "examples" / "headcount_population.csv")
COUNTS = str(REPO / "examples" / "headcount_counts.csv")
ESTIMATE_COLUMNS = ["organisation", "employees", "profiles", "mean", "q10", "q50", "q90"]


def test_flow_writes_every_artifact_in_both_modes(prefect_harness, tmp_path):
    from flows.estimate import estimate_headcounts

    settings = load_settings(storage={"url": str(tmp_path)}, headcount={"draws": 300})
    by_profiles = estimate_headcounts(VALIDATION, population_url=POPULATION, settings=settings, run_id="profiles")
    by_counts = estimate_headcounts(VALIDATION, counts_url=COUNTS, settings=settings, run_id="counts")
    assert by_profiles == str(tmp_path / "estimates" / "profiles")

    for location, organisations in ((by_profiles, 6), (by_counts, 7)):
        estimates = pd.read_csv(f"{location}/estimates.csv")
        assert list(estimates.columns[:7]) == ESTIMATE_COLUMNS and len(estimates) == organisations
        assert (estimates["q10"] <= estimates["q50"]).all() and (estimates["q50"] <= estimates["q90"]).all()
        summary = json.loads(Path(f"{location}/summary.json").read_text())
        assert set(summary["total"]) == {"mean", "q10", "q50", "q90"} and summary["seed"] == 0
        assert {a["name"] for a in summary["annotators"]} >= {"keyword_filter"}
        annotators = pd.read_csv(f"{location}/annotators.csv")
        assert {"sensitivity", "specificity"} <= set(annotators.columns)
        assert Path(f"{location}/forest.png").read_bytes()[:4] == b"\x89PNG"
        assert "ML experts" in Path(f"{location}/report.md").read_text()
        repairs = pd.read_csv(f"{location}/repairs.csv")
        assert list(repairs.columns) == ["row", "organisation", "column", "value", "repaired", "rule"] and repairs.empty
        assert summary["repairs"] == {}
        assert set(summary["flags"]) == {
            "below_false_positive_rates",
            "above_sensitivities",
            "contradicts_inputs",
            "grid_edge",
        }
        assert set(summary["predictive_checks"]["annotators"]) == set(summary["model_annotators"])
        assert {"population_sensitivity", "population_specificity", "sensitivity"} <= set(annotators.columns)
        assert {"edge_mass", "flags"} <= set(estimates.columns)

    estimates = pd.read_csv(f"{by_profiles}/estimates.csv").set_index("organisation")
    other_values = pd.read_csv(f"{by_profiles}/annotators.csv").set_index("annotator")["other_values"]
    assert other_values["llm_a"] > 0  # REJECT values are counted and treated as missing
    assert estimates.loc["Elm Research Lab", "mean"] > estimates.loc["Dogwood Digital", "mean"]
    ginkgo = pd.read_csv(f"{by_counts}/estimates.csv").set_index("organisation").loc["Ginkgo Partners"]
    assert ginkgo["profiles"] == 0 and ginkgo["q90"] > 0  # no profiles: reported with the prior's interval
    with pytest.raises(RunExistsError, match="immutable"):
        estimate_headcounts(VALIDATION, counts_url=COUNTS, settings=settings, run_id="counts")


def _keyword_run(tmp_path, learned_texts: list[str], heldout: dict | None) -> tuple[ArtifactStore, RunLayout]:
    """A finished run's artifacts as the keyword run writes them (issue 11's heldout_matches.parquet included)."""
    store, run = ArtifactStore(StorageSettings(url=str(tmp_path))), RunLayout("r1")
    store.write_json(
        run.keyword_lists,
        {"1": {"broad": {"keywords": ["deep learning", "research scientist"]}, "strict": {"keywords": []}}},
    )
    parameters = {"ingest": IngestSettings().model_dump(), "extraction": ExtractionSettings().model_dump()}
    store.write_json(run.manifest, {"parameters": parameters})  # the parameters a run's manifest records
    ids = [cv_id(text_hash(clean_text(t, IngestSettings()))) for t in learned_texts]
    store.write_parquet(run.cvs, pd.DataFrame({"cv_id": ids}))
    if heldout is not None:
        store.write_parquet(run.key("heldout_matches.parquet"), pd.DataFrame({"cv_id": ids, **heldout}))
    return store, run


def test_keyword_lists_use_out_of_fold_matches_for_the_cvs_they_were_learned_from(tmp_path):
    validation = pd.DataFrame(
        {
            "cv_text": [
                "PhD on deep learning at a university",
                "Research scientist, vision lab",
                "Research scientist at DeepMind",
                "Sales manager",
            ],
            "category": ["1", "1", "1", "0"],
        }
    )
    population = pd.DataFrame(
        {"organisation": ["a", "a", "b"], "cv_text": ["deep learning engineer", "", "accountant"]}
    )
    store, run = _keyword_run(tmp_path, validation["cv_text"][:2].tolist(), {"1/broad": np.array([0, 1], np.int8)})
    lists_alone = HeadcountSettings(positive="1", text_classifier=False)
    validation_values, population_values = keyword_values(
        store, run, validation, "v.csv", population, "p.csv", lists_alone, ListSettings(), IngestSettings()
    )
    assert list(validation_values) == ["1/broad"]  # the empty strict list is no annotator
    assert validation_values["1/broad"].tolist() == [0, 1, 1, 0]  # first two out-of-fold (in-sample would say 1, 1)
    assert population_values["1/broad"].tolist() == [1, -1, 0]  # no text: missing


def test_keyword_run_without_heldout_matches_is_refused_for_cvs_it_learned_from(tmp_path):
    validation = pd.DataFrame({"cv_text": ["PhD on deep learning", "Sales manager"], "category": ["1", "0"]})
    store, run = _keyword_run(tmp_path, ["PhD on deep learning"], None)
    with pytest.raises(InputError, match="1 validation CVs are ones the keyword run .* learned its lists from"):
        keyword_values(
            store,
            run,
            validation,
            "v.csv",
            validation.assign(organisation="a"),
            "p.csv",
            HeadcountSettings(positive="1", text_classifier=False),
            ListSettings(),
            IngestSettings(),
        )


def _cli(tmp_path, *args, validation: str = VALIDATION):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "estimate",
            "--validation",
            validation,
            *args,
            "--storage-url",
            str(tmp_path / "artifacts"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_cli_prints_the_estimate_location_last_and_refuses_a_bad_annotator_in_one_line(tmp_path):
    done = _cli(tmp_path, "--counts", COUNTS, "--draws", "200", "--seed", "5", "--run-id", "demo")
    assert done.returncode == 0, done.stderr[-3000:]
    location = done.stdout.strip().splitlines()[-1]
    assert location == str(tmp_path / "artifacts" / "estimates" / "demo")
    summary = json.loads(Path(f"{location}/summary.json").read_text())
    assert summary["seed"] == 5 and summary["settings"]["draws"] == 200 and summary["mode"] == "counts"

    refused = _cli(tmp_path, "--population", POPULATION, "--annotators", "llm_a,llm_c")
    assert refused.returncode == 2
    assert "ml-headcount: error: " in refused.stderr and "annotator column 'llm_c' not found" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_refuses_a_counts_table_over_the_organisation_limit_in_one_line_before_any_work(tmp_path):
    """Above the documented limit (docs/headcount.md, Scale), one line before any work."""
    n = 100_001
    counts = tmp_path / "many.csv"
    pd.DataFrame(
        {"organisation": [f"org{i}" for i in range(n)], "employees": 100, "keyword_filter": np.arange(n) % 7}
    ).to_csv(counts, index=False)
    refused = _cli(tmp_path, "--counts", str(counts))
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.count("\n") == 1 and "100,001 organisations" in refused.stderr, refused.stderr
    assert "headcount.max_organisations, 100,000" in refused.stderr


def test_cli_accepts_a_search_tools_counts_table_and_reports_its_repairs(tmp_path):
    """Keyword counts over all employees (5 to 640,000), LLM counts on samples, and the tool's defects."""
    rows = [  # organisation, employees, keyword matches, llm_a matches, llm_a rated, llm_b matches, llm_b rated
        ("Tiny Lab", 5, 7, 3, 4, "", ""),  # more matches than the reported headcount
        ("Ghost Ltd", 0, 2, "", "", 1, 2),  # a headcount of 0 with matches
        ("Rounded Inc", "1200.5", 180, 9, 60, 7, 45),  # a headcount as the tool rounds it
        ("Mega Consulting", 640_000, 21_000, 3, 300, 2, 250),
        ("Big Services", 85_000, 4_100, 1, 120, "", ""),
        ("Mid Analytics", 3_000, 410, 14, 90, 10, 70),
        ("Specialist AI", 40, 31, 12, 20, 11, 18),
    ]
    table = pd.DataFrame(
        rows,
        columns=["organisation", "employees", "keyword_filter", "llm_a", "llm_a:profiles", "llm_b", "llm_b:profiles"],
    )
    counts = tmp_path / "search_tool.csv"
    table.to_csv(counts, index=False)
    done = _cli(tmp_path, "--counts", str(counts), "--draws", "300", "--run-id", "tool")
    assert done.returncode == 0, done.stderr[-3000:]
    location = done.stdout.strip().splitlines()[-1]
    repairs = pd.read_csv(f"{location}/repairs.csv")
    assert set(zip(repairs["organisation"], repairs["column"], repairs["rule"])) == {
        ("Tiny Lab", "employees", "denominator"),
        ("Ghost Ltd", "employees", "denominator"),
        ("Rounded Inc", "employees", "number"),
    }
    summary = json.loads(Path(f"{location}/summary.json").read_text())
    assert summary["repairs"] == {"denominator": 2, "number": 1} and summary["flags"]["grid_edge"] == 0
    estimates = pd.read_csv(f"{location}/estimates.csv").set_index("organisation")
    assert estimates.loc["Tiny Lab", "employees"] == 7 and (estimates["edge_mass"] <= 0.01).all()
    assert "3 counts repaired" in Path(f"{location}/report.md").read_text()

    refused = _cli(tmp_path, "--counts", str(counts), "--refuse-repairs")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("ml-headcount: error:")]
    assert errors == [
        f"ml-headcount: error: {counts}: row 3, column 'employees': 1200.5 is not a whole number >= 0 "
        "(repairs are off: headcount.repair_counts)"
    ]


def test_cli_reads_each_tables_columns_by_its_own_options(tmp_path):
    """A validation table with `cv_text` (and an odd label column) beside a population with `profile_text`: one
    text-column setting for both tables refused one of them (issue 21)."""
    validation, population = tmp_path / "validation.csv", tmp_path / "population.csv"
    pd.DataFrame(
        {
            "cv_text": [
                "PhD on deep learning",
                "Research scientist, vision",
                "Deep learning engineer",
                "Data scientist",
                "Sales manager",
                "Accountant",
                "Deep learning curious accountant",
                "Shop assistant",
            ],
            "hand_rating": ["1", "1", "1", "1", "0", "0", "0", "0"],
            "llm_a": [1, 1, 0, 1, 0, 1, 0, 0],
        }
    ).to_csv(validation, index=False)
    pd.DataFrame(
        {
            "organisation": ["a", "a", "a", "b", "b"],
            "llm_a": [1, 0, 1, 0, 0],
            "profile_text": ["deep learning lead", "lawyer", "research scientist", "baker", "deep learning"],
        }
    ).to_csv(population, index=False)
    _keyword_run(tmp_path / "artifacts", [], None)
    done = _cli(
        tmp_path,
        "--population",
        str(population),
        "--keywords",
        "r1",
        "--validation-label-column",
        "hand_rating",
        "--population-text-column",
        "profile_text",
        "--draws",
        "200",
        "--run-id",
        "columns",
        validation=str(validation),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    location = done.stdout.strip().splitlines()[-1]
    summary = json.loads(Path(f"{location}/summary.json").read_text())
    assert {a["name"] for a in summary["annotators"]} == {"llm_a", "1/broad"}
    assert summary["validation"]["rows"] == 8 and summary["validation"]["positives"] == 4
    matches = pd.read_csv(f"{location}/estimates.csv").set_index("organisation")["matches:1/broad"]
    assert matches.to_dict() == {"a": 2, "b": 1}  # the keyword lists matched the population's profile_text

    refused = _cli(
        tmp_path,
        "--population",
        str(population),
        "--keywords",
        "r1",
        "--validation-label-column",
        "hand_rating",
        "--validation-text-column",
        "resume",
        validation=str(validation),
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("ml-headcount: error:")]
    assert errors == [
        f"ml-headcount: error: {validation}: configured text column 'resume' not found; "
        "columns found: ['cv_text', 'hand_rating', 'llm_a']; "
        "it is set by --validation-text-column (headcount.validation_text_column)"
    ]


def test_the_studys_workflow_counts_of_a_runs_lists_from_a_search_tool_with_the_run_as_keywords(
    prefect_harness, demo_run, tmp_path
):
    """run -> query -> a search tool's counts of the lists -> estimate --counts --keywords: the counts table names the
    lists by their columns, and the validation CVs the run learned from get their out-of-fold phrase-search matches
    (refused before: "a counts table has none")."""
    from flows.estimate import estimate_headcounts

    settings = load_settings(storage={"url": str(demo_run.parent.parent)})
    location = estimate_headcounts(
        str(REPO / "examples" / "demo_cvs.csv"),
        counts_url=str(REPO / "examples" / "search_tool_counts.csv"),
        keywords_run=demo_run.name,
        settings=settings,
    )
    summary = json.loads(Path(f"{location}/summary.json").read_text())
    assert set(summary["model_annotators"]) <= {"1/broad", "1/strict"} and summary["model_annotators"]
    assert summary["mode"] == "counts" and summary["organisations"] == 6
    # the lists' rates as a new sample sees them, and one line: 20 experts are too few for rates to trust
    assert summary["keyword_rates"]["new_sample_prior"]
    assert summary["keyword_rates"]["few_experts"].startswith("the keyword lists were learned from 20 ML experts")
    estimates = pd.read_csv(f"{location}/estimates.csv").set_index("organisation")
    assert estimates.loc["Dogwood Digital", "q90"] < estimates.loc["Elm Research Lab", "q10"]
    annotators = pd.read_csv(f"{location}/annotators.csv")
    assert annotators["why"].str.startswith(("chosen", "left out")).all()
