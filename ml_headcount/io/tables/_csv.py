"""CSV and TSV, streamed in chunks: a row with too many fields, or one over the field limit, costs that row only."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import RAW_KEPT, Chunk, MalformedRow, check_columns, unique_names

_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


class _TooLarge(NamedTuple):
    """A record with a field over the csv module's field limit: its error and the start of its raw text."""

    error: csv.Error
    raw: str


def csv_chunks(text, delimiter: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The rows of a delimited text stream, `settings.chunk_rows` at a time, numbered from 1 after the header."""
    header: list[str] | None = None
    rows, index, malformed, source_row = [], [], [], 0
    with _field_size_limit(4 * settings.max_text_chars):  # a longer field is read, then rejected as too long
        for record in _records(text, delimiter, name):
            if header is None:
                if isinstance(record, _TooLarge):
                    raise InputError(f"{name}: row 1: {record.error}")
                check_columns(len(record), name, settings)
                header = unique_names([f.strip().lstrip("\ufeff") or f"column_{i + 1}" for i, f in enumerate(record)])
                continue
            source_row += 1
            problem = _problem(record, len(header), delimiter)
            if problem:
                malformed.append(problem._replace(source_row=source_row))
            else:
                rows.append(record + [None] * (len(header) - len(record)))
                index.append(source_row)
            if len(rows) + len(malformed) >= settings.chunk_rows:
                yield Chunk(pd.DataFrame(rows, columns=header, index=index, dtype=object), malformed)
                rows, index, malformed = [], [], []
    if header is not None:
        yield Chunk(pd.DataFrame(rows, columns=header, index=index, dtype=object), malformed)


def _problem(record: list[str] | _TooLarge, width: int, delimiter: str) -> MalformedRow | None:
    """Why a record cannot be a row of a table `width` columns wide (its source row left 0), or None."""
    if isinstance(record, _TooLarge):  # one huge cell costs its row, as a text over ingest.max_text_chars does
        reason = f"a field longer than {csv.field_size_limit():,} characters (4 x ingest.max_text_chars)"
        return MalformedRow(0, reason, record.raw)
    while len(record) > width and record[-1] == "":
        record.pop()  # trailing delimiters
    if len(record) <= width:
        return None
    reason = f"row has {len(record)} fields, the header {width} (an unquoted {_DELIMITERS[delimiter]} in a value?)"
    return MalformedRow(0, reason, delimiter.join(record[:RAW_KEPT]))


def _records(text, delimiter: str, name: str) -> Iterator[list[str] | _TooLarge]:
    """The stream's non-blank records; a record over the field limit is skipped to its end and given as `_TooLarge`."""
    record_lines: list[str] = []  # the lines of the record being parsed: what is skipped when one is too large

    def lines() -> Iterator[str]:
        for line in text:
            record_lines.append(line)
            yield line

    source = lines()
    reader = csv.reader(source, delimiter=delimiter)
    parsed = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" not in str(error):
                raise InputError(f"{name}: row {max(parsed, 1)}: {error}") from error
            record = _TooLarge(error, "".join(record_lines)[:RAW_KEPT])
            _skip_rest_of_record(record_lines, source, delimiter)
        record_lines.clear()
        if record and record != [""]:  # blank lines are not rows
            parsed += 1
            yield record


@contextmanager
def _field_size_limit(limit: int) -> Iterator[None]:
    """The csv module's field limit (process-wide) raised to at least `limit` while a file is read, then restored."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _skip_rest_of_record(record_lines: list[str], source: Iterator[str], delimiter: str) -> None:
    """After the csv reader gave up on a record part-way, consume the lines that are still that record's: those up to
    the end of a quoted field it was inside (the reader would otherwise take them for new rows)."""
    inside = _ends_inside_quotes("".join(record_lines), delimiter, False)
    while inside:
        line = next(source, None)
        if line is None:
            return
        inside = _ends_inside_quotes(line, delimiter, True)


def _ends_inside_quotes(text: str, delimiter: str, inside: bool) -> bool:
    """Whether CSV `text` (the csv module's dialect: '"' quotes, '""' escapes) ends inside a quoted field, given
    whether it starts inside one."""
    position, end, field_start = 0, len(text), not inside
    while position < end:
        if inside:
            quote = text.find('"', position)
            if quote < 0:
                return True
            if quote + 1 < end and text[quote + 1] == '"':
                position = quote + 2  # an escaped quote
                continue
            inside, field_start, position = False, False, quote + 1
        elif field_start and text[position] == '"':
            inside, position = True, position + 1
        else:
            separator = text.find(delimiter, position)
            if separator < 0:
                return False
            position, field_start = separator + 1, True
    return inside


def sniffed_delimiter(sample: str) -> str:
    """The delimiter the header line uses most: a TSV named .csv is still a TSV."""
    header = sample.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","
