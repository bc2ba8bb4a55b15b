"""The TF-IDF + logistic-regression annotator: its stored JSON model, its cross-validated rates, apply, headcount."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows import cli
from ml_headcount.config import HeadcountSettings, IngestSettings, ListSettings, StorageSettings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.headcount.keyword_annotators import keyword_values
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists import text_classifier
from ml_headcount.lists.documents import ClassifierDocument
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.runs.layout import RunLayout
from tests.conftest import RATED_CVS


def stored_model(document: dict) -> text_classifier.TextClassifier:
    """The classifier of a text_classifier.json document, as a run's reader loads it."""
    return text_classifier.TextClassifier.from_document(ClassifierDocument.model_validate(document))


def test_the_stored_model_reproduces_scikit_learns_predictions_exactly_on_the_rated_cvs(rated):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = rated["text"].tolist(), rated["category"].to_numpy().astype(str)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(texts)
    model = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=42).fit(features, labels == "1")

    stored = json.loads(json.dumps(text_classifier.fit(texts, labels, seed=42).document()))  # what the run writes
    assert set(stored) >= {"terms", "idf", "categories"}
    assert stored["terms"] == vectorizer.get_feature_names_out().tolist()
    loaded = stored_model(stored)
    assert np.array_equal(loaded.coefficients["1"], model.coef_[0]) and loaded.intercepts["1"] == model.intercept_[0]
    # scikit-learn's prediction path for texts: transform, then decide (fit_transform orders each row's terms
    # differently, which moves decision values by ~1e-15)
    predicted = vectorizer.transform(texts)
    assert np.array_equal(loaded.decision(texts)["1"], model.decision_function(predicted))
    annotated = loaded.annotate(texts)
    assert np.array_equal(annotated["1/tfidf"], model.predict(predicted).astype(np.int8))
    assert np.array_equal(annotated["0/tfidf"], 1 - annotated["1/tfidf"])  # no CV sits exactly on the boundary
    assert 0 < annotated["1/tfidf"].mean() < 1
    with pytest.raises(ValueError, match="the vectorizer is not"):
        ClassifierDocument.model_validate({**stored, "vectorizer": {"ngram_range": [1, 3]}})


@pytest.fixture(scope="module")
def run_classifier(rated_sample_run) -> dict:
    return json.loads((rated_sample_run / "text_classifier.json").read_text())


@pytest.mark.timeout(2400)  # the first test to use the run waits for its extraction
def test_the_runs_reported_rates_are_cross_validated_on_the_lists_folds(rated_sample_run, run_classifier):
    cvs = pd.read_parquet(rated_sample_run / "cvs.parquet")
    heldout = pd.read_parquet(rated_sample_run / "heldout_matches.parquet")
    labels = cvs["category"].to_numpy().astype(str)
    assert heldout["cv_id"].tolist() == cvs["cv_id"].tolist() and heldout["1/tfidf"].dtype == np.int8
    # the held-out annotations are those of classifiers learned without each CV's fold (the lists' first-seed folds)
    folds = stratified_folds(cvs["cv_id"].to_numpy(), labels, 5, 42)
    decided = text_classifier.heldout_decisions(cvs["text"].tolist(), labels, folds, 42)
    assert np.array_equal(heldout["1/tfidf"].to_numpy(), (decided["1"] >= 0).astype(np.int8))
    quality = run_classifier["quality"]["1"]
    validated, expert = quality["cross_validated"], labels == "1"
    assert validated["folds"] == 5
    assert validated["sensitivity"] == pytest.approx(heldout.loc[expert, "1/tfidf"].mean(), abs=1e-4)
    assert validated["specificity"] == pytest.approx(1 - heldout.loc[~expert, "1/tfidf"].mean(), abs=1e-4)
    # the in-sample figures are the stored model's on the CVs it learned from: a different, optimistic measurement
    in_sample = stored_model(run_classifier).annotate(cvs["text"].tolist())["1/tfidf"]
    assert quality["in_sample_sensitivity"] == pytest.approx(in_sample[expert].mean(), abs=1e-4)
    assert quality["in_sample_sensitivity"] + quality["in_sample_specificity"] > (
        validated["sensitivity"] + validated["specificity"]
    )
    assert "TF-IDF + logistic-regression annotator" in (rated_sample_run / "report.md").read_text()


def test_apply_emits_the_classifiers_column(rated_sample_run, run_classifier, tmp_path, capsys):
    output = tmp_path / "matches.parquet"
    assert cli.main(["apply", str(rated_sample_run), str(RATED_CVS), "--output", str(output)]) == 0
    capsys.readouterr()
    matches = pd.read_parquet(output)
    assert list(matches.columns[-2:]) == ["0/tfidf", "1/tfidf"]
    texts = ingest(str(RATED_CVS), IngestSettings()).cvs["text"].tolist()  # no rated CV repeats or is rejected
    expected = stored_model(run_classifier).annotate(texts)["1/tfidf"]
    assert np.array_equal(matches["1/tfidf"].to_numpy(), expected)
    assert json.loads(Path(f"{output}.summary.json").read_text())["matched"]["1/tfidf"] == int(expected.sum())


def test_headcount_uses_the_classifiers_out_of_fold_annotations_for_the_cvs_it_learned_from(
    rated_sample_run, run_classifier, tmp_path
):
    store = ArtifactStore(StorageSettings(url=str(rated_sample_run.parent.parent)))
    run = RunLayout(rated_sample_run.name)
    rated = ingest(str(RATED_CVS), IngestSettings()).cvs
    table = rated.rename(columns={"text": "cv_text"})
    with_classifier = HeadcountSettings(positive="1", text_classifier=True)
    validation, population = keyword_values(
        store, run, table, "validation.csv", table, "population.csv", with_classifier, ListSettings(), IngestSettings()
    )
    assert set(validation) == {"1/strict", "1/broad", "1/tfidf"}
    learned = rated["cv_id"].isin(set(pd.read_parquet(rated_sample_run / "cvs.parquet")["cv_id"])).to_numpy()
    heldout = pd.read_parquet(rated_sample_run / "heldout_matches.parquet").set_index("cv_id")
    annotated = stored_model(run_classifier).annotate(rated["text"].tolist())["1/tfidf"]
    out_of_fold = heldout["1/tfidf"].reindex(rated["cv_id"][learned]).to_numpy()
    assert np.array_equal(validation["1/tfidf"][learned], out_of_fold)
    assert np.array_equal(validation["1/tfidf"][~learned], annotated[~learned])
    assert np.array_equal(population["1/tfidf"], annotated)
    assert (validation["1/tfidf"][learned] != annotated[learned]).any()  # out-of-fold, not the model's own view

    without = tmp_path / "runs" / "without"
    shutil.copytree(rated_sample_run, without)
    (without / "text_classifier.json").unlink()
    # the classifier is an annotator by default: a run without one gives the lists alone (the task says so in a line)
    validation, population = keyword_values(
        ArtifactStore(StorageSettings(url=str(tmp_path))),
        RunLayout("without"),
        table,
        "validation.csv",
        table,
        "population.csv",
        with_classifier,
        ListSettings(),
        IngestSettings(),
    )
    assert set(validation) == set(population) == {"1/strict", "1/broad"}
