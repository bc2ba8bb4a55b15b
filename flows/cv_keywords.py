"""The `cv-keywords` flow: from a CV table to discriminative keywords, keyword lists and clusters."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import PurePosixPath

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run
from pydantic import SecretStr

from ml_headcount.config import Settings
from ml_headcount.extraction_cache import Shard, cache_prefix
from ml_headcount.ingest import redact_url, reveal
from ml_headcount.runs import RunLayout, claim_run, run_manifest
from ml_headcount.storage import ArtifactStore, StorageError
from tasks.backends import Backend, backend_for
from tasks.clustering import keyword_clusters
from tasks.extraction import reextraction_shards, run_keywords_table, uncached_extraction_shards
from tasks.ingestion import clean_cv_table
from tasks.reporting import completed_run, run_report
from tasks.scoring import discriminative_keywords


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    settings = Settings.model_validate(parameters.get("settings") or {})
    source = PurePosixPath(redact_url(reveal(parameters["input_url"])).rstrip("/")).name
    extraction = settings.extraction
    return f"{source} · {settings.backend} · top{extraction.top_n} ng{extraction.ngram_min}-{extraction.ngram_max}"


# extraction rounds after the first for CVs whose cached keywords failed their checks; one is all a store that is not
# being rewritten during the run can need
REPAIR_ROUNDS = 2


@contextmanager
def _timed(stage: str, timings: dict[str, float]):
    started = time.perf_counter()
    yield
    timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - started, 2)


def _unique_entries(rejected: list[dict]) -> list[dict]:
    """Each rejected entry once, as {entry, reason}, in the order met."""
    seen: dict[str, dict] = {}
    for entry in rejected:
        seen.setdefault(entry["entry"], {"entry": entry["entry"], "reason": entry["reason"]})
    return list(seen.values())


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
def cv_keywords(input_url: str | SecretStr, settings: Settings = Settings(), run_id: str | None = None) -> str:
    """Learn which keywords separate the categories of the CVs in `input_url`; returns the run's location.

    A URL with credentials in it may be given as a SecretStr (`ingest.protect`): Prefect then records it masked."""
    input_url = reveal(input_url)
    store = ArtifactStore(settings.storage)
    store.verify()
    run = claim_run(store, run_id)
    backend = backend_for(settings)
    timings: dict[str, float] = {}

    with backend.session():  # fails here, before any work, when the backend cannot be used
        with _timed("ingest", timings):
            ingest_summary = clean_cv_table(input_url, settings, run)
        rejected = ingest_summary.pop("cache_rejected")

        with _timed("plan", timings):
            plan = uncached_extraction_shards(settings, run)
        rejected += plan.rejected
        shards = list(plan.shards)
        with _timed("extract", timings):
            extract_with_progress(backend, shards, run)
        with _timed("assemble", timings):
            assembly = run_keywords_table(settings, run)
        for _ in range(REPAIR_ROUNDS):
            if not assembly.unresolved:
                break
            rejected += assembly.rejected
            with _timed("plan", timings):
                again = reextraction_shards(settings, run, assembly)
            shards += again
            with _timed("extract", timings):
                extract_with_progress(backend, again, run)
            with _timed("assemble", timings):
                assembly = run_keywords_table(settings, run)
        if assembly.unresolved:
            raise StorageError(
                f"{store.location(cache_prefix(settings.extraction))}: {len(assembly.unresolved)} CVs still have no "
                f"cached keywords that pass their checks after {REPAIR_ROUNDS} extractions: the cache is being rewritten "
                "while this run reads it; see the warnings of this run"
            )
        rejected += assembly.rejected

        with _timed("score", timings):
            scores = discriminative_keywords(settings, run)
        rejected += scores.pop("cache_rejected")

        with _timed("cluster", timings):
            clusters = keyword_clusters(backend, settings, run)

    cvs_extracted = sum(len(s.cv_ids) for s in shards)
    extraction = {
        "device": backend.device_label if shards else "none (every CV was cached)",
        "cache": store.location(cache_prefix(settings.extraction)),
        "shards_extracted": len(shards),
        "cvs_extracted": cvs_extracted,
        "cvs_from_cache": ingest_summary["cvs"] - cvs_extracted,
        "keywords": assembly.rows,
    }
    manifest = run_manifest(run, store.location(run.prefix), redact_url(input_url), settings, ingest_summary, extraction, scores, clusters, timings)
    # what a shared store held that this run did not trust: each entry was ignored and its result computed again
    manifest["cache_rejected"] = _unique_entries(rejected)
    with _timed("report", timings):
        run_report(manifest, settings, run)
    return completed_run(manifest, settings, run)
