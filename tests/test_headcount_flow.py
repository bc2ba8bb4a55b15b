"""The headcount flow on the demo tables (real Prefect server), and keyword runs as annotators."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import ExtractionSettings, IngestSettings, StorageSettings, load_settings
from ml_headcount.ingest import InputError, clean_text, text_hash
from ml_headcount.keyword_annotators import keyword_values
from ml_headcount.storage import ArtifactStore
from tests.conftest import REPO

VALIDATION = str(REPO / "examples" / "headcount_validation.csv")
POPULATION = str(REPO / "examples" / "headcount_population.csv")
COUNTS = str(REPO / "examples" / "headcount_counts.csv")
ESTIMATE_COLUMNS = ["organisation", "employees", "profiles", "mean", "q10", "q50", "q90"]


def test_flow_writes_every_artifact_in_both_modes(prefect_harness, tmp_path):
    from flows.headcount import headcount

    settings = load_settings(storage={"url": str(tmp_path)}, headcount={"draws": 300})
    by_profiles = headcount(VALIDATION, population_url=POPULATION, settings=settings, run_id="profiles")
    by_counts = headcount(VALIDATION, counts_url=COUNTS, settings=settings, run_id="counts")
    assert by_profiles == str(tmp_path / "estimates" / "profiles")

    for location, organisations in ((by_profiles, 6), (by_counts, 7)):
        estimates = pd.read_csv(f"{location}/estimates.csv")
        assert list(estimates.columns[:7]) == ESTIMATE_COLUMNS and len(estimates) == organisations
        assert (estimates["q10"] <= estimates["q50"]).all() and (estimates["q50"] <= estimates["q90"]).all()
        summary = json.loads(open(f"{location}/summary.json").read())
        assert set(summary["total"]) == {"mean", "q10", "q50", "q90"} and summary["seed"] == 0
        assert {a["name"] for a in summary["annotators"]} >= {"keyword_filter"}
        annotators = pd.read_csv(f"{location}/annotators.csv")
        assert {"sensitivity", "specificity"} <= set(annotators.columns)
        assert open(f"{location}/forest.png", "rb").read(4) == b"\x89PNG"
        assert "ML experts" in open(f"{location}/report.md").read()

    estimates = pd.read_csv(f"{by_profiles}/estimates.csv").set_index("organisation")
    other_values = pd.read_csv(f"{by_profiles}/annotators.csv").set_index("annotator")["other_values"]
    assert other_values["llm_a"] > 0  # REJECT values are counted and treated as missing
    assert estimates.loc["Elm Research Lab", "mean"] > estimates.loc["Dogwood Digital", "mean"]
    ginkgo = pd.read_csv(f"{by_counts}/estimates.csv").set_index("organisation").loc["Ginkgo Partners"]
    assert ginkgo["profiles"] == 0 and ginkgo["q90"] > 0  # no profiles: reported with the prior's interval
    with pytest.raises(InputError, match="immutable"):
        headcount(VALIDATION, counts_url=COUNTS, settings=settings, run_id="counts")


def _keyword_run(tmp_path, learned_texts: list[str], heldout: dict | None) -> ArtifactStore:
    run = ArtifactStore(StorageSettings(url=str(tmp_path / "runs" / "r1")))
    run.write_json("keyword_lists.json", {"1": {"broad": {"keywords": ["deep learning", "research scientist"]},
                                                "strict": {"keywords": []}}})
    run.write_json("manifest.json", {"parameters": {"extraction": ExtractionSettings().model_dump()}})
    ids = [text_hash(clean_text(t, IngestSettings()))[:16] for t in learned_texts]
    run.write_parquet("cvs.parquet", pd.DataFrame({"cv_id": ids}))
    if heldout is not None:
        run.write_parquet("heldout_matches.parquet", pd.DataFrame({"cv_id": ids, **heldout}))
    return run


def test_keyword_lists_use_out_of_fold_matches_for_the_cvs_they_were_learned_from(tmp_path):
    validation = pd.DataFrame({"cv_text": ["PhD on deep learning at a university", "Research scientist, vision lab",
                                           "Research scientist at DeepMind", "Sales manager"], "category": ["1", "1", "1", "0"]})
    population = pd.DataFrame({"organisation": ["a", "a", "b"], "cv_text": ["deep learning engineer", "", "accountant"]})
    run = _keyword_run(tmp_path, validation["cv_text"][:2].tolist(), {"1/broad": np.array([0, 1], np.int8)})
    validation_values, population_values = keyword_values(run, "1", IngestSettings(), validation, "v.csv", population, "p.csv")
    assert list(validation_values) == ["1/broad"]  # the empty strict list is no annotator
    assert validation_values["1/broad"].tolist() == [0, 1, 1, 0]  # first two out-of-fold (in-sample would say 1, 1)
    assert population_values["1/broad"].tolist() == [1, -1, 0]  # no text: missing


def test_keyword_run_without_heldout_matches_is_refused_for_cvs_it_learned_from(tmp_path):
    validation = pd.DataFrame({"cv_text": ["PhD on deep learning", "Sales manager"], "category": ["1", "0"]})
    run = _keyword_run(tmp_path, ["PhD on deep learning"], None)
    with pytest.raises(InputError, match="1 validation CVs are ones the keyword run .* learned its lists from"):
        keyword_values(run, "1", IngestSettings(), validation, "v.csv", validation.assign(organisation="a"), "p.csv")
