"""Tasks that produce extracted keywords: plan shards, extract or store one shard, gather a run's keywords."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from ml_headcount.extraction import cache as extraction_cache
from ml_headcount.config import Settings
from ml_headcount.extraction.cache import Shard
from ml_headcount.extraction.extractor import KeywordExtractor, keywords_table
from ml_headcount.runs.layout import RunLayout
from ml_headcount.io.storage import ArtifactStore
from tasks.policies import TASK_POLICY


def shard_texts(store: ArtifactStore, run: RunLayout, shard: Shard) -> list[str]:
    """The cleaned texts of a shard's CVs, in the shard's order."""
    return store.read_parquet(run.shard_texts(shard.shard_id))["text"].tolist()


@task(name="uncached-extraction-shards", **TASK_POLICY)
def uncached_extraction_shards(settings: Settings, run: RunLayout) -> list[Shard]:
    """Shards of the run's CVs that no earlier run or machine has extracted with these settings.

    Each shard's texts go to `shards/<shard id>.parquet` in the run, so that
    extracting a shard reads only that shard.
    """
    store = ArtifactStore(settings.storage)
    cv_ids = store.read_parquet(run.cvs, columns=["cv_id"])["cv_id"].tolist()
    cached = extraction_cache.cached_shards(store, settings.extraction)  # the run's one read of the cache index
    shards = extraction_cache.plan_shards(cv_ids, cached, settings.extraction)
    store.write_parquet(run.cv_shards, cached.with_shards(shards).for_cvs(cv_ids).pairs())
    if shards:  # the texts only when there is something to extract: a warm run never reads them
        cvs = store.read_parquet(run.cvs, columns=["cv_id", "text"]).set_index("cv_id")
        for shard in shards:
            store.write_parquet(run.shard_texts(shard.shard_id), cvs.loc[list(shard.cv_ids)].reset_index())
    get_run_logger().info(
        "%d of %d CVs need extraction, in %d shards of up to %d",
        sum(len(s.cv_ids) for s in shards), len(cv_ids), len(shards), settings.extraction.shard_size,
    )
    return shards


@task(name="shard-keywords", task_run_name="extract shard {shard.shard_id}", **TASK_POLICY)
def shard_keywords(shard: Shard, extractor: KeywordExtractor, settings: Settings, run: RunLayout) -> str:
    """Extract one shard in this process and add it to the extraction cache; returns its cache location."""
    started = time.perf_counter()
    store = ArtifactStore(settings.storage)
    results = extractor.extract(shard_texts(store, run, shard))
    location = extraction_cache.store_shard(store, settings.extraction, shard, keywords_table(list(shard.cv_ids), results))
    get_run_logger().debug(  # the flow logs the run's progress: CVs/s and an ETA
        "shard %s: %d CVs in %.1f s on %s", shard.shard_id, len(shard.cv_ids), time.perf_counter() - started, extractor.label
    )
    return location


@task(name="stored-shard-keywords", task_run_name="store shard {shard.shard_id}", **TASK_POLICY)
def stored_shard_keywords(shard: Shard, results: list[list[tuple[str, float]]], settings: Settings) -> str:
    """One shard's keywords, extracted elsewhere (a Modal GPU), added to the extraction cache; returns its location."""
    table = keywords_table(list(shard.cv_ids), results)
    return extraction_cache.store_shard(ArtifactStore(settings.storage), settings.extraction, shard, table)


@task(name="run-keywords-table", **TASK_POLICY)
def run_keywords_table(settings: Settings, run: RunLayout) -> int:
    """keywords.parquet of the run, assembled from the cache; returns its row count."""
    store = ArtifactStore(settings.storage)
    cv_ids = store.read_parquet(run.cvs, columns=["cv_id"])["cv_id"].tolist()
    index = extraction_cache.CacheIndex.from_pairs(store.read_parquet(run.cv_shards))  # what planning learned
    return extraction_cache.write_run_keywords(store, settings.extraction, cv_ids, run.keywords, index)
