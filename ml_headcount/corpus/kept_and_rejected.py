"""The two tables every input row ends in: the kept CVs and the rejected rows, in memory or spilled to Parquet.

Given a `spill` path, a table is written batch by batch to that local Parquet file as rows are found, so memory
follows the chunk size, not the file's: a file of a million duplicates costs a chunk of memory, not a million rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_headcount.corpus.cleaning import normalise_labels

CV_COLUMNS = ["cv_id", "text_hash", "source_row", "category", "text"]
REJECTED_COLUMNS = ["source_row", "reason", "column", "raw_category", "raw_text"]


def _schema(columns: list[str]) -> pa.Schema:
    """Every column is text but the source row, a 1-based row number."""
    return pa.schema([(c, pa.int64() if c == "source_row" else pa.string()) for c in columns])


CV_SCHEMA = _schema(CV_COLUMNS)
REJECTED_SCHEMA = _schema(REJECTED_COLUMNS)


class _RowTable:
    """Rows of one schema, appended a batch at a time and read back in the order they were added."""

    schema: pa.Schema

    def __init__(self, spill: Path | None = None):
        self.spill = spill
        self.count = 0
        self._in_memory: list[pd.DataFrame] = []
        self._writer: pq.ParquetWriter | None = None

    def _append(self, batch: pd.DataFrame) -> None:
        self.count += len(batch)
        if self.spill is None:
            self._in_memory.append(batch)
            return
        self._writer = self._writer or pq.ParquetWriter(self.spill, self.schema)
        self._writer.write_table(pa.Table.from_pandas(batch, schema=self.schema, preserve_index=False))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def batches(self) -> Iterator[pd.DataFrame]:
        """The rows, in the order they were added, a batch at a time."""
        if self.spill is None or self._writer is None:
            yield from self._in_memory
            return
        file = pq.ParquetFile(self.spill)
        for i in range(file.num_row_groups):
            yield file.read_row_group(i).to_pandas()

    def table(self) -> pd.DataFrame:
        parts = list(self.batches())
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=self.schema.names)


class KeptCvs(_RowTable):
    """The CVs ingest keeps (columns CV_COLUMNS), in input order. Labels are normalised as they are read back:
    whether every label is a yes/no spelling (`normalise_labels`) is known only once the whole file has been read."""

    schema = CV_SCHEMA

    def __init__(self, spill: Path | None = None):
        super().__init__(spill)
        self._label_counts: Counter[str] = Counter()
        self._label_map: dict[str, str] = {}

    def add(self, rows: list[dict]) -> None:
        if rows:
            batch = pd.DataFrame(rows, columns=CV_COLUMNS)
            self._label_counts.update(batch["category"].value_counts().to_dict())
            self._append(batch)

    def close(self) -> None:
        super().close()
        raw = pd.Series(sorted(self._label_counts), dtype=object)
        self._label_map = dict(zip(raw, normalise_labels(raw)))

    @property
    def categories(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for label, n in self._label_counts.items():
            counts[self._label_map[label]] += n
        return dict(sorted(counts.items()))

    def batches(self) -> Iterator[pd.DataFrame]:
        for part in super().batches():
            yield part.assign(category=part["category"].map(self._label_map))


class RejectedRows(_RowTable):
    """The rows ingest did not keep (columns REJECTED_COLUMNS, duplicates included), in source order."""

    schema = REJECTED_SCHEMA

    def __init__(self, spill: Path | None = None):
        super().__init__(spill)
        self.by_reason: Counter[str] = Counter()  # duplicates excluded

    def add(self, rows: list[dict]) -> None:
        """One chunk's rejected rows (any order: sorted here by source row)."""
        if rows:
            batch = pd.DataFrame(rows, columns=REJECTED_COLUMNS).sort_values("source_row", kind="stable")
            self.by_reason.update(key for key in map(_reason_kind, batch["reason"]) if key is not None)
            self._append(batch.reset_index(drop=True))


def _reason_kind(reason: str) -> str | None:
    """What `rejected_by_reason` counts a reason as; None for a duplicate (counted apart)."""
    if reason.startswith("duplicate of row "):
        return None
    if reason.startswith("invalid JSON"):
        return "invalid JSON"
    if reason.startswith("row has ") and " fields" in reason:
        return reason.split(",", 1)[0]
    return reason
