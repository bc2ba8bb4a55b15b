"""The `cv-keywords` flow: from a CV table to discriminative keywords, keyword lists and clusters."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import PurePosixPath

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from ml_headcount.config import Settings
from ml_headcount.extraction_cache import Shard, cache_prefix
from ml_headcount.keywords import resolve_device
from ml_headcount.runs import RunLayout, claim_run, library_versions
from ml_headcount.storage import ArtifactStore
from tasks.clustering import clusters_json, keyword_clusters
from tasks.extraction import run_keywords_table, shard_keywords, uncached_extraction_shards
from tasks.ingestion import clean_cv_table
from tasks.policies import result_storage
from tasks.reporting import run_manifest, run_report
from tasks.scoring import discriminative_keywords


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    settings = parameters.get("settings") or Settings()
    if isinstance(settings, dict):
        settings = Settings.model_validate(settings)
    source = PurePosixPath(str(parameters["input_url"]).rstrip("/")).name
    extraction = settings.extraction
    return f"{source} · {settings.backend} · top{extraction.top_n} ng{extraction.ngram_min}-{extraction.ngram_max}"


@contextmanager
def model_backend(settings: Settings):
    """Where the model runs: in-process, or one ephemeral Modal app for the whole flow run."""
    if settings.backend == "modal":
        from flows.modal_backend import modal_app_session

        with modal_app_session(settings):
            yield
    else:
        yield


@contextmanager
def _timed(stage: str, timings: dict[str, float]):
    started = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - started, 2)


def extract_uncached_shards(shards: list[Shard], settings: Settings, run: RunLayout) -> None:
    """Extract every shard the cache lacks, on the configured backend, with visible progress."""
    logger = get_run_logger()
    progress = create_progress_artifact(progress=0.0, description=f"keyword extraction, run {run.run_id}") if shards else None
    if settings.backend == "modal":
        from flows.modal_backend import extract_on_modal

        completed = extract_on_modal(shards, settings, run)
    else:
        extract = shard_keywords.with_options(result_storage=result_storage(ArtifactStore(settings.storage)))
        completed = (extract(shard, settings, run) for shard in shards)
    for done, _ in enumerate(completed, start=1):
        update_progress_artifact(progress, progress=100.0 * done / len(shards))
        logger.info("extraction progress: %d/%d shards", done, len(shards))


def cluster_keywords_on_backend(settings: Settings, run: RunLayout) -> dict:
    if settings.backend == "modal":
        from flows.modal_backend import cluster_on_modal

        return cluster_on_modal(settings, run)
    return keyword_clusters.with_options(result_storage=result_storage(ArtifactStore(settings.storage)))(settings, run)


@flow(name="cv-keywords", flow_run_name=_flow_run_name, log_prints=True)
def cv_keywords(input_url: str, settings: Settings = Settings(), run_id: str | None = None) -> str:
    """Learn which keywords separate the categories of the CVs in `input_url`; returns the run's location."""
    store = ArtifactStore(settings.storage)
    store.verify()
    run = claim_run(store, run_id)
    timings: dict[str, float] = {}

    with model_backend(settings):  # fails here, before any work, when Modal credentials are missing
        with _timed("ingest", timings):
            ingest_summary = clean_cv_table(input_url, settings, run)

        with _timed("extract", timings):
            shards = uncached_extraction_shards(settings, run)
            extract_uncached_shards(shards, settings, run)
            keyword_count = run_keywords_table(settings, run)

        with _timed("score", timings):
            scores = discriminative_keywords(settings, run)

        with _timed("cluster", timings):
            clusters = cluster_keywords_on_backend(settings, run)
            clusters_json(clusters, settings, run)

    cvs_extracted = sum(len(s.cv_ids) for s in shards)
    manifest = {
        "run_id": run.run_id,
        "location": store.location(run.prefix),
        "input": {"url": input_url, "sha256": ingest_summary["input_sha256"]},
        "parameters": settings.model_dump(mode="json"),
        "ingest": ingest_summary,
        "extraction": {
            "device": f"modal:{settings.modal.extraction_gpu}" if settings.backend == "modal" else resolve_device(settings.extraction.device),
            "cache": store.location(cache_prefix(settings.extraction)),
            "shards_extracted": len(shards),
            "cvs_extracted": cvs_extracted,
            "cvs_from_cache": ingest_summary["cvs"] - cvs_extracted,
            "keywords": keyword_count,
        },
        "scoring": scores,
        "clustering": {category: result["method"] for category, result in clusters.items()},
        "versions": library_versions(),
        "timings_s": timings,
    }
    with _timed("report", timings):
        run_report(manifest, settings, run)
    return run_manifest(manifest, settings, run)
