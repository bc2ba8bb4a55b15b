"""Tasks that produce extracted keywords: plan shards, extract one shard, gather a run's keywords."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from ml_headcount import extraction_cache
from ml_headcount.config import Settings
from ml_headcount.extraction_cache import Shard
from ml_headcount.keywords import extract_keywords, keywords_table, resolve_device
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore
from tasks.policies import IO_RETRIES


def shard_input_key(run: RunLayout, shard: Shard) -> str:
    return run.key(f"shards/{shard.shard_id}.parquet")


def shard_texts(store: ArtifactStore, run: RunLayout, shard: Shard) -> list[str]:
    """The cleaned texts of a shard's CVs, in the shard's order."""
    return store.read_parquet(shard_input_key(run, shard))["text"].tolist()


@task(name="uncached-extraction-shards", **IO_RETRIES)
def uncached_extraction_shards(settings: Settings, run: RunLayout) -> list[Shard]:
    """Shards of the run's CVs that no earlier run or machine has extracted with these settings.

    Each shard's texts go to `shards/<shard id>.parquet` in the run, so that
    extracting a shard reads only that shard.
    """
    store = ArtifactStore(settings.storage)
    cvs = store.read_parquet(run.key("cvs.parquet"), columns=["cv_id", "text"]).set_index("cv_id")
    cv_ids = cvs.index.tolist()
    shards = extraction_cache.plan_shards(cv_ids, extraction_cache.cached_shards(store, settings.extraction), settings.extraction)
    for shard in shards:
        store.write_parquet(shard_input_key(run, shard), cvs.loc[list(shard.cv_ids)].reset_index())
    get_run_logger().info(
        "%d of %d CVs need extraction, in %d shards of up to %d",
        sum(len(s.cv_ids) for s in shards), len(cv_ids), len(shards), settings.extraction.shard_size,
    )
    return shards


def _shard_cache_key(context, parameters) -> str:
    # the shard id hashes its CV ids (content hashes) with the model, parameters and code version
    return f"extract-shard-{parameters['shard'].shard_id}"


@task(name="shard-keywords", cache_key_fn=_shard_cache_key, persist_result=True, result_serializer="json", **IO_RETRIES)
def shard_keywords(shard: Shard, settings: Settings, run: RunLayout) -> str:
    """Extract one shard in-process and add it to the extraction cache; returns its cache location."""
    store = ArtifactStore(settings.storage)
    started = time.perf_counter()
    results = extract_keywords(shard_texts(store, run, shard), settings.extraction)
    location = extraction_cache.store_shard(store, settings.extraction, shard, keywords_table(list(shard.cv_ids), results))
    get_run_logger().info(
        "shard %s: %d CVs in %.1f s on %s", shard.shard_id, len(shard.cv_ids), time.perf_counter() - started,
        resolve_device(settings.extraction.device),
    )
    return location


@task(name="run-keywords-table", **IO_RETRIES)
def run_keywords_table(settings: Settings, run: RunLayout) -> int:
    """keywords.parquet of the run, assembled from the cache; returns its row count."""
    store = ArtifactStore(settings.storage)
    cv_ids = store.read_parquet(run.key("cvs.parquet"), columns=["cv_id"])["cv_id"].tolist()
    keywords = extraction_cache.load_keywords(store, settings.extraction, cv_ids)
    store.write_parquet(run.key("keywords.parquet"), keywords)
    return len(keywords)
