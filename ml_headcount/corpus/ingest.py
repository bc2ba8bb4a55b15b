"""Ingest: a CV table read, cleaned, deduplicated and accounted for, row by row.

Every input row ends in exactly one place: the clean table (one row per
distinct CV), the rejected table (with a reason, its source row and raw value;
duplicates included), or the count of rows beyond `--limit`:
`input_rows = cvs + rejected + duplicates + beyond_limit`, asserted on every
ingest. Nothing is dropped silently. Files are read in chunks of
`ingest.chunk_rows` rows, so memory follows the chunk size and the CVs kept,
not the file size. docs/bad-input.md lists what is read, rejected or refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import fsspec
import ftfy
import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.corpus import text_repair
from ml_headcount.corpus.cleaning import clean_text, clean_text_problem, cv_id, raw_text_problem, same_label, text_hash
from ml_headcount.corpus.kept_and_rejected import KeptCvs, RejectedRows
from ml_headcount.errors import InputChangedError, InputError
from ml_headcount.io import parallel
from ml_headcount.io.tables import RAW_KEPT, Chunk, cv_columns, handle_chunks, is_missing
from ml_headcount.io.urls import opened, redact_url, stream_sha256


@dataclass
class IngestResult:
    """Where every row of one input went: kept, rejected (duplicates included) or beyond `--limit`."""

    kept: KeptCvs
    rejected_rows: RejectedRows
    input_rows: int
    input_sha256: str
    text_column: str
    label_column: str
    repaired_encoding: int
    duplicates: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    limit: int | None = None
    beyond_limit: int = 0
    encoding: str = ""
    sheets: dict[str, int] = field(default_factory=dict)  # XLSX: rows read per sheet; -1 = skipped, no text column

    @property
    def cvs(self) -> pd.DataFrame:
        """Every kept CV in one table (the streaming reader is `kept.batches()`)."""
        return self.kept.table()

    @property
    def rejected(self) -> pd.DataFrame:
        """Every rejected row in one table (the streaming reader is `rejected_rows.batches()`)."""
        return self.rejected_rows.table()

    def summary(self) -> dict:
        """The ingest's account, as recorded in the run's manifest."""
        return {
            "input_rows": self.input_rows,
            "input_sha256": self.input_sha256,
            "limit": self.limit,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "encoding": self.encoding,
            "sheets": self.sheets,
            "cvs": self.kept.count,
            "duplicates": self.duplicates,
            "rejected": self.rejected_rows.count - self.duplicates,
            "beyond_limit": self.beyond_limit,
            "rejected_by_reason": self.rejected_by_reason,
            "repaired_encoding": self.repaired_encoding,
            "categories": self.kept.categories,
        }

    def check_accounting(self) -> None:
        """Every input row is accounted for exactly once (a failure here is a bug, never the input's fault)."""
        accounted = self.kept.count + self.rejected_rows.count + self.beyond_limit  # rejected includes the duplicates
        assert accounted == self.input_rows, f"{self.input_rows} input rows but {accounted} accounted for"


def ingest(
    url: str, settings: IngestSettings, storage_options: dict | None = None, spill: Path | None = None, workers: int = 1
) -> IngestResult:
    """The file's CVs for a keyword run: at least two categories are needed. With `spill`, kept CVs go to that local
    Parquet file as they are found, and rejected rows to one beside it (memory then does not follow the file's
    size); `workers` processes clean texts."""
    result = ingest_file(url, settings, storage_options, spill, workers)
    name = redact_url(url)
    if result.input_rows == 0:
        raise InputError(f"{name}: no data rows (only a header)")
    categories = sorted(result.kept.categories)
    if len(categories) < 2:
        raise InputError(
            f"{name}: column {result.label_column!r} yields {len(categories)} usable categories "
            f"({categories}) after cleaning; at least 2 are needed to find discriminative keywords"
        )
    return result


def ingest_file(
    url: str, settings: IngestSettings, storage_options: dict | None = None, spill: Path | None = None, workers: int = 1
) -> IngestResult:
    """Read, clean and deduplicate one file, streaming it in chunks; any category count."""
    rejected_spill = None if spill is None else spill.with_name(f"{spill.stem}.rejected.parquet")
    with opened(url, storage_options) as handle:
        digest = stream_sha256(handle)
        hashed = handle.tell()
        handle.seek(0)
        accounting = _Accounting(redact_url(url), settings, KeptCvs(spill), RejectedRows(rejected_spill))
        result = accounting.run(handle_chunks(handle, url, settings), digest, workers)
    _check_unchanged(url, storage_options, hashed, redact_url(url))
    result.check_accounting()
    return result


def _check_unchanged(url: str, storage_options: dict | None, hashed: int, name: str) -> None:
    """The file still has the size it had when its sha256 was taken: the rows read are the bytes hashed (a file
    appended to while it was read would otherwise be recorded, and cached, under the digest of its shorter self)."""
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        fs.invalidate_cache(path)
        size = fs.size(path)
    except Exception:  # noqa: BLE001 - a location that cannot say (a stream): nothing to compare
        return
    if size is not None and size != hashed:
        raise InputChangedError(
            f"{name}: changed while it was read ({hashed:,} bytes when hashed, {size:,} now); "
            "run again once the file is complete"
        )


def ingest_table(table: pd.DataFrame, url: str, settings: IngestSettings, input_sha256: str = "") -> IngestResult:
    """An in-memory table, its rows numbered from 1; any category count."""
    table = table.copy()
    table.columns = [str(c) for c in table.columns]
    table.index = pd.RangeIndex(1, len(table) + 1)
    result = _Accounting(redact_url(url), settings, KeptCvs(), RejectedRows()).run([Chunk(table)], input_sha256)
    result.check_accounting()
    return result


class _Rows(NamedTuple):
    """A chunk's rows to clean, as sent to a worker process."""

    source_rows: list[int]
    texts: list
    labels: list
    from_cp1252: bool
    settings: IngestSettings


class _Rejection(NamedTuple):
    """A row that cannot be kept: why, whether its label (not its text) is at fault, and its raw values."""

    reason: str
    in_label: bool
    raw_label: str
    raw_text: str


class _Cleaned(NamedTuple):
    """A row whose text is usable: the clean text, its sha256 and label, whether its encoding was repaired."""

    text: str
    text_hash: str
    label: str
    repaired: bool
    raw_label: str
    raw_text: str


class _Accounting:
    """One ingest's account: which columns hold text and label, and where each row has gone so far."""

    def __init__(self, name: str, settings: IngestSettings, kept: KeptCvs, rejected: RejectedRows):
        self.name, self.settings, self.kept, self.rejected = name, settings, kept, rejected
        self.seen: dict[str, tuple[int, str]] = {}  # text_hash -> (source row, label) of the CV kept
        # each chunk's rows that could not be parsed, until its cleaned rows come back (in order: one entry per batch)
        self.malformed: deque[list[dict]] = deque()
        self.input_rows = self.repaired = self.duplicates = self.beyond_limit = 0
        self.columns: tuple[str, str] | None = None
        self.sheets: dict[str, int] = {}  # XLSX: rows read per sheet; -1 = skipped, no text column
        self.encoding = ""

    def run(self, chunks: Iterable[Chunk], input_sha256: str, workers: int = 1) -> IngestResult:
        """Every chunk's rows cleaned (by `workers` processes) and settled, in order; the account."""
        for source_rows, outcomes in parallel.ordered_map(_cleaned_rows, self._rows_to_clean(chunks), workers):
            self._settle(source_rows, outcomes)
        self.kept.close()
        self.rejected.close()
        if self.columns is None:
            if self.sheets:
                raise InputError(f"{self.name}: no sheet has a text and a label column (sheets: {list(self.sheets)})")
            raise InputError(f"{self.name}: is empty (no header and no rows)")
        return IngestResult(
            kept=self.kept,
            rejected_rows=self.rejected,
            input_rows=self.input_rows,
            input_sha256=input_sha256,
            limit=self.settings.limit,
            text_column=self.columns[0],
            label_column=self.columns[1],
            repaired_encoding=self.repaired,
            duplicates=self.duplicates,
            rejected_by_reason=dict(self.rejected.by_reason.most_common()),
            beyond_limit=self.beyond_limit,
            encoding=self.encoding,
            sheets=self.sheets,
        )

    def _rows_to_clean(self, chunks: Iterable[Chunk]) -> Iterator[_Rows]:
        """Each chunk's rows to clean; sheets, columns and rows that could not be parsed are settled here, in order."""
        for chunk in chunks:
            self.encoding = self.encoding or ("cp1252" if chunk.from_cp1252 else "")
            if chunk.sheet is not None and not self._sheet_has_columns(chunk):
                continue
            self.columns = self.columns or cv_columns(list(chunk.table.columns), self.settings, self.name)
            self.input_rows += len(chunk.table) + len(chunk.malformed)
            self.malformed.append([_rejected_row(m.source_row, m.reason, "", "", m.raw) for m in chunk.malformed])
            if self._limit_reached(0):  # nothing more to clean
                self.beyond_limit += len(chunk.table)
                yield _Rows([], [], [], chunk.from_cp1252, self.settings)
            elif chunk.table.empty:
                yield _Rows([], [], [], chunk.from_cp1252, self.settings)
            else:
                text, label = self.columns
                rows = chunk.table.index.tolist(), chunk.table[text].tolist(), chunk.table[label].tolist()
                yield _Rows(*rows, chunk.from_cp1252, self.settings)

    def _sheet_has_columns(self, chunk: Chunk) -> bool:
        """Whether an XLSX sheet's rows are read: it has the text and label columns, the first such sheet's."""
        where = f"{self.name} sheet {chunk.sheet!r}"
        try:
            columns = cv_columns(list(chunk.table.columns), self.settings, where)
        except InputError:
            if not chunk.table.empty and chunk.sheet not in self.sheets:
                self.sheets[chunk.sheet] = -1
            return False
        if self.columns is not None and columns != self.columns:
            raise InputError(f"{where}: columns {columns} differ from the first sheet's {self.columns}")
        self.sheets[chunk.sheet] = self.sheets.get(chunk.sheet, 0) + len(chunk.table) + len(chunk.malformed)
        return True

    def _limit_reached(self, pending: int) -> bool:
        return self.settings.limit is not None and self.kept.count + pending >= self.settings.limit

    def _settle(self, source_rows: list[int], outcomes: list[_Rejection | _Cleaned]) -> None:
        """One chunk's cleaned rows into the kept or the rejected table (duplicates are rejected), or beyond --limit."""
        text_column, label_column = self.columns
        kept, rejected = [], self.malformed.popleft()
        for source_row, outcome in zip(source_rows, outcomes):
            if self._limit_reached(len(kept)):
                self.beyond_limit += 1
            elif isinstance(outcome, _Rejection):
                column = label_column if outcome.in_label else text_column
                rejected.append(_rejected_row(source_row, outcome.reason, column, outcome.raw_label, outcome.raw_text))
            elif outcome.text_hash in self.seen:
                first_row, first_label = self.seen[outcome.text_hash]
                self.duplicates += 1
                conflict = (
                    "" if same_label(first_label, outcome.label) else f" with a different label ({first_label!r} kept)"
                )
                reason = f"duplicate of row {first_row}{conflict}"
                rejected.append(_rejected_row(source_row, reason, text_column, outcome.raw_label, outcome.raw_text))
            else:
                self.seen[outcome.text_hash] = (int(source_row), outcome.label)
                self.repaired += outcome.repaired
                kept.append(_kept_row(source_row, outcome))
        self.kept.add(kept)
        self.rejected.add(rejected)


def _rejected_row(source_row: int, reason: str, column: str, raw_category: str, raw_text: str) -> dict:
    return {
        "source_row": int(source_row),
        "reason": reason,
        "column": column,
        "raw_category": raw_category,
        "raw_text": raw_text[:RAW_KEPT],
    }


def _kept_row(source_row: int, cleaned: _Cleaned) -> dict:
    return {
        "cv_id": cv_id(cleaned.text_hash),
        "text_hash": cleaned.text_hash,
        "source_row": int(source_row),
        "category": cleaned.label,
        "text": cleaned.text,
    }


def _cleaned_rows(rows: _Rows) -> tuple[list[int], list[_Rejection | _Cleaned]]:
    """(source rows, one outcome per row) of a chunk's rows; pure, so that it can run in a worker process."""
    outcomes = []
    for raw_text, raw_label in zip(rows.texts, rows.labels):
        outcomes.append(_outcome(raw_text, raw_label, rows.from_cp1252, rows.settings))
    return rows.source_rows, outcomes


def _outcome(raw_text, raw_label, from_cp1252: bool, settings: IngestSettings) -> _Rejection | _Cleaned:
    """What becomes of one row: the reasons are checked in the order docs/bad-input.md gives them."""
    label = "" if is_missing(raw_label) else _text_of(raw_label).strip()
    kept_label = "" if is_missing(raw_label) else _text_of(raw_label)
    kept_text = "" if is_missing(raw_text) else _text_of(raw_text)[:RAW_KEPT]
    problem = raw_text_problem(raw_text, settings)
    if problem and not problem.startswith("text longer"):  # an unusable cell is named before a missing label
        return _Rejection(problem, False, kept_label, kept_text)
    if label == "":
        return _Rejection("missing label", True, kept_label, kept_text)
    if problem:
        return _Rejection(problem, False, kept_label, kept_text)
    text = clean_text(raw_text, settings)
    problem = clean_text_problem(text, settings)
    if problem:
        return _Rejection(problem, False, kept_label, kept_text)
    repaired = (text_repair.may_hold_mojibake(raw_text) and ftfy.fix_encoding(raw_text) != raw_text) or (
        from_cp1252 and not raw_text.isascii()
    )
    return _Cleaned(text, text_hash(text), label, bool(repaired), kept_label, kept_text)


def _text_of(value) -> str:
    """str(value), also for a value nested too deeply to be written out (a list inside a list ... from JSON)."""
    try:
        return str(value)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"
