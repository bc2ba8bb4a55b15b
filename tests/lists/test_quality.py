"""Keyword lists on real rated CVs: folds, held-out matches, the selected learner, and the fast matcher."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import load_settings
from ml_headcount.lists import eligibility, evidence, intervals, learners, quality, queries
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.scoring.matching import KeywordMatcher


@pytest.fixture(scope="module")
def settings():
    return load_settings()


@pytest.fixture(scope="module")
def corpus(rated_sample_run, settings) -> evidence.Corpus:
    """60 rated CVs (30 ML experts) with the keywords the real model extracted from them in a real run."""
    cvs = pd.read_parquet(rated_sample_run / "cvs.parquet")
    return evidence.build_corpus(cvs, pd.read_parquet(rated_sample_run / "keywords.parquet"), settings.extraction)


def test_folds_are_stratified_reproducible_and_independent_of_row_order(rated):
    ids, labels = rated["cv_id"].to_numpy(), rated["category"].to_numpy()
    folds = stratified_folds(ids, labels, 5, seed=7)
    for label in np.unique(labels):
        per_fold = np.bincount(folds[labels == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    assert np.bincount(folds).max() - np.bincount(folds).min() <= 1
    shuffled = np.random.default_rng(0).permutation(len(ids))
    assert (stratified_folds(ids[shuffled], labels[shuffled], 5, seed=7) == folds[shuffled]).all()
    assert (stratified_folds(ids, labels, 5, seed=8) != folds).any()


@pytest.mark.timeout(2400)  # the first test to use the run waits for its extraction (60 CVs on a busy 2-core CPU)
@pytest.mark.parametrize("method", ["selected", "study"])
def test_a_heldout_match_never_depends_on_its_own_label(corpus, settings, method):
    list_settings = settings.lists.model_copy(update={"method": method})
    labels = corpus.cvs["category"].to_numpy()
    folds = stratified_folds(corpus.cvs["cv_id"].to_numpy(), labels, 5, seed=1)
    before = quality.heldout_matches(corpus, folds, list_settings, settings.scoring)
    held = folds == 0
    flipped = np.where(held, np.where(labels == "1", "0", "1"), labels)
    after = quality.heldout_matches(
        dataclasses.replace(corpus, cvs=corpus.cvs.assign(category=flipped)), folds, list_settings, settings.scoring
    )
    pd.testing.assert_frame_equal(before[held], after[held])
    assert list(before.columns) == [
        "cv_id",
        "0/strict",
        "0/broad",
        "1/strict",
        "1/broad",
        "0/strict@phrase",
        "0/broad@phrase",
        "1/strict@phrase",
        "1/broad@phrase",
    ]
    assert all(before[c].dtype == np.int8 for c in before.columns[1:])
    if method == "selected":  # the study's rule learns empty lists from 48 CVs: nothing to change
        # the flipped labels do reach the other folds' lists: their matches are learned from them
        assert before.iloc[:, 1:].to_numpy().any() and not before[~held].equals(after[~held])


def test_selected_lists_avoid_organisation_names_and_single_employer_phrases(corpus, settings):
    lists = learners.learn(corpus, None, settings.lists, settings.scoring)
    assert lists["1"]["broad"] and lists["1"]["strict"]
    positive = corpus.cvs["category"].to_numpy() == "1"
    for keywords in lists["1"].values():
        assert len(keywords) <= settings.lists.max_keywords
        assert eligibility.organisation_name_share(corpus, keywords, settings.lists) <= 1 / 3
        for keyword in keywords:
            column = corpus.vocabulary.index(keyword)
            containing = corpus.counts[:, column].toarray().ravel() > 0
            assert len(set(corpus.employers[containing & positive])) >= settings.lists.min_employers
    in_sample = quality.in_sample_quality(corpus, lists)["1"]
    assert in_sample["broad"]["in_sample_sensitivity"] >= in_sample["strict"]["in_sample_sensitivity"]
    assert in_sample["strict"]["in_sample_specificity"] >= 0.9
    stopped = settings.lists.model_copy(update={"organisation_stop_list": [lists["1"]["broad"][0]]})
    relearned = learners.learn(corpus, None, stopped, settings.scoring)["1"]["broad"]
    assert lists["1"]["broad"][0] not in relearned


def test_cross_validated_quality_reports_intervals_and_too_small_categories(corpus, settings):
    result = quality.cross_validate(corpus, settings.lists, settings.scoring)
    broad = result.quality["1"]["broad"]
    assert broad["sensitivity_interval"][0] <= broad["sensitivity"] <= broad["sensitivity_interval"][1]
    assert (
        broad["balanced_accuracy_interval"][0] <= broad["balanced_accuracy"] <= broad["balanced_accuracy_interval"][1]
    )
    assert broad["balanced_accuracy"] == pytest.approx((broad["sensitivity"] + broad["specificity"]) / 2, abs=1e-4)
    # three CVs relabelled into a category of their own: too few for 5 folds, said instead of numbers
    labels = corpus.cvs["category"].to_numpy().copy()
    labels[:3] = "rare"
    small = quality.cross_validate(
        dataclasses.replace(corpus, cvs=corpus.cvs.assign(category=labels)), settings.lists, settings.scoring
    )
    assert (
        "too few CVs" in small.quality["rare"]["broad"]["note"] and "sensitivity" not in small.quality["rare"]["broad"]
    )
    assert "sensitivity" in small.quality["1"]["broad"]


def test_wilson_interval_and_bootstrap():
    # by hand: z = 1.2816, centre = (0.8 + z²/20) / (1 + z²/10) = 0.7577, half-width = 0.1561
    low, high = intervals.wilson_interval(8, 10, 0.8)
    assert low == pytest.approx(0.6016, abs=1e-3) and high == pytest.approx(0.9138, abs=1e-3)
    low, high = intervals.bootstrap_balanced_accuracy(0.8, 100, 0.9, 300, 0.8, 2000, seed=0)
    assert low < 0.85 < high and high - low < 0.1


def test_matcher_equals_scoring_presence_on_all_rated_cvs(corpus, rated, settings):
    """Every extracted keyword of the sample as a list of its own, plus the learned lists, on 454 CVs."""
    lists = {f"k{i}": [k] for i, k in enumerate(corpus.vocabulary)}
    learned = learners.learn(corpus, None, settings.lists, settings.scoring)
    lists.update({f"{c}/{n}": keywords for c, by_name in learned.items() for n, keywords in by_name.items()})
    matched = KeywordMatcher(lists, settings.extraction).match(rated["text"].tolist())
    everything = evidence.build_corpus(rated, corpus.keywords, settings.extraction)
    rows = np.arange(len(rated))
    expected = np.column_stack([quality.list_matches(everything, rows, keywords) for keywords in lists.values()])
    assert matched.shape == (len(rated), len(lists))
    assert (matched == expected).all()
    assert expected.any(axis=0).sum() > len(lists) * 0.9  # most keywords occur somewhere: the comparison is not vacuous


def _research_corpus(settings, sales_in_negatives: bool) -> evidence.Corpus:
    """40 CVs of category 1 with `research` and a word of their own, 40 others: 20 with `research sales` (or `sales
    office`), 20 with `marketing office`. Every word is a keyword; only `research`, `sales`, `marketing` and `office`
    occur in enough CVs to enter a list."""
    word = [f"topic{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(80)]
    negative = "research sales" if sales_in_negatives else "sales office"
    texts = [f"research {word[i]}" for i in range(40)] + [
        f"{negative if i < 20 else 'marketing office'} {word[40 + i]}" for i in range(40)
    ]
    cvs = pd.DataFrame({"cv_id": [f"cv{i}" for i in range(80)], "category": ["1"] * 40 + ["0"] * 40, "text": texts})
    keywords = pd.DataFrame(
        [(cv, k) for cv, text in zip(cvs["cv_id"], texts) for k in text.split()], columns=["cv_id", "keyword"]
    ).assign(score=0.5, rank=1)
    return evidence.build_corpus(cvs, keywords, settings.extraction)


def test_the_learner_chooses_and_not_by_inner_cross_validation_and_keeps_the_plain_or(settings):
    # `research` finds every CV of category 1 and half of the others; AND NOT `sales` removes those
    settings = settings.model_copy(update={"lists": settings.lists.model_copy(update={"max_exclusions": 3})})
    corpus = _research_corpus(settings, sales_in_negatives=True)
    broad = learners.learn(corpus, None, settings.lists, settings.scoring)["1"]["broad"]
    assert (list(broad), broad.exclusions) == (["research"], ["sales"])
    validated = quality.cross_validate(corpus, settings.lists, settings.scoring)
    assert validated.quality["1"]["broad"]["balanced_accuracy"] == 1.0
    assert validated.exclusion_stability["1"]["broad"] == {"sales": 1.0}
    document = quality.keyword_lists_document(corpus, {"1": {"broad": broad}}, validated, settings.lists)
    assert document["1"]["broad"]["exclusions"] == ["sales"]
    assert queries.queries_document(document)["queries"]["1"]["broad"]["dialects"]["boolean"]["query"] == (
        '("research") NOT ("sales")'
    )
    # the plain OR list stays a candidate: without exclusions allowed it is all there is, at 0.75
    plain = settings.lists.model_copy(update={"max_exclusions": 0})
    assert learners.learn(corpus, None, plain, settings.scoring)["1"]["broad"].exclusions == []
    assert quality.cross_validate(corpus, plain, settings.scoring).quality["1"]["broad"]["balanced_accuracy"] == 0.75
    # where no exclusion pays (`sales` never meets `research`), inner cross-validation keeps the plain OR
    separable = learners.learn(
        _research_corpus(settings, sales_in_negatives=False), None, settings.lists, settings.scoring
    )["1"]["broad"]
    assert (list(separable), separable.exclusions) == (["research"], [])
