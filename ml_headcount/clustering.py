"""Group a category's discriminative keywords into themes.

HDBSCAN on L2-normalised embeddings (euclidean there orders like cosine); when
more than `max_noise_fraction` of the points are noise, KMeans with
k = max(2, min(n // 5, kmeans_max_k)). Deterministic for the same input, so a
result is cached under a key of its input's content (`clusters_key`) and
checked against that input before it is trusted (`matches_input`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from ml_headcount.config import ClusteringSettings, ExtractionSettings, result_fields

CLUSTERING_INPUT = ["category", "keyword", "score"]

NOISE = -1
# Part of the clustering cache key: bump when the same input would give other clusters.
CLUSTERING_VERSION = "3"


def cluster_labels(embeddings: np.ndarray, settings: ClusteringSettings) -> tuple[np.ndarray, str]:
    """Labels per point (-1 = noise) and the method that produced them."""
    n = len(embeddings)
    if n < max(settings.min_cluster_size, 2):
        return np.zeros(n, dtype=int), "single"
    from sklearn.cluster import HDBSCAN, KMeans

    labels = HDBSCAN(
        min_cluster_size=settings.min_cluster_size,
        min_samples=settings.min_samples,
        cluster_selection_method=settings.cluster_selection_method,
        metric="euclidean",
        copy=True,
    ).fit_predict(embeddings)
    if (labels == NOISE).mean() <= settings.max_noise_fraction:
        return labels, "hdbscan"
    k = min(max(2, min(n // 5, settings.kmeans_max_k)), n)
    return KMeans(n_clusters=k, random_state=settings.seed, n_init=10).fit_predict(embeddings), "kmeans"


def describe_clusters(keywords: list[str], scores: np.ndarray, labels: np.ndarray) -> list[dict]:
    """One entry per cluster, largest mean score first; noise points form a final 'unclustered' entry."""
    clusters = []
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        members = members[np.lexsort((np.asarray(keywords, dtype=object)[members], -scores[members]))]
        clusters.append(
            {
                "cluster": int(label) if label != NOISE else "unclustered",
                "keywords": [keywords[i] for i in members],
                "scores": [round(float(scores[i]), 4) for i in members],
                "mean_score": round(float(scores[members].mean()), 4),
                "representative": keywords[members[0]] if label != NOISE else "unclustered",
                "size": int(len(members)),
            }
        )
    real = sorted(
        (c for c in clusters if c["cluster"] != "unclustered"), key=lambda c: (-c["mean_score"], c["representative"])
    )
    return real + [c for c in clusters if c["cluster"] == "unclustered"]


def cluster_keywords(
    keywords: list[str], scores: np.ndarray, embeddings: np.ndarray, settings: ClusteringSettings
) -> dict:
    """The clusters of one category's keywords and the method that found them."""
    labels, method = cluster_labels(embeddings, settings)
    return {"method": method, "clusters": describe_clusters(keywords, np.asarray(scores, dtype=float), labels)}


def cluster_discriminative(
    discriminative: pd.DataFrame, embed: Callable[[list[str]], np.ndarray], clustering: ClusteringSettings
) -> dict[str, dict]:
    """Clusters of each category's discriminative keywords; every keyword is embedded once, by `embed`."""
    phrases = sorted(discriminative["keyword"].unique())
    vectors = dict(zip(phrases, embed(phrases)))
    return {
        str(category): cluster_keywords(
            group["keyword"].tolist(),
            group["score"].to_numpy(),
            np.asarray([vectors[k] for k in group["keyword"]]),
            clustering,
        )
        for category, group in discriminative.groupby("category", sort=True)
    }


def clusters_key(discriminative: pd.DataFrame, extraction: ExtractionSettings, clustering: ClusteringSettings) -> str:
    """Content of the keywords to cluster + what embeds them + clustering parameters + code version."""
    from ml_headcount.extraction.encoders import model_digest

    parts = [
        discriminative[CLUSTERING_INPUT].to_csv(index=False),
        extraction.model,
        model_digest(extraction.model),  # a local model by its weights: retrained in place, it clusters anew
        extraction.precision,
        result_fields(clustering),
        CLUSTERING_VERSION,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def cached_clusters_problem(data: bytes, discriminative: pd.DataFrame) -> str | None:
    """Why `data`, a cached clusters.json, is not the clusters of exactly these keywords; None when it is.

    Only `json.loads` ever reads it: a damaged or planted entry is rejected, never run."""
    try:
        clusters = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than any clustering
        return "clusters.json is not JSON"
    return None if matches_input(clusters, discriminative) else "not the clusters of this run's keywords"


def matches_input(clusters, discriminative: pd.DataFrame) -> bool:
    """Whether a cached result is well-formed clusters of exactly these keywords, each category's once."""
    if not isinstance(clusters, dict):
        return False
    expected = {str(c): sorted(g["keyword"]) for c, g in discriminative.groupby("category", sort=True)}
    try:
        found = {
            category: sorted(k for cluster in result["clusters"] for k in cluster["keywords"])
            for category, result in clusters.items()
            if result["method"] in {"single", "hdbscan", "kmeans"}
        }
    except (KeyError, TypeError):
        return False
    return found == expected
