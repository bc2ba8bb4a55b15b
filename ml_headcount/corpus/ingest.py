"""Read CV tables, clean their text, deduplicate and validate them.

Every input row ends in exactly one place: the clean table (one row per
distinct CV), the rejected table (with a reason, its source row and raw value;
duplicates included), or the count of rows beyond `--limit`:
`input_rows = cvs + rejected + duplicates + beyond_limit`, asserted on every
ingestion. Nothing is dropped silently. Files are read in chunks of
`ingest.chunk_rows` rows, so memory follows the chunk size and the CVs kept,
not the file size. docs/bad-input.md lists what is read, rejected or refused.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import hashlib
import html
import io
import json
import re
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import fsspec
import ftfy
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import SecretStr

from ml_headcount.config import IngestSettings
from ml_headcount.corpus import text_repair
from ml_headcount.errors import InputError, UserError
from ml_headcount.io import parallel

CV_COLUMNS = ["cv_id", "text_hash", "source_row", "category", "text"]
REJECTED_COLUMNS = ["source_row", "reason", "column", "raw_category", "raw_text"]

_BINARY_LABELS = {
    "1": "1",
    "0": "0",
    "1.0": "1",
    "0.0": "0",
    "yes": "1",
    "no": "0",
    "y": "1",
    "n": "0",
    "true": "1",
    "false": "0",
}
_TAG = re.compile(r"<[^>]{0,200}>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# a 1-2 digit number not touching a word character or a dot; written to start with \d so re scans for digits
_SHORT_NUMBER = re.compile(r"\d(?<=(?<![\w.])\d)\d?(?![\w.])")
_LETTER = re.compile(r"[^\W\d_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SAMPLE_BYTES = 1 << 16  # enough to see the header, the delimiter and the encoding
_RAW_KEPT = 1000  # characters of a raw value kept in the rejected table
_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SUFFIX_KINDS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class _Malformed(ValueError):
    """A parser's complaint about the bytes of a file (never storage, memory or a bug)."""


# what a parser raises on bad bytes; anything else (MemoryError, storage faults, bugs) is not the file's fault
_PARSER_ERRORS = (_Malformed, UnicodeError, csv.Error, zipfile.BadZipFile, zlib.error, EOFError)


CV_SCHEMA = pa.schema(
    [
        ("cv_id", pa.string()),
        ("text_hash", pa.string()),
        ("source_row", pa.int64()),
        ("category", pa.string()),
        ("text", pa.string()),
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("column", pa.string()),
        ("raw_category", pa.string()),
        ("raw_text", pa.string()),
    ]
)


class InputChangedError(UserError):
    """The input file changed while it was being read (still being written?): nothing it yielded is used."""


class KeptCvs:
    """The CVs ingestion keeps, in input order: in memory, or (given `spill`, for inputs of any size) written batch
    by batch to that local Parquet file. Labels are normalised as they are read back: whether every label is a
    yes/no spelling (`normalise_labels`) is known only once the whole file has been read."""

    def __init__(self, spill: Path | None = None):
        self.spill = spill
        self.count = 0
        self._in_memory: list[pd.DataFrame] = []
        self._writer: pq.ParquetWriter | None = None
        self._label_counts: Counter[str] = Counter()
        self._label_map: dict[str, str] = {}

    def add(self, rows: list[dict]) -> None:
        if not rows:
            return
        batch = pd.DataFrame(rows, columns=CV_COLUMNS)
        self.count += len(batch)
        self._label_counts.update(batch["category"].value_counts().to_dict())
        if self.spill is None:
            self._in_memory.append(batch)
            return
        self._writer = self._writer or pq.ParquetWriter(self.spill, CV_SCHEMA)
        self._writer.write_table(pa.Table.from_pandas(batch, schema=CV_SCHEMA, preserve_index=False))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        raw = pd.Series(sorted(self._label_counts), dtype=object)
        self._label_map = dict(zip(raw, normalise_labels(raw)))

    @property
    def categories(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for label, n in self._label_counts.items():
            counts[self._label_map[label]] += n
        return dict(sorted(counts.items()))

    def batches(self) -> Iterator[pd.DataFrame]:
        """The kept CVs (columns CV_COLUMNS), labels normalised, in input order, a batch at a time."""
        if self.spill is None or self._writer is None:
            parts = self._in_memory
        else:
            file = pq.ParquetFile(self.spill)
            parts = (file.read_row_group(i).to_pandas() for i in range(file.num_row_groups))
        for part in parts:
            yield part.assign(category=part["category"].map(self._label_map))

    def table(self) -> pd.DataFrame:
        parts = list(self.batches())
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CV_COLUMNS)


class RejectedRows:
    """The rows ingestion did not keep (duplicates included), in source order, a chunk's rows at a time: in memory, or
    (given `spill`) written to that local Parquet file as they are found, as `KeptCvs` does with the kept ones, so
    that a file of a million duplicates costs a chunk of memory, not a million rows."""

    def __init__(self, spill: Path | None = None):
        self.spill = spill
        self.count = 0
        self.by_reason: Counter[str] = Counter()  # duplicates excluded
        self._in_memory: list[pd.DataFrame] = []
        self._writer: pq.ParquetWriter | None = None

    def add(self, rows: list[dict]) -> None:
        """One chunk's rejected rows (any order: sorted here by source row)."""
        if not rows:
            return
        batch = pd.DataFrame(rows, columns=REJECTED_COLUMNS).sort_values("source_row", kind="stable", ignore_index=True)
        self.count += len(batch)
        self.by_reason.update(key for key in map(_reason_kind, batch["reason"]) if key is not None)
        if self.spill is None:
            self._in_memory.append(batch)
            return
        self._writer = self._writer or pq.ParquetWriter(self.spill, REJECTED_SCHEMA)
        self._writer.write_table(pa.Table.from_pandas(batch, schema=REJECTED_SCHEMA, preserve_index=False))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def batches(self) -> Iterator[pd.DataFrame]:
        """The rejected rows (columns REJECTED_COLUMNS) in source order, a chunk at a time."""
        if self.spill is None or self._writer is None:
            yield from self._in_memory
            return
        file = pq.ParquetFile(self.spill)
        for i in range(file.num_row_groups):
            yield file.read_row_group(i).to_pandas()

    def table(self) -> pd.DataFrame:
        parts = list(self.batches())
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=REJECTED_COLUMNS)


def _reason_kind(reason: str) -> str | None:
    """What `rejected_by_reason` counts a reason as; None for a duplicate (counted apart)."""
    if reason.startswith("duplicate of row "):
        return None
    for prefix in ("invalid JSON",):
        if reason.startswith(prefix):
            return prefix
    if reason.startswith("row has ") and " fields" in reason:
        return reason.split(",", 1)[0]
    return reason


@dataclass
class IngestResult:
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
        accounted = self.kept.count + self.rejected_rows.count + self.beyond_limit  # rejected includes the duplicates
        assert accounted == self.input_rows, f"{self.input_rows} input rows but {accounted} accounted for"


@dataclass
class Chunk:
    """Rows of a file as parsed: a table indexed by 1-based source row, and rows that could not be parsed."""

    table: pd.DataFrame
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (source row, reason, raw value)
    sheet: str | None = None
    from_cp1252: bool = False


def redact_url(url: str) -> str:
    """The URL without user info (user:password@) or query and fragment (presigned signatures): safe to record and log."""
    parts = urlsplit(str(url))
    if len(parts.scheme) <= 1:  # a local path (or a Windows drive letter)
        return str(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def protect(url: str) -> str | SecretStr:
    """A URL to hand to a flow: as it is, or, when it carries credentials (user info, a presigned query), as a
    SecretStr, which Prefect records as '**********' (flow parameters are stored in its database)."""
    return SecretStr(url) if redact_url(url) != url else url


def reveal(url: str | SecretStr) -> str:
    """The URL itself, whether given as it is or `protect`ed."""
    return url.get_secret_value() if isinstance(url, SecretStr) else str(url)


def clean_text(raw: str, settings: IngestSettings) -> str:
    """Repair encodings, strip HTML, URLs and control characters, apply the study's normalisation."""
    text = text_repair.repair(raw)  # = ftfy.fix_text(raw), fast where ftfy would only uncurl quotes
    text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "://" in text or "www." in text.lower():  # every URL match holds one of them
        text = _URL.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    if settings.lowercase:
        text = text.lower()
    if settings.drop_short_numbers:
        text = _SHORT_NUMBER.sub(" ", text)
    return " ".join(text.split())  # str.split's whitespace is re's \s: runs become one space, ends stripped


def raw_text_problem(raw_text, settings: IngestSettings) -> str | None:
    """Why a raw cell cannot be a CV text, or None: one rule for runs and for `apply`."""
    if _is_missing(raw_text) or (isinstance(raw_text, str) and not raw_text.strip()):
        return "empty text"
    if not isinstance(raw_text, str):
        return f"non-text value ({type(raw_text).__name__})"
    if len(raw_text) > settings.max_text_chars:
        return f"text longer than {settings.max_text_chars} characters (ingest.max_text_chars)"
    return None


def clean_text_problem(text: str, settings: IngestSettings) -> str | None:
    """Why a cleaned text cannot be used, or None."""
    if not _LETTER.search(text):
        return "no letters after cleaning (non-text)"
    if len(text) < settings.min_text_chars:
        return f"text shorter than {settings.min_text_chars} characters after cleaning"
    return None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_column(columns: list[str], override: str | None, aliases: list[str], what: str, url: str) -> str:
    if override is not None:
        if override not in columns:
            raise InputError(f"{url}: configured {what} column {override!r} not found; columns found: {columns}")
        return override
    by_lower = {str(c).strip().lower(): c for c in columns}
    for alias in aliases:
        if alias.lower() in by_lower:
            return by_lower[alias.lower()]
    raise InputError(
        f"{url}: no {what} column found; columns found: {columns}; "
        f"expected one of {aliases} or set ingest.{what}_column"
    )


def normalise_labels(raw: pd.Series) -> pd.Series:
    """0/1, yes/no, true/false become "1"/"0"; any other strings are categories as given."""
    as_text = raw.map(lambda v: "" if _is_missing(v) else str(v).strip())
    present = set(as_text[as_text != ""].str.lower())
    if present and present <= set(_BINARY_LABELS):
        return as_text.map(lambda v: _BINARY_LABELS.get(v.lower(), ""))
    return as_text


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
    name = redact_url(url)
    rejected_spill = None if spill is None else spill.with_name(f"{spill.stem}.rejected.parquet")
    with _opened(url, name, storage_options) as handle:
        digest = stream_sha256(handle)
        hashed = handle.tell()
        handle.seek(0)
        try:
            result = _ingest_chunks(
                _chunks(handle, url, name, settings),
                name,
                settings,
                digest,
                KeptCvs(spill),
                workers,
                RejectedRows(rejected_spill),
            )
        except _PARSER_ERRORS as error:
            raise InputError(f"{name}: cannot be read: {error}") from error
    _check_unchanged(url, storage_options, hashed, name)
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


def input_sha256(url: str, storage_options: dict | None = None) -> str:
    """The sha256 of a file's bytes (what ingestion records as `input_sha256`)."""
    name = redact_url(url)
    with _opened(url, name, storage_options) as handle:
        return stream_sha256(handle)


def table_chunks(url: str, settings: IngestSettings, storage_options: dict | None = None) -> Iterator[Chunk]:
    """The file's rows chunk by chunk, as ingestion reads them (every format, encoding and compression it reads):
    each chunk's table is indexed by 1-based source row, and rows that could not be parsed are its `malformed`."""
    name = redact_url(url)
    with _opened(url, name, storage_options) as handle:
        try:
            yield from _chunks(handle, url, name, settings)
        except _PARSER_ERRORS as error:
            raise InputError(f"{name}: cannot be read: {error}") from error


def read_table(
    url: str, storage_options: dict | None = None, settings: IngestSettings = IngestSettings()
) -> tuple[pd.DataFrame, str]:
    """A whole table (any format ingest reads; every XLSX sheet) and the file's sha256, for tables that are not CVs.

    A row that cannot be parsed fails the whole file here: such tables have no rejected-rows output."""
    name = redact_url(url)
    with _opened(url, name, storage_options) as handle:
        digest = stream_sha256(handle)
        handle.seek(0)
        try:
            chunks = list(_chunks(handle, url, name, settings))
        except _PARSER_ERRORS as error:
            raise InputError(f"{name}: cannot be read: {error}") from error
    for chunk in chunks:
        for source_row, reason, _ in chunk.malformed[:1]:
            raise InputError(f"{name}: row {source_row}: {reason}")
    tables = [c.table for c in chunks if len(c.table.columns)]
    if not tables:
        raise InputError(f"{name}: is empty (no header and no rows)")
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0].reset_index(drop=True), digest


def ingest_table(table: pd.DataFrame, url: str, settings: IngestSettings, input_sha256: str = "") -> IngestResult:
    """An in-memory table, its rows numbered from 1; any category count."""
    table = table.copy()
    table.columns = [str(c) for c in table.columns]
    table.index = pd.RangeIndex(1, len(table) + 1)
    result = _ingest_chunks([Chunk(table)], redact_url(url), settings, input_sha256, KeptCvs())
    result.check_accounting()
    return result


def _ingest_chunks(
    chunks: Iterable[Chunk],
    name: str,
    settings: IngestSettings,
    input_sha256: str,
    kept_cvs: KeptCvs,
    workers: int = 1,
    rejected_rows: RejectedRows | None = None,
) -> IngestResult:
    rejected_rows = rejected_rows or RejectedRows()
    seen: dict[str, tuple[int, str]] = {}
    # each chunk's rows that could not be parsed, until its cleaned rows come back (in order: one entry per batch)
    malformed_of_chunk: deque[list[dict]] = deque()
    input_rows = repaired = duplicates = beyond_limit = 0
    columns: tuple[str, str] | None = None
    sheets: dict[str, int] = {}
    encoding = ""

    def row_batches() -> Iterator[tuple]:
        """Each chunk's rows to clean: (source rows, texts, labels, from cp1252, settings); sheets, columns and rows
        that could not be parsed are settled here, in order."""
        nonlocal columns, encoding, input_rows, beyond_limit
        for chunk in chunks:
            encoding = encoding or ("cp1252" if chunk.from_cp1252 else "")
            if chunk.sheet is not None:
                try:
                    sheet_columns = _text_and_label(
                        list(chunk.table.columns), settings, f"{name} sheet {chunk.sheet!r}"
                    )
                except InputError:
                    if not chunk.table.empty and chunk.sheet not in sheets:
                        sheets[chunk.sheet] = -1
                    continue
                if columns is not None and sheet_columns != columns:
                    raise InputError(
                        f"{name} sheet {chunk.sheet!r}: columns {sheet_columns} differ from the first sheet's {columns}"
                    )
                sheets[chunk.sheet] = sheets.get(chunk.sheet, 0) + len(chunk.table) + len(chunk.malformed)
            columns = columns or _text_and_label(list(chunk.table.columns), settings, name)
            input_rows += len(chunk.table) + len(chunk.malformed)
            malformed_of_chunk.append(
                [
                    {
                        "source_row": source_row,
                        "reason": reason,
                        "column": "",
                        "raw_category": "",
                        "raw_text": raw[:_RAW_KEPT],
                    }
                    for source_row, reason, raw in chunk.malformed
                ]
            )
            if settings.limit is not None and kept_cvs.count >= settings.limit:  # nothing more to clean
                beyond_limit += len(chunk.table)
                yield [], [], [], chunk.from_cp1252, settings
            elif chunk.table.empty:
                yield [], [], [], chunk.from_cp1252, settings
            else:
                text_column, label_column = columns
                yield (
                    chunk.table.index.tolist(),
                    chunk.table[text_column].tolist(),
                    chunk.table[label_column].tolist(),
                    chunk.from_cp1252,
                    settings,
                )

    for source_rows, outcomes in parallel.ordered_map(_cleaned_rows, row_batches(), workers):
        text_column, label_column = columns
        kept, rejected = [], malformed_of_chunk.popleft()
        for source_row, outcome in zip(source_rows, outcomes):
            if settings.limit is not None and kept_cvs.count + len(kept) >= settings.limit:
                beyond_limit += 1
                continue
            if outcome[0] == "reject":
                _, reason, in_label, raw_label, raw_text = outcome
                rejected.append(
                    {
                        "source_row": int(source_row),
                        "reason": reason,
                        "column": label_column if in_label else text_column,
                        "raw_category": raw_label,
                        "raw_text": raw_text,
                    }
                )
                continue
            _, text, digest, label, was_repaired, raw_label, raw_text = outcome
            if digest in seen:
                first_row, first_label = seen[digest]
                duplicates += 1
                same = _BINARY_LABELS.get(first_label.lower(), first_label) == _BINARY_LABELS.get(label.lower(), label)
                conflict = "" if same else f" with a different label ({first_label!r} kept)"
                rejected.append(
                    {
                        "source_row": int(source_row),
                        "reason": f"duplicate of row {first_row}{conflict}",
                        "column": text_column,
                        "raw_category": raw_label,
                        "raw_text": raw_text,
                    }
                )
                continue
            seen[digest] = (int(source_row), label)
            repaired += was_repaired
            kept.append(
                {
                    "cv_id": digest[:16],
                    "text_hash": digest,
                    "source_row": int(source_row),
                    "category": label,
                    "text": text,
                }
            )
        kept_cvs.add(kept)
        rejected_rows.add(rejected)
    kept_cvs.close()
    rejected_rows.close()

    if columns is None:
        if sheets:
            raise InputError(f"{name}: no sheet has a text and a label column (sheets: {list(sheets)})")
        raise InputError(f"{name}: is empty (no header and no rows)")
    return IngestResult(
        kept=kept_cvs,
        rejected_rows=rejected_rows,
        input_rows=input_rows,
        input_sha256=input_sha256,
        limit=settings.limit,
        text_column=columns[0],
        label_column=columns[1],
        repaired_encoding=int(repaired),
        duplicates=duplicates,
        rejected_by_reason=dict(rejected_rows.by_reason.most_common()),
        beyond_limit=beyond_limit,
        encoding=encoding,
        sheets=sheets,
    )


def _cleaned_rows(batch: tuple) -> tuple[list, list[tuple]]:
    """(source rows, one outcome per row) of a chunk's rows; pure, so that it can run in a worker process.

    An outcome is ("reject", reason, whether the label is at fault, raw label, raw text kept) or
    ("keep", clean text, its sha256, label, whether its encoding was repaired, raw label, raw text kept).
    """
    source_rows, raw_texts, raw_labels, from_cp1252, settings = batch
    outcomes = []
    for raw_text, raw_label in zip(raw_texts, raw_labels):
        label = "" if _is_missing(raw_label) else _text_of(raw_label).strip()
        kept_label = "" if _is_missing(raw_label) else _text_of(raw_label)
        kept_text = "" if _is_missing(raw_text) else _text_of(raw_text)[:_RAW_KEPT]
        problem = raw_text_problem(raw_text, settings)
        if problem and not problem.startswith("text longer"):  # an unusable cell is named before a missing label
            outcomes.append(("reject", problem, False, kept_label, kept_text))
            continue
        if label == "":
            outcomes.append(("reject", "missing label", True, kept_label, kept_text))
            continue
        if problem:
            outcomes.append(("reject", problem, False, kept_label, kept_text))
            continue
        text = clean_text(raw_text, settings)
        problem = clean_text_problem(text, settings)
        if problem:
            outcomes.append(("reject", problem, False, kept_label, kept_text))
            continue
        was_repaired = (text_repair.may_hold_mojibake(raw_text) and ftfy.fix_encoding(raw_text) != raw_text) or (
            from_cp1252 and not raw_text.isascii()
        )
        outcomes.append(("keep", text, text_hash(text), label, bool(was_repaired), kept_label, kept_text))
    return source_rows, outcomes


def _text_of(value) -> str:
    """str(value), also for a value nested too deeply to be written out (a list inside a list ... from JSON)."""
    try:
        return str(value)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"


def _text_and_label(columns: list[str], settings: IngestSettings, name: str) -> tuple[str, str]:
    return (
        find_column(columns, settings.text_column, settings.text_aliases, "text", name),
        find_column(columns, settings.label_column, settings.label_aliases, "label", name),
    )


# --- reading: one file, any everyday format, in chunks ---------------------------------------------------------------


@contextmanager
def _opened(url: str, name: str, storage_options: dict | None) -> Iterator[io.IOBase]:
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    try:
        if fs.isdir(path):
            raise InputError(f"{name}: is a directory; give one file (the cv-ingestion flow reads a folder of files)")
        with fs.open(path, "rb") as handle:
            yield handle
    except FileNotFoundError as exc:
        raise InputError(f"{name}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory; give one file") from exc
    except PermissionError as exc:
        raise InputError(
            f"{name}: access denied ({_redacted(exc, url)}); check the credentials for this location"
        ) from None
    except UserError:
        raise
    except Exception as exc:
        status = getattr(exc, "status", None)  # an HTTP(S) URL's answer (aiohttp's ClientResponseError)
        if isinstance(status, int) and 400 <= status < 500:
            raise InputError(
                f"{name}: the server answered HTTP {status}; check the URL (a presigned one may have "
                "expired) and the credentials"
            ) from None
        if name != url and url in str(exc):  # never let a credential ride out on a traceback
            raise RuntimeError(f"{name}: {type(exc).__name__}: {_redacted(exc, url)}") from None
        raise


def _redacted(error: BaseException, url: str) -> str:
    return str(error).replace(url, redact_url(url))


def stream_sha256(handle) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _chunks(handle, url: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The file's rows, whatever the container (gzip, bz2, zip) and format."""
    path = PurePosixPath(urlsplit(url).path if "://" in url else url)
    magic = handle.read(8)
    handle.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        yield from _format_chunks(
            io.BufferedReader(_Decompressing(gzip.GzipFile(fileobj=handle))), path.stem, name, settings
        )
    elif magic.startswith(b"BZh"):
        yield from _format_chunks(io.BufferedReader(_Decompressing(bz2.BZ2File(handle))), path.stem, name, settings)
    elif magic.startswith(b"PK\x03\x04") and _kind_by_name(path.name) != "xlsx":
        archive = zipfile.ZipFile(handle)
        if "xl/workbook.xml" in archive.namelist():
            yield from _xlsx_chunks(handle, name, settings)
            return
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not PurePosixPath(m.filename).name.startswith(".")
            and not m.filename.startswith("__MACOSX/")
        ]
        if len(members) != 1:
            raise InputError(
                f"{name}: a zip archive must hold exactly one table; it holds {[m.filename for m in members]}"
            )
        with archive.open(members[0]) as member:
            yield from _format_chunks(io.BufferedReader(_Decompressing(member)), members[0].filename, name, settings)
    else:
        yield from _format_chunks(handle, path.name, name, settings)


def _format_chunks(stream, inner_name: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    head = stream.read(_SAMPLE_BYTES)
    if not head:
        raise InputError(f"{name}: is empty (no header and no rows)")
    if stream.seekable():
        stream.seek(0)
    else:
        stream = io.BufferedReader(_Rejoined(head, stream), buffer_size=1 << 20)
    kind = _kind_by_name(inner_name) or _kind_by_content(head)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(f"{name}: is an Excel 97-2003 (.xls) or other OLE file; save it as .xlsx or CSV")
    if kind == "parquet" or head.startswith(b"PAR1"):
        yield from _parquet_chunks(
            stream if stream.seekable() else _read_whole(stream, "Parquet", name, settings), name, settings
        )
        return
    if kind == "xlsx" or head.startswith(b"PK\x03\x04"):
        yield from _xlsx_chunks(
            stream if stream.seekable() else _read_whole(stream, "XLSX", name, settings), name, settings
        )
        return
    encoding = _encoding(head, name)
    # a UTF-8 file with cp1252 bytes further on (two exports pasted together) keeps those characters too
    errors = _CP1252_FALLBACK if encoding == "utf-8" else "replace"
    text = io.TextIOWrapper(stream, encoding=encoding, errors=errors, newline="")
    from_cp1252 = encoding == "cp1252"
    if kind in ("json", "jsonl"):
        first = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")[:1]
        chunks = _json_array_chunks(text, name, settings) if first == "[" else _jsonl_chunks(text, name, settings)
    else:
        chunks = _csv_chunks(
            text, "\t" if kind == "tsv" else _delimiter(head.decode(encoding, errors="replace")), name, settings
        )
    for chunk in chunks:
        chunk.from_cp1252 = from_cp1252
        yield chunk


def _read_whole(stream, what: str, name: str, settings: IngestSettings) -> io.BytesIO:
    """A compressed Parquet or XLSX, decompressed into memory (both need to seek), at most ingest.max_whole_file_bytes."""
    cap = settings.max_whole_file_bytes
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise InputError(
            f"{name}: the {what} inside decompresses to more than {cap:,} bytes (ingest.max_whole_file_bytes), "
            f"which would be read into memory whole; give the {what} file uncompressed, or raise the setting"
        )
    return io.BytesIO(data)


def _check_columns(count: int, name: str, settings: IngestSettings, where: str = "the header has") -> None:
    if count > settings.max_columns:
        raise InputError(
            f"{name}: {where} {count:,} columns, over ingest.max_columns ({settings.max_columns:,}); "
            "every row is padded to that width in memory"
        )


def _decode_as_cp1252(error: UnicodeDecodeError) -> tuple[str, int]:
    return error.object[error.start : error.end].decode("cp1252", errors="replace"), error.end


_CP1252_FALLBACK = "ml-headcount-cp1252-fallback"
codecs.register_error(_CP1252_FALLBACK, _decode_as_cp1252)


def _kind_by_name(name: str) -> str:
    return _SUFFIX_KINDS.get(PurePosixPath(name).suffix.lower(), "")


def _kind_by_content(head: bytes) -> str:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if start in (b"{", b"[") else "csv"


def _encoding(head: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252 (Windows' 'ANSI', which Excel writes)."""
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut last character is fine
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    sample = head.decode(encoding, errors="replace")
    controls = len(_CONTROL.findall(sample)) + sample.count("\ufffd")
    if controls > 0.05 * len(sample):
        raise InputError(f"{name}: binary content, not a CSV, TSV, JSON, JSONL, XLSX or Parquet table")
    return encoding


def _delimiter(sample: str) -> str:
    """The delimiter the header line uses most: a TSV named .csv is still a TSV."""
    header = sample.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _csv_chunks(text, delimiter: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    if csv.field_size_limit() < 4 * settings.max_text_chars:  # a longer field is read, then rejected as too long
        csv.field_size_limit(4 * settings.max_text_chars)
    record_lines: list[str] = []  # the lines of the record being parsed: what is skipped when one is too large

    def lines() -> Iterator[str]:
        for line in text:
            record_lines.append(line)
            yield line

    source = lines()
    reader = csv.reader(source, delimiter=delimiter)
    header = None
    rows, index, malformed = [], [], []
    source_row = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if header is None or "field larger than field limit" not in str(error):
                raise InputError(f"{name}: row {source_row + 1}: {error}") from error
            # one huge cell costs its row, as a text over ingest.max_text_chars does: skip to the end of the record
            source_row += 1
            raw = "".join(record_lines)[:_RAW_KEPT]
            _skip_rest_of_record(record_lines, source, delimiter)
            malformed.append(
                (
                    source_row,
                    f"a field longer than {csv.field_size_limit():,} characters (4 x ingest.max_text_chars)",
                    raw,
                )
            )
            fields = None
        record_lines.clear()
        if fields is None:
            pass
        elif not fields or fields == [""]:
            continue  # blank lines are not rows
        elif header is None:
            _check_columns(len(fields), name, settings)
            header = _unique([f.strip().lstrip("\ufeff") or f"column_{i + 1}" for i, f in enumerate(fields)])
            continue
        else:
            source_row += 1
            while len(fields) > len(header) and fields[-1] == "":
                fields.pop()  # trailing delimiters
            if len(fields) > len(header):
                malformed.append(
                    (
                        source_row,
                        f"row has {len(fields)} fields, the header {len(header)} "
                        f"(an unquoted {_DELIMITERS[delimiter]} in a value?)",
                        delimiter.join(fields[:_RAW_KEPT]),
                    )
                )
            else:
                rows.append(fields + [None] * (len(header) - len(fields)))
                index.append(source_row)
        if len(rows) + len(malformed) >= settings.chunk_rows:
            yield Chunk(pd.DataFrame(rows, columns=header, index=index, dtype=object), malformed)
            rows, index, malformed = [], [], []
    if header is not None:
        yield Chunk(pd.DataFrame(rows, columns=header, index=index, dtype=object), malformed)


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


def _jsonl_chunks(text, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    records, index, malformed = [], [], []
    columns: set[str] = set()
    source_row = 0
    for line in text:
        if not line.strip():
            continue
        source_row += 1
        problem = None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problem = f"invalid JSON: {error}"
        except RecursionError:
            problem = "invalid JSON: nested too deeply"
        else:
            if not isinstance(record, dict):
                problem = f"invalid JSON line: a {type(record).__name__}, not an object"
            elif len(record) > settings.max_columns:
                problem = f"a record with more than {settings.max_columns:,} fields (ingest.max_columns)"
        if problem:
            malformed.append((source_row, problem, line.rstrip("\r\n")[:_RAW_KEPT]))
        else:
            records.append(record)
            index.append(source_row)
            columns.update(map(str, record))
            _check_columns(len(columns), name, settings, "its records together have")
        if len(records) + len(malformed) >= settings.chunk_rows:
            yield Chunk(_records_table(records, index), malformed)
            records, index, malformed = [], [], []
    yield Chunk(_records_table(records, index), malformed)


def _json_array_chunks(text, name: str, settings: IngestSettings) -> Iterator[Chunk]:
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
                _check_columns(len(columns), name, settings, "its records together have")
            elif isinstance(item, dict):
                malformed.append(
                    (
                        source_row,
                        f"a record with more than {settings.max_columns:,} fields (ingest.max_columns)",
                        _json_text(item),
                    )
                )
            else:
                malformed.append((source_row, f"array item is a {type(item).__name__}, not a record", _json_text(item)))
        yield Chunk(_records_table(records, index), malformed)


def _json_text(value) -> str:
    try:
        return json.dumps(value)[:_RAW_KEPT]
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"


def _records_table(records: list[dict], index: list[int]) -> pd.DataFrame:
    table = pd.DataFrame(records, index=index, dtype=object)
    table.columns = [str(c) for c in table.columns]
    return table


def _parquet_chunks(stream, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(stream)
        _check_columns(len(parquet.schema_arrow.names), name, settings, "the table has")
        start = 1
        for batch in parquet.iter_batches(batch_size=settings.chunk_rows):
            table = batch.to_pandas()
            table.index = pd.RangeIndex(start, start + len(table))
            table.columns = [str(c) for c in table.columns]
            start += len(table)
            yield Chunk(table)
        if start == 1:
            yield Chunk(pd.DataFrame(columns=[str(c) for c in parquet.schema_arrow.names]))
    except (pa.ArrowInvalid, OSError) as error:
        # corrupt data: ArrowInvalid, or a bare OSError without errno (thrift); storage faults carry an errno or a subclass
        if not isinstance(error, pa.ArrowInvalid) and (type(error) is not OSError or error.errno is not None):
            raise
        raise InputError(f"{name}: cannot be read as parquet: {error}") from error


def _xlsx_chunks(handle, name: str, settings: IngestSettings) -> Iterator[Chunk]:
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
            _check_columns(len(header), f"{name} sheet {sheet.title!r}", settings)
            columns = _unique([str(v).strip() if v is not None else f"column_{i + 1}" for i, v in enumerate(header)])
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


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        out.append(n if n not in seen else f"{n}.{seen[n]}")
        seen[n] = seen.get(n, 0) + 1
    return out


class _Rejoined(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the format), made whole again."""

    def __init__(self, head: bytes, rest):
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Decompressing(io.RawIOBase):
    """A decompressing stream whose corrupt-data errors are parser errors, not storage errors."""

    def __init__(self, inner):
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._inner.readinto(buffer)
        except (gzip.BadGzipFile, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise _Malformed(f"corrupt compressed data ({error})") from error
        except OSError as error:
            if "Invalid data stream" in str(error):  # bz2
                raise _Malformed(f"corrupt compressed data ({error})") from error
            raise


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
