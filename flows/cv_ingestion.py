"""The `cv-ingestion` flow: register new CV files from the inbox; when any CV was new, say so with an event.

The event, `ml-headcount.dataset.updated`, names the dataset and the deployment meant to refresh its keywords
(`keywords_deployment`); that deployment's trigger in deployments/prefect.yaml starts it, with the dataset and the
ingestion's settings as parameters. The ingestion never waits for it.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.runtime import flow_run

from ml_headcount.config import Settings
from ml_headcount.corpus.dataset import RegisteredDataset
from ml_headcount.errors import DeterministicError
from ml_headcount.io.urls import redact_url
from ml_headcount.runs.layout import new_run_id
from tasks.policies import PERMANENT_ERRORS, without_user_error_tracebacks
from tasks.registration import dataset_of, file_registration, inbox_of, ingestion_record, pending_inbox_files

DATASET_UPDATED = "ml-headcount.dataset.updated"
# an hourly run stuck for 2 hours holds up the next ones (one at a time); a retry redoes only the files still pending
TIMEOUT_S = 2 * 3600


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    settings = parameters.get("settings") or Settings()
    if isinstance(settings, dict):
        settings = Settings.model_validate(settings)
    inbox = PurePosixPath(settings.inbox.url.rstrip("/")).name or settings.inbox.url
    then = parameters.get("keywords_deployment") or "no keyword run"
    return f"{inbox} → {settings.inbox.dataset} · then {then}"


@flow(
    name="cv-ingestion",
    flow_run_name=_flow_run_name,
    log_prints=True,
    timeout_seconds=TIMEOUT_S,
)
def cv_ingestion(settings: Settings = Settings(), keywords_deployment: str | None = "cv-keywords/weekly") -> dict:
    """Append the inbox's new CV files to the registered dataset; if any CV was new, emit `ml-headcount.dataset.updated`
    for `keywords_deployment` (whose trigger starts it) to refresh the keywords.

    `settings.inbox` says where files arrive and which dataset they join; the
    event carries the same settings, so the keyword run reads the dataset from the
    same storage. Returns the ingestion summary.
    """
    without_user_error_tracebacks()
    ingestion_id = new_run_id()
    dataset, inbox = dataset_of(settings), inbox_of(settings)
    # each file on its own: one file whose registration fails (storage fault, bug) never stops the others
    states = [
        file_registration(dataset, inbox, file, settings, ingestion_id, return_state=True)
        for file in pending_inbox_files(dataset, inbox)
    ]
    outcomes = [state.result() for state in states if state.is_completed()]
    failures = [state.result(raise_on_failure=False) for state in states if not state.is_completed()]

    new_cvs = sum(o.registered for o in outcomes)
    keywords_run_event = (
        dataset_updated(dataset, settings, keywords_deployment, ingestion_id, new_cvs) if new_cvs else None
    )
    summary = ingestion_record(dataset, inbox, outcomes, keywords_run_event, ingestion_id)
    if failures:  # the flow run fails, visibly; those files stay pending and are tried again (a retry: only outages)
        permanent = all(isinstance(failure, PERMANENT_ERRORS) for failure in failures)
        raise (DeterministicError if permanent else RuntimeError)(
            f"{len(failures)} of {len(states)} inbox files could not be registered; see their task runs"
        )
    return summary


def dataset_updated(
    dataset: RegisteredDataset, settings: Settings, keywords_deployment: str | None, ingestion_id: str, new_cvs: int
) -> dict:
    """Emit `ml-headcount.dataset.updated` for the dataset; what the ingestion record says about it."""
    event = emit_event(
        event=DATASET_UPDATED,
        resource={
            "prefect.resource.id": f"ml-headcount.dataset.{settings.inbox.dataset}",
            "prefect.resource.name": settings.inbox.dataset,
            "ml-headcount.storage": redact_url(settings.storage.url),
            "ml-headcount.refresh": keywords_deployment or "none",  # what the keyword deployments' triggers match
        },
        payload={
            "input_url": dataset.location,
            "settings": settings.model_dump(mode="json"),
            "ingestion_id": ingestion_id,
            "new_cvs": new_cvs,
        },
    )
    get_run_logger().info(
        "%d new CVs in %s: emitted %s%s",
        new_cvs,
        redact_url(dataset.location),
        DATASET_UPDATED,
        f" for {keywords_deployment}" if keywords_deployment else "",
    )
    return {"event": DATASET_UPDATED, "event_id": str(event.id) if event else None, "deployment": keywords_deployment}
