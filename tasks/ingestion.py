"""Tasks that produce the clean CV table of a run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from ml_headcount.config import Settings
from ml_headcount.corpus.ingest import CV_SCHEMA, ingest, input_sha256, redact_url
from ml_headcount.runs.layout import RunLayout
from ml_headcount.runs.stage_cache import cached_stage, stage_key
from ml_headcount.io.storage import ArtifactStore, storage_options
from tasks.policies import TASK_POLICY


@task(name="clean-cv-table", **TASK_POLICY)
def clean_cv_table(input_url: str, settings: Settings, run: RunLayout) -> dict:
    """cvs.parquet and rejected.csv of the run, copied from an earlier run of the same file and settings when there is
    one; returns the ingestion summary."""
    store = ArtifactStore(settings.storage)
    options = storage_options(input_url, settings.storage)

    def clean() -> dict:
        with tempfile.TemporaryDirectory(prefix="ml-headcount-ingest-") as scratch:
            result = ingest(input_url, settings.ingest, options, spill=Path(scratch, "cvs.parquet"), workers=settings.cpu_workers())
            store.write_parquet_batches(run.cvs, result.kept.batches(), CV_SCHEMA)
        store.write_csv(run.rejected, result.rejected)
        return result.summary()

    key = stage_key("ingest", input_sha256(input_url, options), settings.ingest.model_dump(mode="json"))
    summary, cached = cached_stage(store, "ingest", key, [run.cvs, run.rejected], clean)
    get_run_logger().info(
        "%s: %d rows -> %d CVs, %d duplicates, %d rejected %s%s",
        redact_url(input_url), summary["input_rows"], summary["cvs"], summary["duplicates"], summary["rejected"],
        summary["rejected_by_reason"] or "", " (cleaned by an earlier run of this file: copied)" if cached else "",
    )
    return {**summary, "from_cache": cached}
