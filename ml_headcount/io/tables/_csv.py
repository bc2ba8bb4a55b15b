"""CSV and TSV, streamed in chunks: a row with too many fields, over the field limit or over ingest.max_row_chars,
costs that row only."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import RAW_KEPT, Chunk, MalformedRow, check_columns, distinct_names, row_too_long

_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


class _TooLarge(NamedTuple):
    """A record that cannot be kept whole (over ingest.max_row_chars, or a field over the csv module's limit): why,
    and the start of its raw text."""

    reason: str
    raw: str


class _RowTooLong(Exception):
    """Raised by `_Lines` when the record being read passes ingest.max_row_chars."""


def csv_chunks(text, delimiter: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The rows of a delimited text stream, `settings.chunk_rows` (or `chunk_bytes`) at a time, numbered from 1 after
    the header."""
    header: list[str] | None = None
    rows, index, malformed, source_row, chars = [], [], [], 0, 0
    with _field_size_limit(4 * settings.max_text_chars):  # a longer field is read, then rejected as too long
        for record in _records(text, delimiter, name, settings):
            if header is None:
                if isinstance(record, _TooLarge):
                    raise InputError(f"{name}: row 1: {record.reason}")
                check_columns(len(record), name, settings)
                header = distinct_names(
                    [f.strip().lstrip("\ufeff") or f"column_{i + 1}" for i, f in enumerate(record)], name
                )
                continue
            source_row += 1
            problem = _problem(record, len(header), delimiter)
            if problem:
                malformed.append(problem._replace(source_row=source_row))
            else:
                rows.append(record + [None] * (len(header) - len(record)))
                index.append(source_row)
            chars += len(problem.raw) if problem else sum(map(len, record))
            if len(rows) + len(malformed) >= settings.chunk_rows or chars >= settings.chunk_bytes:
                yield Chunk(pd.DataFrame(rows, columns=header, index=index, dtype=object), malformed)
                rows, index, malformed, chars = [], [], [], 0
    if header is not None:
        yield Chunk(pd.DataFrame(rows, columns=header, index=index, dtype=object), malformed)


def _problem(record: list[str] | _TooLarge, width: int, delimiter: str) -> MalformedRow | None:
    """Why a record cannot be a row of a table `width` columns wide (its source row left 0), or None."""
    if isinstance(record, _TooLarge):  # one huge cell costs its row, as a text over ingest.max_text_chars does
        return MalformedRow(0, record.reason, record.raw)
    while len(record) > width and record[-1] == "":
        record.pop()  # trailing delimiters
    if len(record) <= width:
        return None
    reason = f"row has {len(record)} fields, the header {width} (an unquoted {_DELIMITERS[delimiter]} in a value?)"
    return MalformedRow(0, reason, delimiter.join(record[:RAW_KEPT]))


def _records(text, delimiter: str, name: str, settings: IngestSettings) -> Iterator[list[str] | _TooLarge]:
    """The stream's non-blank records; one too large to keep is skipped to its end and given as `_TooLarge`."""
    lines = _Lines(text, settings.max_row_chars)
    reader = csv.reader(lines, delimiter=delimiter)
    parsed = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except _RowTooLong:
            record = _TooLarge(row_too_long(settings), lines.start())
            lines.skip_rest_of_record(delimiter)
        except csv.Error as error:
            if "field larger than field limit" not in str(error):
                raise InputError(f"{name}: row {max(parsed, 1)}: {error}") from error
            reason = f"a field longer than {csv.field_size_limit():,} characters (4 x ingest.max_text_chars)"
            record = _TooLarge(reason, lines.start())
            lines.skip_rest_of_record(delimiter)
        lines.new_record()
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


class _Lines:
    """The lines the csv reader parses, no record's held longer than `limit` characters: reading past it raises
    `_RowTooLong` (the reader's own field limit comes only after a whole line is in memory, and a 2 GB line inside a
    2 MB .csv.gz would be)."""

    def __init__(self, text, limit: int):
        self.text, self.limit = text, limit
        self.record: list[str] = []  # the lines (the last perhaps cut short) read of the record being parsed
        self.size = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.limit - self.size + 1)
        if not line:
            raise StopIteration
        self.record.append(line)
        self.size += len(line)
        if self.size > self.limit:
            raise _RowTooLong
        return line

    def start(self) -> str:
        """The start of the record's raw text, as a rejected row keeps it."""
        return "".join(self.record)[:RAW_KEPT]

    def new_record(self) -> None:
        self.record, self.size = [], 0

    def skip_rest_of_record(self, delimiter: str) -> None:
        """After the csv reader gave up on a record part-way, read and drop what is still that record: the rest of a
        line cut short, and the lines up to the end of a quoted field it was inside (the reader would otherwise take
        them for new rows)."""
        state = _FIELD_START
        for piece in self.record:
            state = _quote_state(piece, delimiter, state)
        piece = self.record[-1] if self.record else "\n"
        while state == _QUOTED or not piece.endswith(("\n", "\r")):
            piece = self.text.readline(self.limit)
            if not piece:
                return
            state = _quote_state(piece, delimiter, state)


# where CSV text leaves its parser: at a field's start, in an unquoted field, in a quoted one, or just after a quote in
# a quoted one (which the next character shows to be the closing quote or the first of an escaped pair)
_FIELD_START, _UNQUOTED, _QUOTED, _AFTER_QUOTE = range(4)


def _quote_state(text: str, delimiter: str, state: int) -> int:
    """Where CSV `text` (the csv module's dialect: '"' quotes, '""' escapes) leaves a parser that started it in
    `state`; a line end outside quotes ends the record, so `text` is at most one line, or part of one."""
    position, end = 0, len(text)
    while position < end:
        if state == _AFTER_QUOTE:
            state = _QUOTED if text[position] == '"' else _UNQUOTED
            position += state == _QUOTED
        elif state == _QUOTED:
            quote = text.find('"', position)
            if quote < 0:
                return _QUOTED
            state, position = _AFTER_QUOTE, quote + 1
        elif state == _FIELD_START and text[position] == '"':
            state, position = _QUOTED, position + 1
        else:
            separator = text.find(delimiter, position)
            if separator < 0:
                return _UNQUOTED
            state, position = _FIELD_START, separator + 1
    return state


def sniffed_delimiter(sample: str) -> str:
    """The delimiter the header line uses most: a TSV named .csv is still a TSV."""
    header = sample.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","
