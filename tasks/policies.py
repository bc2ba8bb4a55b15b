"""Retry and cache policies shared by the tasks.

Transient failures (storage, network, Modal) retry with exponential backoff and
jitter; bad input and misconfiguration fail at once, since retrying cannot fix
them. Model-work tasks are cached by keys built from content hashes, never by
hashing DataFrames (PrefectHQ/prefect #16185, #17547).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prefect.filesystems import RemoteFileSystem, WritableFileSystem
from prefect.tasks import exponential_backoff

from ml_headcount.ingest import InputError
from ml_headcount.runs import RunExistsError
from ml_headcount.storage import ArtifactStore, StorageError

PERMANENT_ERRORS = (InputError, RunExistsError, StorageError, ValueError, KeyError, TypeError, PermissionError, FileNotFoundError)


def is_transient(task, task_run, state) -> bool:
    """Retry unless the failure is one that a retry cannot fix."""
    return not isinstance(state.data, PERMANENT_ERRORS)


IO_RETRIES = dict(
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=1),
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
)


def result_storage(store: ArtifactStore) -> Path | WritableFileSystem:
    """Prefect's persisted results (and so its cache records) live beside the artifacts.

    Prefect wants remote result storage as a saved block; the block holds the
    URL and endpoint only, credentials stay in the environment.
    """
    location = store.location("prefect-results")
    if store.is_local:
        return Path(location)
    block = RemoteFileSystem(basepath=location, settings=store.options)
    block.save(f"ml-headcount-results-{hashlib.sha256(location.encode()).hexdigest()[:12]}", overwrite=True)
    return block
