"""Tasks that produce the run's keyword clusters, through the product's own content-keyed cache."""

from __future__ import annotations

import json

from prefect import get_run_logger, task

from ml_headcount.clustering import CLUSTERING_INPUT, clusters_key, matches_input
from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout
from tasks.backends import Backend
from tasks.policies import TASK_POLICY

MAX_CLUSTERS_BYTES = 64 * 2**20  # clusters of a few hundred keywords per category are tens of KB


@task(name="keyword-clusters", **TASK_POLICY)
def keyword_clusters(backend: Backend, settings: Settings, run: RunLayout) -> dict:
    """clusters.json of the run; reused from `cache/clusters/` when an earlier run clustered the same keywords.

    A cached entry is JSON parsed by `json.loads` and used only when it is
    clusters of exactly this run's keywords; anything else is recomputed and
    replaced.
    """
    store = ArtifactStore(settings.storage)
    discriminative = store.read_csv(run.discriminative_keywords)[CLUSTERING_INPUT]
    cached_key = f"cache/clusters/{clusters_key(discriminative, settings.extraction, settings.clustering)}.json"
    clusters = None
    if store.exists(cached_key):
        try:
            clusters = json.loads(store.read_bounded(cached_key, MAX_CLUSTERS_BYTES))
        except (
            ValueError,
            RecursionError,
        ):  # not JSON, or larger than any clustering (damaged or planted): never trusted
            clusters = None
        if not matches_input(clusters, discriminative):
            get_run_logger().warning("ignoring %s: not the clusters of this run's keywords", store.location(cached_key))
            clusters = None
    if clusters is None:
        clusters = backend.cluster(discriminative)
        store.write_json(cached_key, clusters)
    store.write_json(run.clusters, clusters)
    return clusters
