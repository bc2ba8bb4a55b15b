"""Tasks that produce a table of keyword-list matches for a CV or profile table."""

from __future__ import annotations

from prefect import get_run_logger, task

from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore, storage_options
from ml_headcount.lists.apply import apply_run_lists
from ml_headcount.lists.run_lists import load_run_lists
from tasks.policies import TASK_POLICY


@task(name="list-match-table", **TASK_POLICY)
def list_match_table(store: ArtifactStore, input_url: str, run_id: str, output_url: str, settings: Settings) -> dict:
    """The output table (one row per input row, a 0/1 column per list) and its summary; returns the summary."""
    run_lists = load_run_lists(store, run_id)
    summary = apply_run_lists(
        input_url,
        run_lists,
        output_url,
        settings.ingest,
        settings.lists,
        storage_options(input_url, settings.storage),
        storage_options(output_url, settings.storage),
    )
    get_run_logger().info(
        "%s: %d rows matched against run %s in %.1f s -> %s",
        summary["input"],
        summary["rows"],
        run_lists.run_id,
        summary["seconds"],
        summary["output"],
    )
    return summary
