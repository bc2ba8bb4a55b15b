"""What a command can check in a second, before a flow (and Prefect's temporary server) starts.

A user error found here costs the user a second, not the ~20 s a temporary
Prefect server takes to start: the input can be opened, the storage can be
written, the run id is a valid name, a run's stored lists are of a run's shape.
The flows check the same again, since they also run without the command line
(deployments, Python).
"""

from __future__ import annotations

from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore, check_name, storage_options
from ml_headcount.io.urls import check_writable, opened


def check_input(url: str, settings: Settings) -> None:
    """An InputError, naming the file, when `url` cannot be opened and read (missing, a directory, access denied)."""
    with opened(url, storage_options(url, settings.storage)) as handle:
        handle.read(1)


def check_output(url: str, settings: Settings) -> None:
    """An InputError when `url` is no place an output can be written (HTTP, credentials in an s3:// URL)."""
    check_writable(url, "--output")
    storage_options(url, settings.storage)


def check_storage(settings: Settings) -> ArtifactStore:
    """The run's storage, verified usable (exists or can be created, writable, credentials accepted)."""
    store = ArtifactStore(settings.storage)
    store.verify()
    return store


def check_run_id(run_id: str | None, what: str = "run id") -> None:
    """An InputError when a given run id could not be one segment of a storage key."""
    if run_id is not None:
        check_name(run_id, what)


def check_run_lists(store: ArtifactStore, run_id: str) -> None:
    """An InputError, naming the run and the file, when the run's lists, queries, settings or classifier are not of
    the shape a run writes (a damaged or planted artifact fails here, not after Prefect started)."""
    from ml_headcount.lists.run_lists import load_run_lists

    load_run_lists(store, run_id)
