"""Tasks that produce the registered dataset: the inbox's pending files, each file's registration, the ingestion
record."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from ml_headcount.config import Settings
from ml_headcount.corpus.dataset import (
    FileOutcome,
    Inbox,
    InboxFile,
    RegisteredDataset,
    ingestion_markdown,
    ingestion_summary,
    register_file,
)
from ml_headcount.io.storage import ArtifactStore
from tasks.policies import TASK_POLICY


def inbox_of(settings: Settings) -> Inbox:
    """The inbox the settings name, read through the artifact store's access."""
    return Inbox(settings.inbox, settings.storage)


def dataset_of(settings: Settings) -> RegisteredDataset:
    """The registered dataset the settings name, in the artifact store."""
    return RegisteredDataset(ArtifactStore(settings.storage), settings.inbox.dataset)


@task(name="pending-inbox-files", **TASK_POLICY)
def pending_inbox_files(dataset: RegisteredDataset, inbox: Inbox) -> list[InboxFile]:
    """Files in the inbox whose location and content were never processed."""
    pending = dataset.pending(inbox)
    logger = get_run_logger()
    if inbox.missing:
        logger.warning("%s does not exist: no file can arrive; create it (or set settings.inbox.url)", inbox.location)
    logger.info("%s: %d new or changed files", inbox.location, len(pending))
    return pending


@task(name="file-registration", task_run_name="register {file.key}", **TASK_POLICY)
def file_registration(
    dataset: RegisteredDataset, inbox: Inbox, file: InboxFile, settings: Settings, ingestion_id: str
) -> FileOutcome:
    """The file's new CVs and rejected rows appended to the dataset, or the file quarantined."""
    outcome = register_file(dataset, inbox, file, settings.ingest, ingestion_id)
    logger = get_run_logger()
    if file.changed_from:
        logger.warning("%s changed since it was processed; rows it no longer has stay registered", file.location)
    if outcome.status == "quarantined":
        where = f"moved to {outcome.moved_to}" if outcome.moved_to else "left in place"
        logger.warning("%s is malformed, %s: %s", file.location, where, outcome.error)
    else:
        logger.info(
            "%s: %d rows -> %d new CVs, %d duplicates, %d rejected",
            file.location,
            outcome.rows,
            outcome.registered,
            outcome.duplicates,
            outcome.rejected,
        )
    return outcome


@task(name="ingestion-record", **TASK_POLICY)
def ingestion_record(
    dataset: RegisteredDataset,
    inbox: Inbox,
    outcomes: list[FileOutcome],
    keywords_run_event: dict | None,
    ingestion_id: str,
) -> dict:
    """ingestions/<id>.json in storage (when any file was processed) and the report in the Prefect UI."""
    summary = ingestion_summary(ingestion_id, inbox, dataset, outcomes, keywords_run_event)
    if outcomes:  # an hourly run that found nothing leaves no file behind
        dataset.write_ingestion(summary)
    create_markdown_artifact(
        key="cv-ingestion-report", markdown=ingestion_markdown(summary), description=f"Ingestion {ingestion_id}"
    )
    return summary
