"""Tasks that produce extracted keywords: plan shards, extract or store one shard, gather a run's keywords."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prefect import get_run_logger, task

from ml_headcount.config import Settings
from ml_headcount.extraction import cache as extraction_cache
from ml_headcount.extraction.cache import Shard
from ml_headcount.extraction.extractor import KeywordExtractor, keywords_table
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout
from tasks.policies import TASK_POLICY


def shard_texts(store: ArtifactStore, run: RunLayout, shard: Shard) -> list[str]:
    """The cleaned texts of a shard's CVs, in the shard's order."""
    return store.read_parquet(run.shard_texts(shard.shard_id))["text"].tolist()


@dataclass
class ExtractionPlan:
    """The shards a run must extract, and the index entries that were skipped while reading the cache's index."""

    shards: list[Shard]
    rejected: list[dict] = field(default_factory=list)


@task(name="uncached-extraction-shards", **TASK_POLICY)
def uncached_extraction_shards(store: ArtifactStore, settings: Settings, run: RunLayout) -> ExtractionPlan:
    """Shards of the run's CVs that no earlier run or machine has extracted with these settings.

    Each shard's texts go to `shards/<shard id>.parquet` in the run, so that
    extracting a shard reads only that shard.
    """
    cv_ids = store.read_parquet(run.cvs, columns=["cv_id"])["cv_id"].tolist()
    cached = extraction_cache.cached_shards(store, settings.extraction)  # the run's one read of the cache index
    shards = extraction_cache.plan_shards(cv_ids, cached, settings.extraction)
    store.write_parquet(run.cv_shards, cached.with_shards(shards).for_cvs(cv_ids).pairs)
    _write_shard_texts(store, run, shards)
    logger = get_run_logger()
    for entry in cached.rejected:
        logger.warning("ignored the cache index entry %s: %s", entry["entry"], entry["reason"])
    logger.info(
        "%d of %d CVs need extraction, in %d shards of up to %d",
        sum(len(s.cv_ids) for s in shards),
        len(cv_ids),
        len(shards),
        settings.extraction.shard_size,
    )
    return ExtractionPlan(shards, list(cached.rejected))


@task(name="reextraction-shards", **TASK_POLICY)
def reextraction_shards(
    store: ArtifactStore, settings: Settings, run: RunLayout, assembly: extraction_cache.Assembly
) -> list[Shard]:
    """Shards of the CVs whose cached keywords failed their checks in `assembly`: extracted again, the failed
    entries dropped from the run's index."""
    index = extraction_cache.CacheIndex(store.read_parquet(run.cv_shards))
    index = index.without([(entry["shard_id"], entry["sha256"]) for entry in assembly.rejected])
    shards = extraction_cache.shards_of(assembly.unresolved, settings.extraction)
    store.write_parquet(run.cv_shards, index.with_shards(shards).pairs)
    _write_shard_texts(store, run, shards)
    get_run_logger().warning(
        "%d CVs have no cached keywords that pass their checks: extracting them again, in %d shards",
        len(assembly.unresolved),
        len(shards),
    )
    return shards


def _write_shard_texts(store: ArtifactStore, run: RunLayout, shards: list[Shard]) -> None:
    if shards:  # the texts only when there is something to extract: a warm run never reads them
        cvs = store.read_parquet(run.cvs, columns=["cv_id", "text"]).drop_duplicates("cv_id").set_index("cv_id")
        for shard in shards:
            store.write_parquet(run.shard_texts(shard.shard_id), cvs.loc[list(shard.cv_ids)].reset_index())


@task(name="shard-keywords", task_run_name="extract shard {shard.shard_id}", **TASK_POLICY)
def shard_keywords(
    store: ArtifactStore, shard: Shard, extractor: KeywordExtractor, settings: Settings, run: RunLayout
) -> str:
    """Extract one shard in this process and add it to the extraction cache; returns its cache location."""
    started = time.perf_counter()
    results = extractor.extract(shard_texts(store, run, shard))
    location = extraction_cache.store_shard(
        store, settings.extraction, shard, keywords_table(list(shard.cv_ids), results)
    )
    get_run_logger().debug(  # the flow logs the run's progress: CVs/s and an ETA
        "shard %s: %d CVs in %.1f s on %s",
        shard.shard_id,
        len(shard.cv_ids),
        time.perf_counter() - started,
        extractor.label,
    )
    return location


@task(name="stored-shard-keywords", task_run_name="store shard {shard.shard_id}", **TASK_POLICY)
def stored_shard_keywords(
    store: ArtifactStore, shard: Shard, results: list[list[tuple[str, float]]], settings: Settings
) -> str:
    """One shard's keywords, extracted elsewhere (a Modal GPU), added to the extraction cache; returns its location."""
    table = keywords_table(list(shard.cv_ids), results)
    return extraction_cache.store_shard(store, settings.extraction, shard, table)


@task(name="run-keywords-table", **TASK_POLICY)
def run_keywords_table(store: ArtifactStore, settings: Settings, run: RunLayout) -> extraction_cache.Assembly:
    """keywords.parquet of the run, assembled from the cache with every shard checked against the run's texts;
    written only when every CV has keywords that pass (else `unresolved` says which to extract again)."""
    texts = extraction_cache.CvTexts.from_run(store, run.cvs, settings.extraction, settings.cpu_workers())
    index = extraction_cache.CacheIndex(store.read_parquet(run.cv_shards))  # what planning learned
    assembly = extraction_cache.write_run_keywords(store, settings.extraction, texts, run.keywords, index)
    for entry in assembly.rejected:
        get_run_logger().warning("ignored the cached keywords %s: %s", entry["entry"], entry["reason"])
    return assembly
