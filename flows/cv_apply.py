"""The `cv-apply` flow: a finished run's keyword lists applied to any CV or profile table."""

from __future__ import annotations

from pathlib import PurePosixPath

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from pydantic import SecretStr

from ml_headcount.config import Settings
from ml_headcount.io.urls import redact_url, reveal
from ml_headcount.lists.apply import default_output
from ml_headcount.runs.finished import run_store
from ml_headcount.runs.markdown import markdown_text
from tasks.apply import list_match_table
from tasks.policies import without_user_error_tracebacks


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    source = PurePosixPath(redact_url(reveal(parameters["input_url"])).rstrip("/")).name
    return f"{source} · lists of {parameters.get('run_reference') or 'latest'}"


# a table of millions of rows is matched in minutes; hours mean a stuck read
TIMEOUT_S = 6 * 3600


@flow(name="cv-apply", flow_run_name=_flow_run_name, log_prints=True, timeout_seconds=TIMEOUT_S)
def cv_apply(
    input_url: str | SecretStr,
    run_reference: str = "latest",
    output_url: str | SecretStr | None = None,
    settings: Settings = Settings(),
) -> dict:
    """Match every row of `input_url` against the lists of `run_reference` (a run id, `latest`, or a run's location);
    returns the summary.

    URLs with credentials in them may be given as SecretStr (`ingest.protect`): Prefect then records them masked."""
    without_user_error_tracebacks()
    input_url = reveal(input_url)
    output_url = reveal(output_url) if output_url is not None else None
    store, run_id = run_store(run_reference, settings.storage)
    summary = list_match_table(
        store, input_url, run_id, output_url or default_output(store, run_id, input_url), settings
    )
    create_table_artifact(
        key="cv-apply-matches",
        table=[
            {"list": name, "keywords": summary["list_sizes"].get(name), "matched rows": n, "rows": summary["rows"]}
            for name, n in summary["matched"].items()
        ],
        description=f"Rows of {markdown_text(redact_url(input_url))} matching the keyword lists of run {run_id}",
    )
    return summary
