"""JSON Lines, streamed in chunks, and JSON arrays of records, read whole under a size cap."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import (
    RAW_KEPT,
    Chunk,
    LongLine,
    MalformedRow,
    bounded_lines,
    check_columns,
    row_too_long,
)


def jsonl_chunks(text, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """One JSON object per line, `settings.chunk_rows` (or `chunk_bytes`) at a time; a line that is not an object, or
    is over ingest.max_row_chars, costs that row only."""
    records, index, malformed = [], [], []
    columns: set[str] = set()
    source_row = chars = 0
    for line in bounded_lines(text, settings.max_row_chars):
        if isinstance(line, str) and not line.strip():
            continue
        source_row += 1
        record, problem = _record(line, settings)
        raw = line.raw if isinstance(line, LongLine) else line.rstrip("\r\n")[:RAW_KEPT]
        if problem:
            malformed.append(MalformedRow(source_row, problem, raw))
        else:
            records.append(record)
            index.append(source_row)
            columns.update(map(str, record))
            check_columns(len(columns), name, settings, "its records together have")
        chars += len(raw) if problem else len(line)
        if len(records) + len(malformed) >= settings.chunk_rows or chars >= settings.chunk_bytes:
            yield Chunk(_records_table(records, index), malformed)
            records, index, malformed, chars = [], [], [], 0
    yield Chunk(_records_table(records, index), malformed)


def _record(line: str | LongLine, settings: IngestSettings) -> tuple[dict | None, str]:
    """A JSONL line's record, or why it has none."""
    if isinstance(line, LongLine):
        return None, row_too_long(settings)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    if not isinstance(record, dict):
        return None, f"invalid JSON line: a {type(record).__name__}, not an object"
    if len(record) > settings.max_columns:
        return None, f"a record with more than {settings.max_columns:,} fields (ingest.max_columns)"
    return record, ""


def json_array_chunks(text, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """A JSON array of records (read whole: a JSON document cannot be parsed in parts, so its size is capped)."""
    cap = settings.max_whole_file_bytes
    document = text.read(cap + 1)
    if len(document) > cap:
        raise InputError(
            f"{name}: a JSON array is read whole, and this one is over {cap:,} characters "
            "(ingest.max_whole_file_bytes); write one record per line (JSONL) instead"
        )
    try:
        items = json.loads(document)
    except json.JSONDecodeError as error:
        raise InputError(f"{name}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from error
    except RecursionError:
        raise InputError(f"{name}: invalid JSON: nested too deeply (arrays or objects inside each other)") from None
    del document
    if not isinstance(items, list):
        raise InputError(f"{name}: JSON must be an array of records or one record per line (JSONL)")
    columns: set[str] = set()
    for start in range(0, len(items), settings.chunk_rows):
        records, index, malformed = [], [], []
        for source_row, item in enumerate(items[start : start + settings.chunk_rows], start=start + 1):
            if isinstance(item, dict) and len(item) <= settings.max_columns:
                records.append(item)
                index.append(source_row)
                columns.update(map(str, item))
                check_columns(len(columns), name, settings, "its records together have")
            elif isinstance(item, dict):
                malformed.append(
                    MalformedRow(
                        source_row,
                        f"a record with more than {settings.max_columns:,} fields (ingest.max_columns)",
                        _json_text(item),
                    )
                )
            else:
                malformed.append(
                    MalformedRow(source_row, f"array item is a {type(item).__name__}, not a record", _json_text(item))
                )
        yield Chunk(_records_table(records, index), malformed)


def _json_text(value) -> str:
    try:
        return json.dumps(value)[:RAW_KEPT]
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"


def _records_table(records: list[dict], index: list[int]) -> pd.DataFrame:
    table = pd.DataFrame(records, index=index, dtype=object)
    table.columns = [str(c) for c in table.columns]
    return table
