"""XLSX workbooks, every sheet, streamed row by row (openpyxl's read-only mode) under an uncompressed-size cap."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import Chunk, check_columns, distinct_names


def xlsx_chunks(handle, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """Every sheet whose header has the text and label columns, rows numbered on across sheets."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    handle.seek(0)
    try:
        uncompressed = sum(member.file_size for member in zipfile.ZipFile(handle).infolist())
    except zipfile.BadZipFile as error:
        raise InputError(f"{name}: cannot be read as xlsx: {error}") from error
    if uncompressed > settings.max_xlsx_bytes:
        raise InputError(
            f"{name}: the workbook uncompresses to {uncompressed:,} bytes, over ingest.max_xlsx_bytes "
            f"({settings.max_xlsx_bytes:,}); save it as CSV"
        )
    handle.seek(0)
    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"{name}: cannot be read as xlsx: {error}") from error
    source_row = 0
    try:
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header = next((r for r in rows if any(v is not None for v in r)), None)
            if header is None:
                continue
            header = header[: max(i for i, v in enumerate(header) if v is not None) + 1]  # empty cells after the last
            check_columns(len(header), f"{name} sheet {sheet.title!r}", settings)
            columns = distinct_names(
                [str(v).strip() if v is not None else f"column_{i + 1}" for i, v in enumerate(header)],
                f"{name} sheet {sheet.title!r}",
            )
            batch, index = [], []
            for values in rows:
                if all(v is None for v in values):
                    continue
                source_row += 1
                batch.append(list(values[: len(columns)]) + [None] * (len(columns) - len(values)))
                index.append(source_row)
                if len(batch) >= settings.chunk_rows:
                    yield Chunk(pd.DataFrame(batch, columns=columns, index=index, dtype=object), sheet=sheet.title)
                    batch, index = [], []
            yield Chunk(pd.DataFrame(batch, columns=columns, index=index, dtype=object), sheet=sheet.title)
    finally:
        workbook.close()
