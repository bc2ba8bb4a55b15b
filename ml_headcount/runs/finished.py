"""Finding a finished run: by its id, as `latest`, or by the location `ml-headcount run` printed."""

from __future__ import annotations

from ml_headcount.config import StorageSettings
from ml_headcount.errors import InputError
from ml_headcount.io.storage import ArtifactStore, check_name
from ml_headcount.runs.layout import LATEST, MANIFEST, RunLayout, latest_pointer


def split_run_reference(run: str, storage_url: str) -> tuple[str, str]:
    """(storage URL, run id) from a run id (or `latest`) under storage_url, or from a run's location."""
    stripped = run.rstrip("/")
    if "/runs/" in stripped:
        root, run_id = stripped.rsplit("/runs/", 1)
        return root, run_id
    return storage_url, stripped


def resolve_run_id(store: ArtifactStore, run_id: str) -> str:
    """The run id itself, or the newest complete run's for `latest`; checked as every run id is (`check_name`)."""
    if run_id != "latest":
        return check_name(run_id, "run id")
    try:
        data = store.read_bytes(LATEST)
    except FileNotFoundError:
        raise InputError(
            f"{store.location('runs')}: no complete run yet (no latest.json); give a run id or location"
        ) from None
    pointer = latest_pointer(data)
    if pointer is None:
        raise InputError(
            f"{store.location(LATEST)}: names no valid run id (it must be one name: letters, digits, "
            "'.', '_' and '-'); give a run id or location instead"
        )
    return pointer["run_id"]


def finished_run(store: ArtifactStore, run_id: str) -> RunLayout:
    """The layout of the complete run `run_id` names (an id, or `latest`); an InputError when there is none there."""
    run = RunLayout(resolve_run_id(store, run_id))
    if not store.exists(run.manifest):
        raise InputError(
            f"{store.location(run.prefix)}: no complete run there (no {MANIFEST}); check the run id and --storage-url"
        )
    return run


def run_store(run: str, storage: StorageSettings) -> tuple[ArtifactStore, str]:
    """The store holding the complete run that `run` names (an id or `latest` under `storage`, or a run's location, as
    `ml-headcount run` prints it), and the run's id; an InputError when there is no complete run there."""
    storage_url, run_id = split_run_reference(run, storage.url)
    store = ArtifactStore(storage.model_copy(update={"url": storage_url}))
    return store, finished_run(store, run_id).run_id
