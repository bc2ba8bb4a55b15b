"""The `cv-keywords` flow: from a CV table to discriminative keywords, keyword lists and clusters."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import PurePosixPath

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from ml_headcount.config import Settings
from ml_headcount.extraction.cache import Shard, cache_prefix
from ml_headcount.corpus.ingest import redact_url
from ml_headcount.runs.layout import RunLayout, claim_run, run_manifest
from ml_headcount.io.storage import ArtifactStore
from tasks.backends import Backend, backend_for
from tasks.clustering import keyword_clusters
from tasks.extraction import run_keywords_table, uncached_extraction_shards
from tasks.ingestion import clean_cv_table
from tasks.reporting import completed_run, run_report
from tasks.scoring import discriminative_keywords


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    settings = Settings.model_validate(parameters.get("settings") or {})
    source = PurePosixPath(redact_url(str(parameters["input_url"])).rstrip("/")).name
    extraction = settings.extraction
    return f"{source} · {settings.backend} · top{extraction.top_n} ng{extraction.ngram_min}-{extraction.ngram_max}"


@contextmanager
def _timed(stage: str, timings: dict[str, float]):
    started = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - started, 2)


def extract_with_progress(backend: Backend, shards: list[Shard], run: RunLayout) -> None:
    """Every shard the cache lacks, extracted on the run's backend, with progress in the Prefect UI."""
    if not shards:
        return
    logger = get_run_logger()
    progress = create_progress_artifact(progress=0.0, description=f"keyword extraction, run {run.run_id}")
    for done, _ in enumerate(backend.extract(shards, run), start=1):
        update_progress_artifact(progress, progress=100.0 * done / len(shards))
        logger.info("extraction progress: %d/%d shards", done, len(shards))


@flow(name="cv-keywords", flow_run_name=_flow_run_name, log_prints=True, persist_result=False)
def cv_keywords(input_url: str, settings: Settings = Settings(), run_id: str | None = None) -> str:
    """Learn which keywords separate the categories of the CVs in `input_url`; returns the run's location."""
    store = ArtifactStore(settings.storage)
    store.verify()
    run = claim_run(store, run_id)
    backend = backend_for(settings)
    timings: dict[str, float] = {}

    with backend.session():  # fails here, before any work, when the backend cannot be used
        with _timed("ingest", timings):
            ingest_summary = clean_cv_table(input_url, settings, run)

        with _timed("plan", timings):
            shards = uncached_extraction_shards(settings, run)
        with _timed("extract", timings):
            extract_with_progress(backend, shards, run)
        with _timed("assemble", timings):
            keyword_count = run_keywords_table(settings, run)

        with _timed("score", timings):
            scores = discriminative_keywords(settings, run)

        with _timed("cluster", timings):
            clusters = keyword_clusters(backend, settings, run)

    cvs_extracted = sum(len(s.cv_ids) for s in shards)
    extraction = {
        "device": backend.device_label if shards else "none (every CV was cached)",
        "cache": store.location(cache_prefix(settings.extraction)),
        "shards_extracted": len(shards),
        "cvs_extracted": cvs_extracted,
        "cvs_from_cache": ingest_summary["cvs"] - cvs_extracted,
        "keywords": keyword_count,
    }
    manifest = run_manifest(run, store.location(run.prefix), redact_url(input_url), settings, ingest_summary, extraction, scores, clusters, timings)
    with _timed("report", timings):
        run_report(manifest, settings, run)
    return completed_run(manifest, settings, run)
