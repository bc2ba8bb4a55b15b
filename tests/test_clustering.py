"""Clustering: HDBSCAN where it finds structure, KMeans where most points are noise, same output twice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_headcount.clustering import cluster_discriminative, cluster_keywords, cluster_labels, describe_clusters
from ml_headcount.config import ClusteringSettings, ExtractionSettings
from ml_headcount.extraction.extractor import KeywordExtractor


def normalised(points: np.ndarray) -> np.ndarray:
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_hdbscan_finds_tight_groups():
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]
    points = normalised(np.vstack([c + 0.01 * rng.standard_normal((6, 8)) for c in centres]))
    labels, method = cluster_labels(points, ClusteringSettings())
    assert method == "hdbscan"
    assert len(set(labels[labels >= 0])) == 3


def test_kmeans_fallback_when_most_points_are_noise():
    # one tight group of 4 and 26 points each farther from the rest than the last: mostly noise to HDBSCAN
    x = np.concatenate([[0, 0.001, 0.002, 0.003], 10 * 1.5 ** np.arange(26)])
    points = np.c_[x, np.zeros_like(x)]
    labels, method = cluster_labels(points, ClusteringSettings())
    assert method == "kmeans"
    assert len(set(labels)) == 6  # k = max(2, min(30 // 5, 40))
    again, _ = cluster_labels(points, ClusteringSettings())
    assert (labels == again).all()


def test_too_few_points_form_one_cluster():
    labels, method = cluster_labels(normalised(np.ones((2, 4))), ClusteringSettings())
    assert method == "single" and labels.tolist() == [0, 0]


def test_clusters_report_keywords_scores_mean_and_representative():
    points = normalised(np.array([[1, 0.01], [1, 0.02], [1, 0.0], [0.01, 1], [0.02, 1], [0.0, 1]]))
    result = cluster_keywords(
        ["a", "b", "c", "x", "y", "z"], np.array([0.7, 0.9, 0.8, 0.95, 0.6, 0.65]), points, ClusteringSettings()
    )
    by_representative = {c["representative"]: c for c in result["clusters"]}
    assert set(by_representative) == {"b", "x"}
    assert by_representative["b"]["keywords"] == ["b", "c", "a"]
    assert by_representative["b"]["mean_score"] == 0.8


@pytest.mark.model
def test_real_embeddings_group_related_keywords():
    keywords = [
        "reinforcement learning",
        "policy gradient",
        "reward shaping",
        "deep q learning",
        "payroll",
        "recruiting",
        "employee onboarding",
        "talent acquisition",
    ]
    table = pd.DataFrame({"category": "1", "keyword": keywords, "score": np.linspace(0.99, 0.9, len(keywords))})
    settings = ClusteringSettings(min_cluster_size=3, min_samples=1)
    clusters = cluster_discriminative(table, KeywordExtractor(ExtractionSettings()).embed, settings)["1"]["clusters"]
    groups = [set(c["keywords"]) for c in clusters if c["cluster"] != "unclustered"]
    assert any({"reinforcement learning", "policy gradient"} <= g for g in groups)
    assert not any({"reinforcement learning", "payroll"} <= g for g in groups)


def test_the_noise_group_is_named_unclustered_not_after_a_keyword():
    labels = np.array([0, 0, 0, -1, -1])
    clusters = describe_clusters(["a", "b", "c", "stray", "other"], np.array([0.9, 0.8, 0.7, 0.99, 0.6]), labels)
    assert [(c["cluster"], c["representative"]) for c in clusters] == [(0, "a"), ("unclustered", "unclustered")]
    assert clusters[-1]["keywords"] == ["stray", "other"]
