"""Tasks that produce the run's keyword clusters, through the whole-stage cache (`runs.stage_cache`)."""

from __future__ import annotations

from prefect import get_run_logger, task

from ml_headcount.clustering import CLUSTERING_INPUT, cached_clusters_problem, clusters_key
from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore, TooLargeError
from ml_headcount.runs.layout import RunLayout
from ml_headcount.runs.stage_cache import cached_stage, stage_key
from tasks.backends import Backend
from tasks.policies import TASK_POLICY, say_ignored_cache_entries

MAX_CLUSTERS_BYTES = 64 * 2**20  # clusters of a few hundred keywords per category are tens of KB


@task(name="keyword-clusters", **TASK_POLICY)
def keyword_clusters(store: ArtifactStore, backend: Backend, settings: Settings, run: RunLayout) -> dict:
    """clusters.json of the run, copied from `cache/clusters/` when an earlier run clustered the same keywords;
    returns the clustering method per category.

    A cached clusters.json is parsed by `json.loads` only, and used only when it
    holds the clusters of exactly this run's keywords; anything else is
    recomputed and replaced.
    """
    discriminative = store.read_csv(run.discriminative_keywords)[CLUSTERING_INPUT]
    key = stage_key("clusters", clusters_key(discriminative, settings.extraction, settings.clustering))

    def clustered() -> dict:
        clusters = backend.cluster(discriminative)
        store.write_json(run.clusters, clusters)
        return {category: result["method"] for category, result in clusters.items()}

    def problem() -> str | None:
        try:
            return cached_clusters_problem(store.read_bounded(run.clusters, MAX_CLUSTERS_BYTES), discriminative)
        except TooLargeError as error:  # larger than any clustering: damaged or planted
            return str(error)

    stage = cached_stage(store, "clusters", key, [run.clusters], clustered, check=problem)
    logger = get_run_logger()
    say_ignored_cache_entries(stage, logger)
    methods = {category: result["method"] for category, result in store.read_json(run.clusters).items()}
    return {"methods": methods, "from_cache": stage.cached, "cache_rejected": stage.rejected}
