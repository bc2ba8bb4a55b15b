"""Tasks that produce the clean CV table of a run."""

from __future__ import annotations

from prefect import get_run_logger, task

from ml_headcount.config import Settings
from ml_headcount.ingest import ingest, redact_url
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore, storage_options
from tasks.policies import TASK_POLICY


@task(name="clean-cv-table", **TASK_POLICY)
def clean_cv_table(input_url: str, settings: Settings, run: RunLayout) -> dict:
    """cvs.parquet and rejected.csv of the run; returns the ingestion summary."""
    store = ArtifactStore(settings.storage)
    result = ingest(input_url, settings.ingest, storage_options(input_url, settings.storage))
    store.write_parquet(run.cvs, result.cvs)
    store.write_csv(run.rejected, result.rejected)
    summary = result.summary()
    get_run_logger().info(
        "%s: %d rows -> %d CVs, %d duplicates, %d rejected %s",
        redact_url(input_url), summary["input_rows"], summary["cvs"], summary["duplicates"], summary["rejected"],
        summary["rejected_by_reason"] or "",
    )
    return summary
