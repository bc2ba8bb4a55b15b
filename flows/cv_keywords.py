"""The `cv-keywords` flow: from a CV table to discriminative keywords, keyword lists and clusters."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import PurePosixPath

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run
from pydantic import SecretStr

from ml_headcount.config import Settings
from ml_headcount.extraction.cache import Assembly, Shard, cache_prefix
from ml_headcount.io.storage import ArtifactStore, StorageError
from ml_headcount.io.urls import redact_url, reveal
from ml_headcount.progress import Progress, heartbeat, progress_log, still_running
from ml_headcount.runs.layout import RunLayout, claim_run, run_manifest
from ml_headcount.runs.markdown import markdown_text
from tasks.backends import Backend, backend_for
from tasks.clustering import keyword_clusters
from tasks.extraction import reextraction_shards, run_keywords_table, uncached_extraction_shards
from tasks.ingest import clean_cv_table
from tasks.policies import without_user_error_tracebacks
from tasks.reporting import completed_run, run_report
from tasks.scoring import discriminative_keywords


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    settings = Settings.model_validate(parameters.get("settings") or {})
    source = PurePosixPath(redact_url(reveal(parameters["input_url"])).rstrip("/")).name
    extraction = settings.extraction
    return f"{source} · {settings.backend} · top{extraction.top_n} ng{extraction.ngram_min}-{extraction.ngram_max}"


# A weekly run that has not finished in 6 days is stuck; the caches keep what it did, so a retry is cheap.
TIMEOUT_S = 6 * 24 * 3600

# extraction rounds after the first for CVs whose cached keywords failed their checks; one is all a store that is not
# being rewritten during the run can need
REPAIR_ROUNDS = 2


@contextmanager
def _timed(stage: str, timings: dict[str, float], beat: bool = True):
    """Says when a stage starts and (unless it reports its own progress) every few seconds that it still runs;
    records its wall time."""
    say = progress_log(get_run_logger())
    say(f"{stage}: started")
    started = time.perf_counter()
    with heartbeat(still_running(stage), say) if beat else nullcontext():
        yield
    timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - started, 2)


def _unique_entries(rejected: list[dict]) -> list[dict]:
    """Each rejected entry once, as {entry, reason}, in the order met."""
    seen: dict[str, dict] = {}
    for entry in rejected:
        seen.setdefault(entry["entry"], {"entry": entry["entry"], "reason": entry["reason"]})
    return list(seen.values())


def extract_with_progress(store: ArtifactStore, backend: Backend, shards: list[Shard], run: RunLayout) -> None:
    """Every shard the cache lacks, extracted on the run's backend, with CVs/s and an ETA in the log and progress in
    the Prefect UI."""
    if not shards:
        return
    logger = get_run_logger()
    artifact = create_progress_artifact(progress=0.0, description=f"keyword extraction, run {run.run_id}")
    progress = Progress("extraction", sum(len(s.cv_ids) for s in shards))
    say = progress_log(logger, progress)
    with heartbeat(progress.line, say):  # the first shard also loads the model: seconds to minutes
        for done, _ in enumerate(backend.extract(store, shards, run), start=1):
            progress.advance(len(shards[done - 1].cv_ids))  # Modal's come in any order, but all shards but one are full
            update_progress_artifact(artifact, progress=100.0 * done / len(shards))
            say(f"{progress.line()} ({done}/{len(shards)} shards)")


@flow(
    name="cv-keywords",
    flow_run_name=_flow_run_name,
    log_prints=True,
    persist_result=False,
    timeout_seconds=TIMEOUT_S,
)
def cv_keywords(input_url: str | SecretStr, settings: Settings = Settings(), run_id: str | None = None) -> str:
    """Learn which keywords separate the categories of the CVs in `input_url`; returns the run's location.

    A URL with credentials in it may be given as a SecretStr (`ingest.protect`): Prefect then records it masked."""
    without_user_error_tracebacks()
    input_url = reveal(input_url)
    store = ArtifactStore(settings.storage)
    store.verify()
    run = claim_run(store, run_id)
    backend = backend_for(settings)
    timings: dict[str, float] = {}

    with backend.session():  # fails here, before any work, when the backend cannot be used
        with _timed("ingest", timings):
            ingest_summary = clean_cv_table(store, input_url, settings, run)
        extracted = _keywords_of_every_cv(store, backend, settings, run, timings)
        with _timed("score", timings, beat=False):  # scoring says its CVs/s and ETA instead
            scores = discriminative_keywords(store, settings, run)
        with _timed("cluster", timings):
            clusters = keyword_clusters(store, backend, settings, run)

    # what a shared store held that this run did not trust: each entry was ignored and its result computed again
    rejected = ingest_summary.pop("cache_rejected") + extracted.rejected + scores.pop("cache_rejected")
    rejected += clusters.pop("cache_rejected")
    extraction = _extraction_summary(backend, settings, extracted, ingest_summary["cvs"])
    manifest = run_manifest(
        run,
        run.prefix,
        redact_url(input_url),
        settings,
        ingest_summary,
        extraction,
        scores,
        clusters["methods"],
        timings,
    )
    manifest["cache_rejected"] = _unique_entries(rejected)
    with _timed("report", timings):
        run_report(store, manifest, settings, run)
    location = completed_run(store, manifest, run)
    _report_location(store, run, location)
    return location


@dataclass
class _ExtractedKeywords:
    """The shards this run extracted, the assembly of keywords.parquet, and the cache entries it did not trust."""

    shards: list[Shard]
    assembly: Assembly
    rejected: list[dict]


def _keywords_of_every_cv(
    store: ArtifactStore, backend: Backend, settings: Settings, run: RunLayout, timings: dict[str, float]
) -> _ExtractedKeywords:
    """keywords.parquet of the run: the cache's keywords, those of uncached CVs extracted on the backend, and again
    (up to REPAIR_ROUNDS times) those of CVs whose cached keywords failed their checks."""
    with _timed("plan", timings):
        plan = uncached_extraction_shards(store, settings, run)
    shards, rejected = list(plan.shards), list(plan.rejected)
    with _timed("extract", timings, beat=False):  # extraction says its CVs/s and ETA instead
        extract_with_progress(store, backend, shards, run)
    with _timed("assemble", timings):
        assembly = run_keywords_table(store, settings, run)
    for _ in range(REPAIR_ROUNDS):
        if not assembly.unresolved:
            break
        rejected += assembly.rejected
        with _timed("plan", timings):
            again = reextraction_shards(store, settings, run, assembly)
        shards += again
        with _timed("extract", timings):
            extract_with_progress(store, backend, again, run)
        with _timed("assemble", timings):
            assembly = run_keywords_table(store, settings, run)
    if assembly.unresolved:
        raise StorageError(
            f"{store.location(cache_prefix(settings.extraction))}: {len(assembly.unresolved)} CVs still have no "
            f"cached keywords that pass their checks after {REPAIR_ROUNDS} extractions: the cache is being rewritten "
            "while this run reads it; see the warnings of this run"
        )
    return _ExtractedKeywords(shards, assembly, rejected + assembly.rejected)


def _extraction_summary(backend: Backend, settings: Settings, extracted: _ExtractedKeywords, cvs: int) -> dict:
    """The manifest's `extraction`: where the keywords came from and what extracting them ran on."""
    cvs_extracted = sum(len(s.cv_ids) for s in extracted.shards)
    return {
        "device": backend.device_label if extracted.shards else "none (every CV was cached)",
        "cache": cache_prefix(settings.extraction),  # keys relative to the storage URL: a copied store stays whole
        "shards_extracted": len(extracted.shards),
        "cvs_extracted": cvs_extracted,
        "cvs_from_cache": cvs - cvs_extracted,
        "keywords": extracted.assembly.rows,
    }


def _report_location(store: ArtifactStore, run: RunLayout, location: str) -> None:
    """Where the run's report.html is, as a page of the Prefect UI shows it: its location in words, not a link (a
    browser does not follow a file:// or s3:// link from the UI's http page)."""
    create_markdown_artifact(
        key="cv-keywords-report-html",
        markdown=f"**report.html of run {run.run_id}** (plots and tables, one self-contained page) is at\n\n"
        f"{markdown_text(store.location(run.report_html))}\n\n"
        "Open it from there: a browser does not open a file:// or s3:// link from this page. Every artifact of the "
        "run is beside it; the artifact `cv-keywords-report` is the same report in this UI.",
        description=f"Run {run.run_id}: where its report.html is ({markdown_text(location)})",
    )
