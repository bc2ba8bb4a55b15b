"""What every table reader shares: the chunk it yields, the errors that mean bad bytes, the column limit."""

from __future__ import annotations

import csv
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError

CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # control characters other than tab and line breaks


class MalformedRow(NamedTuple):
    """A row a reader could not parse: where it is, why, and the start of its raw text."""

    source_row: int
    reason: str
    raw: str


RAW_KEPT = 1000  # characters of a raw value kept in the rejected table


class Malformed(ValueError):
    """A parser's complaint about the bytes of a file (never storage, memory or a bug)."""


# what a parser raises on bad bytes; anything else (MemoryError, storage faults, bugs) is not the file's fault
PARSER_ERRORS = (Malformed, UnicodeError, csv.Error, zipfile.BadZipFile, zlib.error, EOFError)


@dataclass
class Chunk:
    """Rows of a file as parsed: a table indexed by 1-based source row, and rows that could not be parsed."""

    table: pd.DataFrame
    malformed: list[MalformedRow] = field(default_factory=list)
    sheet: str | None = None
    from_cp1252: bool = False


def check_columns(count: int, name: str, settings: IngestSettings, where: str = "the header has") -> None:
    """An InputError when a table is wider than ingest.max_columns (every row is padded to its width)."""
    if count > settings.max_columns:
        raise InputError(
            f"{name}: {where} {count:,} columns, over ingest.max_columns ({settings.max_columns:,}); "
            "every row is padded to that width in memory"
        )


def row_too_long(settings: IngestSettings) -> str:
    """Why a row over ingest.max_row_chars is rejected."""
    return f"a row longer than {settings.max_row_chars:,} characters (ingest.max_row_chars)"


class LongLine(NamedTuple):
    """A line over ingest.max_row_chars, read no further than that: the start of its raw text."""

    raw: str


def bounded_lines(text, limit: int) -> Iterator[str | LongLine]:
    """The lines of a text stream, none held longer than `limit` characters: a longer line is a `LongLine`, the rest
    of it read and dropped a piece at a time (a 2 GB line inside a 2 MB .gz costs `limit`, not 2 GB)."""
    while line := text.readline(limit + 1):
        if len(line) <= limit:
            yield line
            continue
        raw = line[:RAW_KEPT]
        while line and not line.endswith(("\n", "\r")):
            line = text.readline(limit + 1)
        yield LongLine(raw)


def distinct_names(names: list[str], name: str) -> list[str]:
    """The header's column names; an InputError naming the column when one repeats (pandas' readers would call the
    second `x.1`, and a reader looking for `x` would silently take the first and drop the second)."""
    first: dict[str, int] = {}
    for i, column in enumerate(names, start=1):
        if column in first:
            raise InputError(
                f"{name}: row 1, column {column!r}: the header names it twice (columns {first[column]} and {i}); "
                "rename one"
            )
        first[column] = i
    return names


def is_missing(value) -> bool:
    """Whether a cell holds no value (None, pandas' NA, or NaN), whichever reader produced it."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
