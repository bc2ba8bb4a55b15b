"""The cv-keywords flow end to end on real CVs, the real model and a real (temporary) Prefect server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cv_keywords import cv_keywords
from ml_headcount.config import ExtractionSettings, load_settings
from ml_headcount.errors import InputError
from ml_headcount.runs.layout import RunExistsError
from ml_headcount.scoring import discriminative as scoring
from tests.conftest import RESUMES

ARTIFACTS = [
    "manifest.json",
    "cvs.parquet",
    "rejected.csv",
    "keywords.parquet",
    "category_keywords.csv",
    "discriminative_keywords.csv",
    "keyword_lists.json",
    "queries.json",
    "text_classifier.json",
    "clusters.json",
    "report.md",
    "top_keywords.png",
]


def read_run(location: str) -> dict:
    run = Path(location)
    return {
        "manifest": json.loads((run / "manifest.json").read_text()),
        "cvs": pd.read_parquet(run / "cvs.parquet"),
        "keywords": pd.read_parquet(run / "keywords.parquet"),
        "stats": pd.read_csv(run / "category_keywords.csv", dtype={"category": str}, keep_default_na=False),
        "discriminative": pd.read_csv(
            run / "discriminative_keywords.csv", dtype={"category": str}, keep_default_na=False
        ),
        "lists": json.loads((run / "keyword_lists.json").read_text()),
        "clusters": json.loads((run / "clusters.json").read_text()),
    }


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def first_run(prefect_harness, rated_sample_csv, storage) -> str:
    settings = load_settings(storage={"url": str(storage)}, extraction={"shard_size": 16})
    return cv_keywords(str(rated_sample_csv), settings=settings, run_id="first")


def test_every_artifact_is_written(first_run):
    assert first_run.endswith("runs/first")
    for name in ARTIFACTS:
        assert (Path(first_run) / name).stat().st_size > 0, name
    assert (Path(first_run) / "top_keywords.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((Path(first_run).parent / "latest.json").read_text())["run_id"] == "first"


def test_artifacts_are_consistent(first_run):
    run = read_run(first_run)
    manifest, cvs, keywords = run["manifest"], run["cvs"], run["keywords"]
    assert (
        manifest["ingest"]["input_rows"]
        == 60
        == len(cvs) + manifest["ingest"]["duplicates"] + manifest["ingest"]["rejected"]
    )
    assert manifest["ingest"]["categories"] == {"0": 30, "1": 30}
    assert manifest["extraction"]["cvs_extracted"] == 60 and manifest["extraction"]["shards_extracted"] == 4
    assert set(manifest["timings_s"]) >= {"ingest", "extract", "score", "cluster"}
    assert manifest["versions"]["keybert"] and manifest["input"]["sha256"]
    # ids join, every CV got its top 30, ranks are 1..n per CV
    assert set(keywords["cv_id"]) == set(cvs["cv_id"]) and len(keywords) == manifest["extraction"]["keywords"]
    assert (keywords.groupby("cv_id").size() == 30).all()
    assert (keywords.groupby("cv_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1)))).all()
    # scored keywords and lists come from the extracted ones (docs/lists.md), clusters cover the scored ones
    discriminative, stats = run["discriminative"], run["stats"]
    assert set(stats["keyword"]) == set(keywords["keyword"])
    assert set(discriminative["keyword"]) <= set(keywords["keyword"])
    assert (discriminative["score"] > 0.6).all() and (discriminative.groupby("category").size() <= 100).all()
    for by_name in run["lists"].values():
        assert set(by_name["strict"]["keywords"]) | set(by_name["broad"]["keywords"]) <= set(keywords["keyword"])
    for category, result in run["clusters"].items():
        clustered = [k for c in result["clusters"] for k in c["keywords"]]
        assert sorted(clustered) == sorted(discriminative.loc[discriminative["category"] == category, "keyword"])


def test_keywords_separate_ml_experts_from_the_rest(first_run):
    run = read_run(first_run)
    cvs, discriminative = run["cvs"], run["discriminative"]
    expert_keywords = discriminative.loc[discriminative["category"] == "1", "keyword"].tolist()
    assert len(expert_keywords) >= 20
    counts = scoring.keyword_counts(cvs["text"].tolist(), expert_keywords, ExtractionSettings())
    hits = np.asarray((counts > 0).sum(axis=1)).ravel()
    experts, others = hits[cvs["category"] == "1"], hits[cvs["category"] == "0"]
    # probability that a random expert has more of these keywords than a random non-expert (ROC AUC)
    auc = (experts[:, None] > others[None, :]).mean() + 0.5 * (experts[:, None] == others[None, :]).mean()
    assert auc >= 0.8, (auc, experts.mean(), others.mean())
    assert experts.mean() >= 1.5 * others.mean()


def test_rerun_on_unchanged_input_does_no_model_work(first_run, rated_sample_csv, storage, model_calls):
    settings = load_settings(storage={"url": str(storage)}, extraction={"shard_size": 16})
    second = cv_keywords(str(rated_sample_csv), settings=settings, run_id="second")
    assert model_calls == []
    before, after = read_run(first_run), read_run(second)
    assert after["manifest"]["extraction"]["cvs_extracted"] == 0
    assert after["manifest"]["extraction"]["cvs_from_cache"] == 60
    pd.testing.assert_frame_equal(before["keywords"], after["keywords"])
    pd.testing.assert_frame_equal(before["discriminative"], after["discriminative"])
    assert before["clusters"] == after["clusters"]
    # ingestion and scoring are copied from the first run's stage cache, not redone
    assert not before["manifest"]["ingest"]["from_cache"] and not before["manifest"]["scoring"]["from_cache"]
    assert after["manifest"]["ingest"]["from_cache"] and after["manifest"]["scoring"]["from_cache"]
    pd.testing.assert_frame_equal(before["cvs"], after["cvs"])
    assert before["lists"] == after["lists"]


def test_prefect_artifacts_are_published(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        for key in ["top-discriminative-keywords", "cv-keywords-report"]:
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            assert artifacts, key
        assert (
            "Top discriminative keywords"
            in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cv-keywords-report"]))
            )[0].data
        )


def test_a_complete_run_is_never_overwritten(first_run, rated_sample_csv, storage):
    settings = load_settings(storage={"url": str(storage)})
    with pytest.raises(RunExistsError, match="run 'first' is complete"):
        cv_keywords(str(rated_sample_csv), settings=settings, run_id="first")


def test_bad_input_fails_at_once_and_names_the_file(prefect_harness, tmp_path):
    path = tmp_path / "no_text.csv"
    pd.DataFrame({"name": ["x", "y"], "category": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="no_text.csv: no text column found"):
        cv_keywords(str(path), settings=load_settings(storage={"url": str(tmp_path / "store")}))
    assert not list((tmp_path / "store").glob("runs/*/manifest.json"))


@pytest.mark.shared_data
def test_multiclass_resume_set_runs(prefect_harness, tmp_path):
    resumes = pd.read_csv(RESUMES).drop_duplicates("Resume")
    chosen = resumes[resumes["Category"].isin(["HR", "Data Science", "Advocate"])].groupby("Category").head(2)
    path = tmp_path / "resumes.csv"
    chosen.to_csv(path, index=False)
    settings = load_settings(storage={"url": str(tmp_path / "store")}, scoring={"min_frequency": 1})
    run = read_run(cv_keywords(str(path), settings=settings))
    assert set(run["manifest"]["ingest"]["categories"]) == {"HR", "Data Science", "Advocate"}
    assert set(run["discriminative"]["category"]) == {"HR", "Data Science", "Advocate"}
    assert set(run["clusters"]) == {"HR", "Data Science", "Advocate"}


def test_a_run_larger_than_the_learning_sample_scores_every_cv_and_learns_from_the_sample(
    first_run, rated_sample_csv, storage
):
    settings = load_settings(
        storage={"url": str(storage)}, extraction={"shard_size": 16}, lists={"max_learning_cvs": 20}
    )
    sampled = read_run(cv_keywords(str(rated_sample_csv), settings=settings, run_id="sampled"))
    everything = read_run(first_run)
    assert (
        sampled["manifest"]["scoring"]["learning_cvs"] == 20 and everything["manifest"]["scoring"]["learning_cvs"] == 60
    )
    pd.testing.assert_frame_equal(sampled["discriminative"], everything["discriminative"])  # scores use every CV
    heldout = pd.read_parquet(storage / sampled["manifest"]["location"] / "heldout_matches.parquet")
    assert len(heldout) == 20 and set(heldout["cv_id"]) < set(sampled["cvs"]["cv_id"])
    assert sampled["lists"]["1"]["broad"]["cross_validated"]["cvs"] == [10, 10]
