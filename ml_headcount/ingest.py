"""Read CV tables, clean their text, deduplicate and validate them.

Every input row ends in exactly one place: the clean table (one row per
distinct CV) or the rejected table (with a reason). Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Iterator

import ftfy
import fsspec
import pandas as pd

from ml_headcount import text_repair
from ml_headcount.config import IngestSettings
from ml_headcount.errors import UserError

CV_COLUMNS = ["cv_id", "text_hash", "source_row", "category", "text"]
REJECTED_COLUMNS = ["source_row", "reason", "column", "raw_category", "raw_text"]

_BINARY_LABELS = {
    "1": "1", "0": "0", "1.0": "1", "0.0": "0",
    "yes": "1", "no": "0", "y": "1", "n": "0", "true": "1", "false": "0",
}
_TAG = re.compile(r"<[^>]{0,200}>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# a 1-2 digit number not touching a word character or a dot; written to start with \d so re scans for digits
_SHORT_NUMBER = re.compile(r"\d(?<=(?<![\w.])\d)\d?(?![\w.])")
_LETTER = re.compile(r"[^\W\d_]")


class InputError(UserError, ValueError):
    """Input that cannot be used at all; the message names the file (and row/column)."""


@dataclass
class IngestResult:
    cvs: pd.DataFrame
    rejected: pd.DataFrame
    input_rows: int
    input_sha256: str
    text_column: str
    label_column: str
    repaired_encoding: int
    duplicates: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    limit: int | None = None

    def summary(self) -> dict:
        return {
            "input_rows": self.input_rows,
            "input_sha256": self.input_sha256,
            "limit": self.limit,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "cvs": len(self.cvs),
            "duplicates": self.duplicates,
            "rejected": len(self.rejected) - self.duplicates,
            "rejected_by_reason": self.rejected_by_reason,
            "repaired_encoding": self.repaired_encoding,
            "categories": self.cvs["category"].value_counts().sort_index().to_dict(),
        }


def clean_text(raw: str, settings: IngestSettings) -> str:
    """Repair encodings, strip HTML and URLs, apply the study's normalisation."""
    text = text_repair.repair(raw)  # = ftfy.fix_text(raw), fast where ftfy would only uncurl quotes
    text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "://" in text or "www." in text.lower():  # every URL match holds one of them
        text = _URL.sub(" ", text)
    if settings.lowercase:
        text = text.lower()
    if settings.drop_short_numbers:
        text = _SHORT_NUMBER.sub(" ", text)
    return " ".join(text.split())  # str.split's whitespace is re's \s: runs become one space, ends stripped


def raw_text_problem(raw_text) -> str | None:
    """Why a raw cell cannot be a CV text, or None."""
    if _is_missing(raw_text) or (isinstance(raw_text, str) and not raw_text.strip()):
        return "empty text"
    if not isinstance(raw_text, str):
        return f"non-text value ({type(raw_text).__name__})"
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


def read_table(url: str, storage_options: dict | None = None) -> tuple[pd.DataFrame, str]:
    """Read CSV, TSV, XLSX, JSONL or Parquet by extension, else by content; also the file's sha256."""
    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise InputError(f"{url}: file not found") from exc
    except PermissionError as exc:
        raise InputError(f"{url}: access denied ({exc}); check the credentials for this location") from exc
    return _parse_table(url, data), hashlib.sha256(data).hexdigest()


def iter_table(url: str, chunk_rows: int, storage_options: dict | None = None) -> Iterator[pd.DataFrame]:
    """The table in chunks of up to `chunk_rows` rows, read as `read_table` reads it; XLSX is read whole."""
    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as handle:
            kind = _table_kind(url, handle.read(4096))
            handle.seek(0)
            if kind == "xlsx":
                yield _parse_table(url, handle.read())
                return
            try:
                if kind == "parquet":
                    import pyarrow.parquet as pq

                    chunks = (batch.to_pandas() for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows))
                elif kind == "jsonl":
                    chunks = pd.read_json(handle, lines=True, dtype=False, chunksize=chunk_rows)
                else:
                    chunks = pd.read_csv(handle, sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False,
                                         encoding_errors="replace", chunksize=chunk_rows)
                yield from chunks
            except Exception as exc:  # every reader raises its own type; the user needs the file name
                raise InputError(f"{url}: cannot be read as {kind}: {exc}") from exc
    except FileNotFoundError as exc:
        raise InputError(f"{url}: file not found") from exc
    except PermissionError as exc:
        raise InputError(f"{url}: access denied ({exc}); check the credentials for this location") from exc


def _parse_table(url: str, data: bytes) -> pd.DataFrame:
    kind = _table_kind(url, data)
    try:
        if kind == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        if kind == "xlsx":
            return pd.read_excel(io.BytesIO(data), dtype=object)
        if kind == "jsonl":
            return pd.read_json(io.BytesIO(data), lines=True, dtype=False)
        sep = "\t" if kind == "tsv" else ","
        return pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, encoding_errors="replace")
    except Exception as exc:  # every reader raises its own type; the user needs the file name
        raise InputError(f"{url}: cannot be read as {kind}: {exc}") from exc


def _table_kind(url: str, data: bytes) -> str:
    suffixes = [s.lower() for s in PurePosixPath(url.split("?")[0]).suffixes]
    by_suffix = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "xlsx", ".xls": "xlsx",
                 ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
    if suffixes and suffixes[-1] in by_suffix:
        return by_suffix[suffixes[-1]]
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:2] == b"PK":
        return "xlsx"
    if data.lstrip()[:1] == b"{":
        return "jsonl"
    first_line = data.split(b"\n", 1)[0]
    return "tsv" if first_line.count(b"\t") > first_line.count(b",") else "csv"


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


def ingest_table(table: pd.DataFrame, url: str, settings: IngestSettings, input_sha256: str = "") -> IngestResult:
    columns = [str(c) for c in table.columns]
    table.columns = columns
    text_column = find_column(columns, settings.text_column, settings.text_aliases, "text", url)
    label_column = find_column(columns, settings.label_column, settings.label_aliases, "label", url)
    labels = normalise_labels(table[label_column])

    kept, rejected, seen = [], [], {}
    repaired = duplicates = 0
    for position, (raw_text, raw_label, label) in enumerate(zip(table[text_column], table[label_column], labels)):
        source_row = position + 1  # 1-based data row, header excluded

        def reject(reason: str, column: str, duplicate_of: int | None = None) -> None:
            rejected.append({"source_row": source_row, "reason": reason, "column": column,
                             "raw_category": "" if _is_missing(raw_label) else str(raw_label),
                             "raw_text": "" if _is_missing(raw_text) else str(raw_text)})

        problem = raw_text_problem(raw_text)
        if problem:
            reject(problem, text_column)
            continue
        if label == "":
            reject("missing label", label_column)
            continue
        text = clean_text(raw_text, settings)
        problem = clean_text_problem(text, settings)
        if problem:
            reject(problem, text_column)
            continue
        digest = text_hash(text)
        if digest in seen:
            first_row, first_label = seen[digest]
            duplicates += 1
            conflict = "" if first_label == label else f" with a different label ({first_label!r} kept)"
            reject(f"duplicate of row {first_row}{conflict}", text_column)
            continue
        if settings.limit is not None and len(kept) >= settings.limit:
            break
        seen[digest] = (source_row, label)
        repaired += text_repair.may_hold_mojibake(raw_text) and ftfy.fix_encoding(raw_text) != raw_text
        kept.append({"cv_id": digest[:16], "text_hash": digest, "source_row": source_row,
                     "category": label, "text": text})

    cvs = pd.DataFrame(kept, columns=CV_COLUMNS)
    rejected_table = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
    reasons = rejected_table["reason"].str.replace(r"duplicate of row \d+.*", "duplicate", regex=True)
    return IngestResult(
        cvs=cvs,
        rejected=rejected_table,
        input_rows=len(table),
        input_sha256=input_sha256,
        limit=settings.limit,
        text_column=text_column,
        label_column=label_column,
        repaired_encoding=int(repaired),
        duplicates=duplicates,
        rejected_by_reason={k: int(v) for k, v in reasons[reasons != "duplicate"].value_counts().items()},
    )


def ingest(url: str, settings: IngestSettings, storage_options: dict | None = None) -> IngestResult:
    table, digest = read_table(url, storage_options)
    result = ingest_table(table, url, settings, digest)
    categories = sorted(result.cvs["category"].unique())
    if len(categories) < 2:
        raise InputError(
            f"{url}: column {result.label_column!r} yields {len(categories)} usable categories "
            f"({categories}) after cleaning; at least 2 are needed to find discriminative keywords"
        )
    return result


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
