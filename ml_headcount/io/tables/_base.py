"""What every table reader shares: the chunk it yields, the errors that mean bad bytes, the column limit."""

from __future__ import annotations

import csv
import re
import zipfile
import zlib
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


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique as pandas' readers do: a repeated `x` becomes `x.1`, `x.2`, ..."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        out.append(n if n not in seen else f"{n}.{seen[n]}")
        seen[n] = seen.get(n, 0) + 1
    return out


def is_missing(value) -> bool:
    """Whether a cell holds no value (None, pandas' NA, or NaN), whichever reader produced it."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
