"""The `cv-ingestion` flow: register new CV files from the inbox, then refresh the keywords if any CV was new."""

from __future__ import annotations

from pathlib import PurePosixPath

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from ml_headcount.config import Settings
from ml_headcount.runs.layout import new_run_id
from tasks.registration import dataset_of, file_registration, ingestion_record, pending_inbox_files


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    settings = parameters.get("settings") or Settings()
    if isinstance(settings, dict):
        settings = Settings.model_validate(settings)
    inbox = PurePosixPath(settings.inbox.url.rstrip("/")).name or settings.inbox.url
    then = parameters.get("keywords_deployment") or "no keyword run"
    return f"{inbox} → {settings.inbox.dataset} · then {then}"


@flow(name="cv-ingestion", flow_run_name=_flow_run_name, log_prints=True)
def cv_ingestion(settings: Settings = Settings(), keywords_deployment: str | None = "cv-keywords/weekly") -> dict:
    """Append the inbox's new CV files to the registered dataset; start `keywords_deployment` on it if any CV was new.

    `settings.inbox` says where files arrive and which dataset they join; the
    keyword run gets the same settings, so it reads the dataset from the same
    storage. Returns the ingestion summary.
    """
    ingestion_id = new_run_id()
    # each file on its own: one file whose registration fails (storage fault, bug) never stops the others
    states = [file_registration(file, settings, ingestion_id, return_state=True) for file in pending_inbox_files(settings)]
    outcomes = [state.result() for state in states if state.is_completed()]
    failed = sum(not state.is_completed() for state in states)

    keywords_run = None
    if sum(o.registered for o in outcomes) and keywords_deployment:
        # timeout=0: the keyword run goes on by itself (shown as this run's child in the UI), so a
        # long keyword run never holds up the next hourly ingestion
        started = run_deployment(
            keywords_deployment,
            parameters={"input_url": dataset_of(settings).location, "settings": settings.model_dump(mode="json")},
            timeout=0,
        )
        keywords_run = {"deployment": keywords_deployment, "flow_run_id": str(started.id)}
        get_run_logger().info("started a %s run (flow run %s) on the updated dataset", keywords_deployment, started.id)
    summary = ingestion_record(outcomes, keywords_run, settings, ingestion_id)
    if failed:  # the flow run fails, visibly; those files stay pending and are tried again next time
        raise RuntimeError(f"{failed} of {len(states)} inbox files could not be registered; see their task runs")
    return summary
