"""Reading a table file anywhere fsspec reaches: in chunks (CV tables of any size) or whole (small tables)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import PARSER_ERRORS, Chunk
from ml_headcount.io.tables._formats import file_chunks
from ml_headcount.io.urls import opened, redact_url, stream_sha256


def handle_chunks(handle, url: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The rows of the file open as `handle` (read from its start), chunk by chunk: each chunk's table is indexed by
    1-based source row, and rows that could not be parsed are its `malformed`. Bad bytes are an InputError."""
    name = redact_url(url)
    try:
        yield from file_chunks(handle, url, name, settings)
    except PARSER_ERRORS as error:
        raise InputError(f"{name}: cannot be read: {error}") from error


def table_chunks(url: str, settings: IngestSettings, storage_options: dict | None = None) -> Iterator[Chunk]:
    """The file's rows chunk by chunk, as ingest reads them (every format, encoding and compression it reads)."""
    with opened(url, storage_options) as handle:
        yield from handle_chunks(handle, url, settings)


def read_table(
    url: str, storage_options: dict | None = None, settings: IngestSettings = IngestSettings()
) -> tuple[pd.DataFrame, str]:
    """A whole table (any format ingest reads; every XLSX sheet) and the file's sha256, for tables that are not CVs.

    A row that cannot be parsed fails the whole file here: such tables have no rejected-rows output."""
    name = redact_url(url)
    with opened(url, storage_options) as handle:
        digest = stream_sha256(handle)
        handle.seek(0)
        chunks = list(handle_chunks(handle, url, settings))
    for chunk in chunks:
        for malformed in chunk.malformed[:1]:
            raise InputError(f"{name}: row {malformed.source_row}: {malformed.reason}")
    tables = [c.table for c in chunks if len(c.table.columns)]
    if not tables:
        raise InputError(f"{name}: is empty (no header and no rows)")
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0].reset_index(drop=True), digest


def table_headers(url: str, settings: IngestSettings, storage_options: dict | None = None) -> dict[str | None, list]:
    """The column names of the table at `url` as ingest reads them, per XLSX sheet (one entry, None, for every other
    format), from the first rows only: what a command checks before any flow starts."""
    reading = settings.model_copy(update={"chunk_rows": 1})
    headers: dict[str | None, list] = {}
    for chunk in table_chunks(url, reading, storage_options):
        if chunk.sheet is None:
            return {None: [str(c) for c in chunk.table.columns]}
        headers.setdefault(chunk.sheet, [str(c) for c in chunk.table.columns])
    return headers
