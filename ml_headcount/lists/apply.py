"""Apply a finished run's keyword lists to any CV or profile table, chunk by chunk, in bounded memory.

Every input row gives one output row: `source_row` (1-based, header
excluded), `cv_id` (as a run would name the CV; empty when the row is not
usable), `status` (`ok`, or why the text cannot be used, as ingest says
it) and one 0/1 column per `<category>/<list>`. Texts are cleaned with the
run's ingest settings and matched with its extraction tokenisation
(`matching.KeywordMatcher`), so a CV matches here exactly when it matched in
the run; with `lists.matcher = phrase`, each list's query (queries.json) is
matched with phrase search, as a search tool runs it
(`phrase_matching.PhraseMatcher`). Duplicates are matched like any row: the
output follows the input.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pandas as pd

from ml_headcount.config import IngestSettings, ListSettings
from ml_headcount.corpus.cleaning import clean_text, clean_text_problem, cv_id, raw_text_problem, text_hash
from ml_headcount.errors import InputError
from ml_headcount.io.cell_escaping import escaped
from ml_headcount.io.local_files import atomic_path
from ml_headcount.io.storage import ArtifactStore, StorageError
from ml_headcount.io.tables import TEXT_COLUMN_OPTION, Chunk, find_column, table_chunks
from ml_headcount.io.urls import check_writable, redact_url
from ml_headcount.lists.run_lists import RunLists, WithClassifier
from ml_headcount.scoring.phrase_matching import PhraseMatcher

if TYPE_CHECKING:  # matching imports scikit-learn: seconds that resolving a run reference does not need
    from ml_headcount.scoring.matching import KeywordMatcher

OK = "ok"


def default_output(store: ArtifactStore, run_id: str, input_url: str) -> str:
    """Where matches go unless told: beside the run's storage, never inside the (immutable) run."""
    name = PurePosixPath(redact_url(input_url).rstrip("/")).name.split(".")[0] or "input"
    return store.location(f"filtered/{run_id}/{name}.matches.parquet")


def match_table(
    chunk: Chunk, text_column: str, run_lists: RunLists, matcher: KeywordMatcher | PhraseMatcher | WithClassifier
) -> pd.DataFrame:
    """One output row per input row of the chunk, rows that could not be parsed included, in source order."""
    status, cv_ids, texts, usable = [], [], [], []
    for position, raw in enumerate(chunk.table[text_column]):
        problem = raw_text_problem(raw, run_lists.ingest)
        text = "" if problem else clean_text(raw, run_lists.ingest)
        problem = problem or clean_text_problem(text, run_lists.ingest)
        status.append(problem or OK)
        cv_ids.append("" if problem else cv_id(text_hash(text)))
        if not problem:
            texts.append(text)
            usable.append(position)
    source_rows = chunk.table.index.to_numpy(dtype=np.int64)
    malformed = chunk.malformed
    matches = np.zeros((len(chunk.table) + len(malformed), len(matcher.names)), dtype=np.int8)
    matches[usable] = matcher.match(texts)
    table = pd.DataFrame(
        {
            "source_row": np.concatenate([source_rows, np.array([row for row, _, _ in malformed], dtype=np.int64)]),
            "cv_id": cv_ids + [""] * len(malformed),
            "status": status + [reason for _, reason, _ in malformed],
        }
    )
    table = pd.concat([table, pd.DataFrame(matches, columns=matcher.names)], axis=1)
    return table.sort_values("source_row", kind="stable", ignore_index=True) if malformed else table


def apply_run_lists(
    input_url: str,
    run_lists: RunLists,
    output_url: str,
    ingest_settings: IngestSettings,
    list_settings: ListSettings,
    input_options: dict | None = None,
    output_options: dict | None = None,
) -> dict:
    """Match every row of the input and write the output table; returns the summary (also written beside it).
    The input is read `lists.apply_chunk_rows` rows at a time and matched by `lists.matcher`; with
    `lists.text_classifier`, the run's TF-IDF classifier's columns come too, where it has one."""
    started = time.perf_counter()
    matcher = run_lists.matcher(list_settings.matcher, list_settings.text_classifier)
    rows, matched, statuses = 0, Counter(), Counter()
    with _table_writer(output_url, output_options or {}) as write:
        text_column = None
        reading = ingest_settings.model_copy(update={"chunk_rows": list_settings.apply_chunk_rows})
        for chunk in _first_rows(table_chunks(input_url, reading, input_options), ingest_settings.limit):
            chunk.table.columns = [str(c) for c in chunk.table.columns]
            text_column = text_column or find_column(
                list(chunk.table.columns),
                ingest_settings.text_column,
                ingest_settings.text_aliases,
                "text",
                redact_url(input_url),
                TEXT_COLUMN_OPTION,
            )
            table = match_table(chunk, text_column, run_lists, matcher)
            write(table)
            rows += len(table)
            matched.update({name: int(table[name].sum()) for name in matcher.names})
            statuses.update(table["status"].tolist())
        if text_column is None:
            raise InputError(f"{redact_url(input_url)}: no rows to match")
    seconds = time.perf_counter() - started
    summary = {
        "run_id": run_lists.run_id,
        "run": run_lists.location,
        "input": redact_url(input_url),
        "output": redact_url(output_url),
        "rows": rows,
        "limit": ingest_settings.limit,
        "matched": {name: matched[name] for name in matcher.names},
        "usable": statuses[OK],
        "not_usable": {reason: n for reason, n in statuses.items() if reason != OK},
        "list_sizes": {name: len(keywords) for name, keywords in run_lists.lists.items()},
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds, 1) if seconds else None,
    }
    _write_text(f"{output_url}.summary.json", json.dumps(summary, indent=2) + "\n", output_options or {})
    return summary


def _first_rows(chunks: Iterator[Chunk], limit: int | None) -> Iterator[Chunk]:
    """The chunks' rows up to source row `limit` (ingest.limit: `apply --limit`), every row when None; reading stops
    at the chunk that reaches it."""
    for chunk in chunks:
        if limit is None:
            yield chunk
            continue
        table = chunk.table[chunk.table.index <= limit]
        malformed = [m for m in chunk.malformed if m.source_row <= limit]
        yield Chunk(table, malformed, chunk.sheet, chunk.from_cp1252)
        if max([*chunk.table.index, *(m.source_row for m in chunk.malformed)], default=0) >= limit:
            return


def _kind(url: str) -> str:
    suffix = PurePosixPath(url.split("?")[0]).suffix.lower()
    kinds = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix not in kinds:
        raise InputError(f"{redact_url(url)}: output must end in .parquet, .csv or .jsonl")
    return kinds[suffix]


@contextmanager
def _table_writer(url: str, options: dict) -> Iterator[_ChunkWriter]:
    """A function that appends a chunk to the output; the output appears whole, or not at all when local."""
    check_writable(url, "--output")
    local = "://" not in url or url.startswith("file://")
    target = str(Path(url.removeprefix("file://")).expanduser()) if local else url
    if local and Path(target).is_dir():
        raise StorageError(
            f"{redact_url(url)}: is a directory; --output names the file the matches go to (.parquet, .csv or .jsonl)"
        )
    try:
        with atomic_path(target) if local else nullcontext(target) as path, fsspec.open(path, "wb", **options) as out:
            write = _ChunkWriter(out, _kind(url))
            yield write
            write.close()
    except (PermissionError, IsADirectoryError, NotADirectoryError) as error:
        # denied, or a directory in the way (also when the target became one before the rename)
        reason = error.strerror or type(error).__name__
        raise StorageError(f"{redact_url(url)}: cannot write the output ({reason})") from None


class _ChunkWriter:
    """Appends chunks of matches to an open binary file as Parquet, CSV (one header) or JSON Lines."""

    def __init__(self, handle, kind: str):
        self.handle, self.kind = handle, kind
        self._parquet = None
        self._first = True

    def __call__(self, table: pd.DataFrame) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            batch = pa.Table.from_pandas(table, preserve_index=False)
            self._parquet = self._parquet or pq.ParquetWriter(self.handle, batch.schema)
            self._parquet.write_table(batch)
        elif self.kind == "csv":
            self.handle.write(escaped(table).to_csv(index=False, header=self._first).encode("utf-8"))
        else:
            buffer = io.StringIO()
            table.to_json(buffer, orient="records", lines=True)
            self.handle.write(buffer.getvalue().encode("utf-8"))
        self._first = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


def _write_text(url: str, text: str, options: dict) -> None:
    try:
        with fsspec.open(url, "w", **options) as handle:
            handle.write(text)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as error:
        raise StorageError(f"{redact_url(url)}: cannot write ({error.strerror or type(error).__name__})") from None
