"""The discriminative score, against a hand-computed example, and keyword lists."""

from __future__ import annotations

import pandas as pd
import pytest

from ml_headcount.config import ExtractionSettings, ScoringSettings
from ml_headcount.lists import evidence, learners
from ml_headcount.lists import quality as filter_quality
from ml_headcount.scoring import discriminative as scoring

CVS = pd.DataFrame(
    {
        "cv_id": ["a1", "a2", "b1", "b2"],
        "category": ["A", "A", "B", "B"],
        "text": ["neural network training", "neural network research", "sales network", "sales growth"],
    }
)
KEYWORDS = pd.DataFrame(
    [
        ("a1", "neural network", 0.9, 1),
        ("a2", "neural network", 0.8, 1),
        ("a2", "research", 0.5, 2),
        ("b1", "sales", 0.7, 1),
        ("b1", "network", 0.6, 2),
        ("b2", "sales", 0.9, 1),
    ],
    columns=["cv_id", "keyword", "score", "rank"],
)


def score_example(**overrides) -> pd.DataFrame:
    settings = ScoringSettings(min_frequency=1, **overrides)
    stats = scoring.category_keyword_stats(CVS, KEYWORDS)
    vocabulary = sorted(KEYWORDS["keyword"].unique())
    counts = scoring.keyword_counts(CVS["text"].tolist(), vocabulary, ExtractionSettings())
    return scoring.discriminative_keywords(CVS, stats, counts, vocabulary, settings)


def test_score_matches_hand_computed_example():
    # TF-IDF (smooth idf, l2 norm) keeps network (df 3), neural network and sales (df 2); research (df 1) fails min_df.
    # network: tfidf_A = 0.6292 (in a1 and a2), tfidf_B = 0.3146 (in b1 only): tfidf share in B = 1/3;
    # extracted only from b1: frequency share in B = 1. Score = 0.5 * 1 + 0.5 / 3 = 2/3.
    # Its text is in all of A and half of B: specificity in B = 0.5 / (1 + 0.5) = 1/3.
    table = score_example().set_index(["category", "keyword"])
    assert table.loc[("B", "network"), "score"] == pytest.approx(2 / 3, abs=1e-4)
    assert table.loc[("B", "network"), "tfidf_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert table.loc[("B", "network"), "specificity"] == pytest.approx(1 / 3, abs=1e-4)
    assert table.loc[("A", "neural network"), "score"] == 1.0
    assert table.loc[("B", "sales"), "score"] == 1.0
    # research: frequency share 1 but no TF-IDF column -> 0.5, not above the 0.6 threshold
    assert ("A", "research") not in table.index
    # network in A: frequency share 0, TF-IDF share 2/3 -> 1/3
    assert ("A", "network") not in table.index


def test_threshold_frequency_and_cap_apply():
    assert "network" not in score_example(threshold=0.7)["keyword"].tolist()
    assert score_example(max_per_category=1).groupby("category").size().to_dict() == {"A": 1, "B": 1}
    frequent_only = scoring.discriminative_keywords(
        CVS,
        scoring.category_keyword_stats(CVS, KEYWORDS),
        scoring.keyword_counts(CVS["text"].tolist(), sorted(KEYWORDS["keyword"].unique()), ExtractionSettings()),
        sorted(KEYWORDS["keyword"].unique()),
        ScoringSettings(min_frequency=2),
    )
    assert set(frequent_only["keyword"]) == {"neural network", "sales"}


def test_frequency_share_is_normalised_by_category_size():
    # "python" is extracted from 1 of 1 CVs in X and 2 of 8 in Y: by share X wins (1 vs 0.25), though Y has more.
    cvs = pd.DataFrame(
        {
            "cv_id": [f"c{i}" for i in range(9)],
            "category": ["X"] + ["Y"] * 8,
            "text": ["python code"] * 3 + ["sales"] * 6,
        }
    )
    keywords = pd.DataFrame(
        [(f"c{i}", "python", 0.5, 1) for i in range(3)], columns=["cv_id", "keyword", "score", "rank"]
    )
    stats = scoring.category_keyword_stats(cvs, keywords)
    shares = stats.set_index("category")["rate"]
    assert shares["X"] == 1.0 and shares["Y"] == 0.25


def test_multiclass_scores_every_category_against_the_mean_of_the_others():
    cvs = pd.DataFrame(
        {
            "cv_id": ["h1", "h2", "d1", "d2", "s1", "s2"],
            "category": ["HR", "HR", "Data", "Data", "Sales", "Sales"],
            "text": [
                "recruiting payroll",
                "recruiting onboarding",
                "python statistics",
                "python modeling",
                "quota pipeline",
                "quota negotiation",
            ],
        }
    )
    keywords = pd.DataFrame(
        [
            ("h1", "recruiting", 0.8, 1),
            ("h2", "recruiting", 0.8, 1),
            ("d1", "python", 0.8, 1),
            ("d2", "python", 0.7, 1),
            ("s1", "quota", 0.9, 1),
            ("s2", "quota", 0.9, 1),
        ],
        columns=["cv_id", "keyword", "score", "rank"],
    )
    vocabulary = sorted(keywords["keyword"].unique())
    counts = scoring.keyword_counts(cvs["text"].tolist(), vocabulary, ExtractionSettings())
    table = scoring.discriminative_keywords(
        cvs, scoring.category_keyword_stats(cvs, keywords), counts, vocabulary, ScoringSettings()
    )
    assert dict(zip(table["category"], table["keyword"])) == {"Data": "python", "HR": "recruiting", "Sales": "quota"}
    assert (table["score"] == 1.0).all()


def test_study_lists_are_subsets_with_their_filter_quality():
    table = score_example()
    vocabulary = sorted(KEYWORDS["keyword"].unique())
    lists = learners.study_lists(table, ScoringSettings(list_min_frequency=2))
    assert lists["A"]["strict"] == ["neural network"]
    # network scores 2/3 in B: in neither list (broad needs 0.8)
    assert lists["B"]["broad"] == ["sales"]
    for by_name in lists.values():
        assert set(by_name["strict"]) <= set(by_name["broad"]) <= set(table["keyword"])
    corpus = evidence.build_corpus(CVS, KEYWORDS, ExtractionSettings())
    assert corpus.vocabulary == vocabulary
    quality = filter_quality.in_sample_quality(corpus, lists)
    assert quality["A"]["strict"] == {
        "in_sample_sensitivity": 1.0,
        "in_sample_specificity": 1.0,
        "matched_cvs": 2,
        "in_sample_phrase_sensitivity": 1.0,
        "in_sample_phrase_specificity": 1.0,  # phrase search of its query agrees
    }
