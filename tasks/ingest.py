"""Tasks that produce the clean CV table of a run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from ml_headcount.config import Settings, result_fields
from ml_headcount.corpus.ingest import ingest
from ml_headcount.corpus.row_tables import CV_SCHEMA, REJECTED_COLUMNS
from ml_headcount.io.storage import ArtifactStore, storage_options
from ml_headcount.io.urls import file_sha256, redact_url
from ml_headcount.runs.layout import RunLayout
from ml_headcount.runs.stage_cache import StageResult, cached_stage, stage_key
from tasks.policies import TASK_POLICY, say_ignored_cache_entries


def cleaned_cvs(store: ArtifactStore, input_url: str, settings: Settings, run: RunLayout) -> StageResult:
    """cvs.parquet and rejected.csv of the run, copied from the ingest stage cache when an earlier run cleaned the same
    bytes with the same settings (and the entry checks out), else computed and cached."""
    options = storage_options(input_url, settings.storage)
    ingest_settings = result_fields(settings.ingest)

    def clean() -> dict:
        with tempfile.TemporaryDirectory(prefix="ml-headcount-ingest-") as scratch:
            result = ingest(
                input_url, settings.ingest, options, spill=Path(scratch, "cvs.parquet"), workers=settings.cpu_workers()
            )
            store.write_parquet_batches(run.cvs, result.kept.batches(), CV_SCHEMA)
            store.write_csv_batches(run.rejected, result.rejected_rows.batches(), REJECTED_COLUMNS)
        return result.summary()

    # the lookup needs a digest before ingesting; what is stored is keyed by the digest ingest took as it read
    digest = file_sha256(input_url, options)
    return cached_stage(
        store,
        "ingest",
        stage_key("ingest", digest, ingest_settings),
        [run.cvs, run.rejected],
        clean,
        expect={"input_sha256": digest},
        key_of=lambda summary: stage_key("ingest", summary["input_sha256"], ingest_settings),
    )


@task(name="clean-cv-table", **TASK_POLICY)
def clean_cv_table(store: ArtifactStore, input_url: str, settings: Settings, run: RunLayout) -> dict:
    """cvs.parquet and rejected.csv of the run (`cleaned_cvs`); returns the ingest summary, with `from_cache` and
    the cache entries that failed their checks (`cache_rejected`)."""
    stage = cleaned_cvs(store, input_url, settings, run)
    summary = stage.summary
    logger = get_run_logger()
    say_ignored_cache_entries(stage, logger)
    logger.info(
        "%s: %d rows -> %d CVs, %d duplicates, %d rejected %s%s",
        redact_url(input_url),
        summary["input_rows"],
        summary["cvs"],
        summary["duplicates"],
        summary["rejected"],
        summary["rejected_by_reason"] or "",
        " (cleaned by an earlier run of this file: copied)" if stage.cached else "",
    )
    return {**summary, "from_cache": stage.cached, "cache_rejected": stage.rejected}
