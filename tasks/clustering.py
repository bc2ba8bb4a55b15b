"""Tasks that produce the run's keyword clusters."""

from __future__ import annotations

import hashlib
import json

from prefect import task

from ml_headcount.clustering import CLUSTERING_VERSION, cluster_discriminative
from ml_headcount.config import Settings
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore
from tasks.policies import IO_RETRIES


def clustering_input(settings: Settings, run: RunLayout):
    return ArtifactStore(settings.storage).read_csv(run.key("discriminative_keywords.csv"))[["category", "keyword", "score"]]


def clustering_cache_key(settings: Settings, run: RunLayout) -> str:
    """Content of the keywords to cluster + model + clustering parameters + code version."""
    content = clustering_input(settings, run).to_csv(index=False)
    parts = [content, settings.extraction.model, settings.clustering.model_dump_json(), CLUSTERING_VERSION]
    return "clusters-" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _cache_key(context, parameters) -> str:
    return clustering_cache_key(parameters["settings"], parameters["run"])


@task(name="keyword-clusters", cache_key_fn=_cache_key, persist_result=True, result_serializer="json", **IO_RETRIES)
def keyword_clusters(settings: Settings, run: RunLayout) -> dict:
    """Clusters of each category's discriminative keywords, embedded in-process."""
    return cluster_discriminative(clustering_input(settings, run), settings.extraction, settings.clustering)


@task(name="clusters-json", **IO_RETRIES)
def clusters_json(clusters: dict, settings: Settings, run: RunLayout) -> str:
    return ArtifactStore(settings.storage).write_json(run.key("clusters.json"), clusters)
