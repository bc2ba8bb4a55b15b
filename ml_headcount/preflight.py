"""What a command can check in a second, before a flow (and Prefect's temporary server) starts.

A user error found here costs the user a second, not the ~20 s a temporary
Prefect server takes to start: the input can be opened, the storage can be
written, the run id is a valid name, a run's stored lists are of a run's shape,
the tables have the columns the command needs (their headers alone are read).
The flows check the same again, since they also run without the command line
(deployments, Python).
"""

from __future__ import annotations

from ml_headcount.config import HeadcountSettings, IngestSettings, StorageSettings
from ml_headcount.errors import InputError
from ml_headcount.io.storage import ArtifactStore, check_name, storage_options
from ml_headcount.io.urls import check_writable, opened, redact_url


def check_input(url: str, storage_settings: StorageSettings) -> None:
    """An InputError, naming the file, when `url` cannot be opened and read (missing, a directory, access denied)."""
    with opened(url, storage_options(url, storage_settings)) as handle:
        handle.read(1)


def check_output(url: str, storage_settings: StorageSettings) -> None:
    """An InputError when `url` is no place an output can be written (HTTP, credentials in an s3:// URL)."""
    check_writable(url, "--output")
    storage_options(url, storage_settings)


def check_storage(storage_settings: StorageSettings) -> ArtifactStore:
    """The run's storage, verified usable (exists or can be created, writable, credentials accepted)."""
    store = ArtifactStore(storage_settings)
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


def check_cv_columns(
    url: str, ingest_settings: IngestSettings, storage_settings: StorageSettings, with_label: bool = True
) -> None:
    """An InputError naming the file, the column and the option that names it, when the CV table at `url` has no text
    column (or, `with_label`, no label column), read from its header: what ingest (`run`) and `apply` would find."""
    from ml_headcount.io.tables import TEXT_COLUMN_OPTION, cv_columns, find_column, table_headers

    name = redact_url(url)
    headers = table_headers(url, ingest_settings, storage_options(url, storage_settings))
    first_error = None
    for sheet, columns in headers.items():
        where = name if sheet is None else f"{name} sheet {sheet!r}"
        try:
            if with_label:
                cv_columns(columns, ingest_settings, where)
            else:
                text_column, aliases = ingest_settings.text_column, ingest_settings.text_aliases
                find_column(columns, text_column, aliases, "text", where, TEXT_COLUMN_OPTION)
            return
        except InputError as error:
            first_error = first_error or error
        if not with_label:  # apply reads the first sheet only
            break
    if first_error is not None:
        raise first_error


def check_estimate_columns(
    validation_url: str,
    population_url: str,
    mode: str,
    with_keywords: bool,
    headcount_settings: HeadcountSettings,
    ingest_settings: IngestSettings,
    storage_settings: StorageSettings,
) -> None:
    """An InputError naming the file, the column and the option that fixes it, when the estimate's tables lack a
    column it needs, read from their headers (every XLSX sheet's columns, as the estimate reads them)."""
    from ml_headcount.headcount.columns import check_estimate_headers

    validation, population = (
        (_all_columns(url, ingest_settings, storage_settings), redact_url(url))
        for url in (validation_url, population_url)
    )
    check_estimate_headers(validation, population, mode, with_keywords, headcount_settings, ingest_settings)


def _all_columns(url: str, ingest_settings: IngestSettings, storage_settings: StorageSettings) -> list[str]:
    from ml_headcount.io.tables import table_headers

    columns: dict[str, None] = {}
    for header in table_headers(url, ingest_settings, storage_options(url, storage_settings)).values():
        columns.update(dict.fromkeys(header))
    return list(columns)
