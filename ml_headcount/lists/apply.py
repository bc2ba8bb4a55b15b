"""Apply a finished run's keyword lists to any CV or profile table, chunk by chunk, in bounded memory.

Every input row gives one output row: `source_row` (1-based, header
excluded), `cv_id` (as a run would name the CV; empty when the row is not
usable), `status` (`ok`, or why the text cannot be used, as ingestion says
it) and one 0/1 column per `<category>/<list>`. Texts are cleaned with the
run's ingestion settings and matched with its extraction tokenisation
(`matching.KeywordMatcher`), so a CV matches here exactly when it matched in
the run; with `filters.matcher = phrase`, each list's query (queries.json) is
matched with phrase search, as a search tool runs it
(`phrase_matching.PhraseMatcher`). Duplicates are matched like any row: the
output follows the input.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pandas as pd

from ml_headcount.config import ExtractionSettings, IngestSettings, StorageSettings
from ml_headcount.corpus.ingest import (
    Chunk,
    InputError,
    clean_text,
    clean_text_problem,
    find_column,
    raw_text_problem,
    redact_url,
    table_chunks,
    text_hash,
)
from ml_headcount.io.storage import ArtifactStore, StorageError, check_name
from ml_headcount.lists import text_classifier
from ml_headcount.lists.queries import QueryError, dialect, list_query
from ml_headcount.lists.text_classifier import TextClassifier
from ml_headcount.runs.layout import LATEST, MANIFEST, RunLayout, latest_pointer
from ml_headcount.scoring.keyword_list import KeywordList
from ml_headcount.scoring.phrase_matching import PhraseMatcher, SearchQuery

if TYPE_CHECKING:  # matching imports scikit-learn: seconds that resolving a run reference does not need
    from ml_headcount.scoring.matching import KeywordMatcher

OK = "ok"


@dataclass(frozen=True)
class RunFilters:
    """What applying a run needs from it: its lists and how it cleaned and tokenised texts."""

    run_id: str
    location: str
    lists: dict[str, list[str]]  # "<category>/<list>" -> keywords
    ingest: IngestSettings
    extraction: ExtractionSettings
    queries: dict[str, SearchQuery] | None = None  # "<category>/<list>" -> its query, for phrase search
    classifier: TextClassifier | None = None  # the run's TF-IDF annotator, where it has one

    def matcher(self, kind: str, with_classifier: bool = False) -> KeywordMatcher | PhraseMatcher | WithClassifier:
        """The product's matcher of the lists, or phrase search of their queries (`kind`: filters.matcher); with the
        run's TF-IDF classifier's `<category>/tfidf` columns after the lists' when asked and the run has one."""
        from ml_headcount.scoring.matching import KeywordMatcher

        lists = KeywordMatcher(self.lists, self.extraction) if kind == "product" else PhraseMatcher(self.queries)
        return WithClassifier(lists, self.classifier) if with_classifier and self.classifier else lists


class WithClassifier:
    """A list matcher's columns, then the TF-IDF classifier's annotations (`<category>/tfidf`)."""

    def __init__(self, lists: KeywordMatcher | PhraseMatcher, classifier: TextClassifier):
        self._lists, self._classifier = lists, classifier
        self.names = lists.names + [text_classifier.column(c) for c in classifier.coefficients]

    def match(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(names)) bool."""
        annotated = self._classifier.annotate(texts)
        own = [annotated[name] > 0 for name in self.names[len(self._lists.names) :]]
        return np.column_stack([self._lists.match(texts), *own])


def split_run_reference(run: str, storage_url: str) -> tuple[str, str]:
    """(storage URL, run id) from a run id (or `latest`) under storage_url, or from a run's location."""
    stripped = run.rstrip("/")
    if "/runs/" in stripped:
        root, run_id = stripped.rsplit("/runs/", 1)
        return root, run_id
    return storage_url, stripped


def resolve_run_id(store: ArtifactStore, run_id: str) -> str:
    """The run id itself, or the newest complete run's for `latest`; checked as every run id is (`check_name`)."""
    if run_id != "latest":
        return check_name(run_id, "run id")
    try:
        data = store.read_bytes(LATEST)
    except FileNotFoundError:
        raise InputError(
            f"{store.location('runs')}: no complete run yet (no latest.json); give a run id or location"
        ) from None
    pointer = latest_pointer(data)
    if pointer is None:
        raise InputError(
            f"{store.location(LATEST)}: names no valid run id (it must be one name: letters, digits, "
            "'.', '_' and '-'); give a run id or location instead"
        )
    return pointer["run_id"]


def run_store(run: str, storage: StorageSettings) -> tuple[ArtifactStore, str]:
    """The store holding the complete run that `run` names (an id or `latest` under `storage`, or a run's location, as
    `ml-headcount run` prints it), and the run's id; an InputError when there is no complete run there."""
    storage_url, run_id = split_run_reference(run, storage.url)
    store = ArtifactStore(storage.model_copy(update={"url": storage_url}))
    run_id = resolve_run_id(store, run_id)
    if not store.exists(RunLayout(run_id).manifest):
        raise InputError(
            f"{store.location(RunLayout(run_id).prefix)}: no complete run there (no {MANIFEST}); "
            "check the run id and --storage-url"
        )
    return store, run_id


def default_output(store: ArtifactStore, run_id: str, input_url: str) -> str:
    """Where matches go unless told: beside the run's storage, never inside the (immutable) run."""
    name = PurePosixPath(redact_url(input_url).rstrip("/")).name.split(".")[0] or "input"
    return store.location(f"filtered/{run_id}/{name}.matches.parquet")


def load_run_filters(store: ArtifactStore, run_id: str) -> RunFilters:
    """The keyword lists (and classifier, if learned) of a complete run; an InputError when it is not one."""
    run_id = resolve_run_id(store, run_id)
    run = RunLayout(run_id)
    if not store.exists(run.manifest):
        raise InputError(
            f"{store.location(run.prefix)}: no complete run there (no {MANIFEST}); check the run id and --storage-url"
        )
    try:
        manifest, lists = store.read_json(run.manifest), store.read_json(run.keyword_lists)
        parameters = manifest["parameters"]
        named = {
            f"{category}/{name}": KeywordList(
                [str(k) for k in entry["keywords"]], [str(k) for k in entry.get("exclusions", [])]
            )
            for category, by_name in lists.items()
            for name, entry in by_name.items()
        }
        return RunFilters(
            run_id=run_id,
            location=store.location(run.prefix),
            lists=named,
            ingest=IngestSettings.model_validate(parameters["ingest"]),
            extraction=ExtractionSettings.model_validate(parameters["extraction"]),
            queries={name: list_query(keywords) for name, keywords in named.items()},
            classifier=(
                TextClassifier.from_document(store.read_json(run.text_classifier))
                if store.exists(run.text_classifier)
                else None
            ),
        )
    except FileNotFoundError as error:
        raise InputError(
            f"{store.location(run.prefix)}: the run lacks {PurePosixPath(str(error)).name or 'a file'}"
        ) from None
    except (
        ValueError,
        RecursionError,
        KeyError,
        TypeError,
        AttributeError,
    ) as error:  # pydantic's errors are ValueErrors
        raise InputError(
            f"{store.location(run.prefix)}: its manifest.json or keyword_lists.json is not a run's "
            f"({type(error).__name__}); check the run id and --storage-url"
        ) from None


def run_query(store: ArtifactStore, run_id: str, dialect_name: str, category: str | None, list_name: str) -> str:
    """One list's query in one dialect, from the run's queries.json; QueryError (a user error) when there is none."""
    dialect(dialect_name)
    run_id = resolve_run_id(store, run_id)
    run = RunLayout(run_id)
    if not store.exists(run.manifest):
        raise InputError(
            f"{store.location(run.prefix)}: no complete run there (no {MANIFEST}); check the run id and --storage-url"
        )
    if not store.exists(run.queries):
        raise QueryError(f"{store.location(run.queries)}: the run has no queries (a run older than queries.json)")
    queries = store.read_json(run.queries)["queries"]
    if category is None:
        named = [c for c in queries if c != "0"]
        if len(named) != 1:
            raise QueryError(f"{store.location(run.queries)}: give --category, one of {sorted(queries)}")
        category = named[0]
    entry = queries.get(category, {}).get(list_name)
    if entry is None:
        raise QueryError(
            f"{store.location(run.queries)}: no list {category}/{list_name}; lists: "
            f"{[f'{c}/{n}' for c, by in queries.items() for n in by]}"
        )
    rendered = entry["dialects"][dialect_name]
    if "query" not in rendered:
        raise QueryError(
            f"{store.location(run.queries)}: list {category}/{list_name} has no {dialect_name} query: "
            f"{rendered['refused']}"
        )
    return rendered["query"]


def match_table(
    chunk: Chunk, text_column: str, filters: RunFilters, matcher: KeywordMatcher | PhraseMatcher | WithClassifier
) -> pd.DataFrame:
    """One output row per input row of the chunk, rows that could not be parsed included, in source order."""
    status, cv_ids, texts, usable = [], [], [], []
    for position, raw in enumerate(chunk.table[text_column]):
        problem = raw_text_problem(raw, filters.ingest)
        text = "" if problem else clean_text(raw, filters.ingest)
        problem = problem or clean_text_problem(text, filters.ingest)
        status.append(problem or OK)
        cv_ids.append("" if problem else text_hash(text)[:16])
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


def apply_run_filters(
    input_url: str,
    filters: RunFilters,
    output_url: str,
    columns: IngestSettings,
    chunk_rows: int,
    input_options: dict | None = None,
    output_options: dict | None = None,
    matcher_kind: str = "product",
    with_classifier: bool = False,
) -> dict:
    """Match every row of the input and write the output table; returns the summary (also written beside it).
    `with_classifier` (filters.text_classifier): the run's TF-IDF classifier's columns too, where it has one."""
    started = time.perf_counter()
    matcher = filters.matcher(matcher_kind, with_classifier)
    rows, matched, statuses = 0, Counter(), Counter()
    with _table_writer(output_url, output_options or {}) as write:
        text_column = None
        reading = columns.model_copy(update={"chunk_rows": chunk_rows})
        for chunk in table_chunks(input_url, reading, input_options):
            chunk.table.columns = [str(c) for c in chunk.table.columns]
            text_column = text_column or find_column(
                list(chunk.table.columns), columns.text_column, columns.text_aliases, "text", redact_url(input_url)
            )
            table = match_table(chunk, text_column, filters, matcher)
            write(table)
            rows += len(table)
            matched.update({name: int(table[name].sum()) for name in matcher.names})
            statuses.update(table["status"].tolist())
        if text_column is None:
            raise InputError(f"{redact_url(input_url)}: no rows to match")
    seconds = time.perf_counter() - started
    summary = {
        "run_id": filters.run_id,
        "run": filters.location,
        "input": redact_url(input_url),
        "output": redact_url(output_url),
        "rows": rows,
        "matched": {name: matched[name] for name in matcher.names},
        "usable": statuses[OK],
        "not_usable": {reason: n for reason, n in statuses.items() if reason != OK},
        "list_sizes": {name: len(keywords) for name, keywords in filters.lists.items()},
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds, 1) if seconds else None,
    }
    _write_text(f"{output_url}.summary.json", json.dumps(summary, indent=2) + "\n", output_options or {})
    return summary


def _kind(url: str) -> str:
    suffix = PurePosixPath(url.split("?")[0]).suffix.lower()
    kinds = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix not in kinds:
        raise InputError(f"{redact_url(url)}: output must end in .parquet, .csv or .jsonl")
    return kinds[suffix]


@contextmanager
def _table_writer(url: str, options: dict) -> Iterator:
    """A function that appends a chunk to the output; the output appears whole, or not at all when local."""
    local = "://" not in url or url.startswith("file://")
    target = str(Path(url.removeprefix("file://")).expanduser()) if local else url
    if local and Path(target).is_dir():
        raise StorageError(
            f"{redact_url(url)}: is a directory; --output names the file the matches go to (.parquet, .csv or .jsonl)"
        )
    kind = _kind(url)
    path = f"{target}.tmp-{uuid.uuid4().hex}" if local else target
    try:
        if local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with fsspec.open(path, "wb", **options) as handle:
            writer = None
            first = True

            def write(table: pd.DataFrame) -> None:
                nonlocal writer, first
                if kind == "parquet":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    batch = pa.Table.from_pandas(table, preserve_index=False)
                    writer = writer or pq.ParquetWriter(handle, batch.schema)
                    writer.write_table(batch)
                elif kind == "csv":
                    handle.write(table.to_csv(index=False, header=first).encode("utf-8"))
                else:
                    buffer = io.StringIO()
                    table.to_json(buffer, orient="records", lines=True)
                    handle.write(buffer.getvalue().encode("utf-8"))
                first = False

            yield write
            if writer is not None:
                writer.close()
    except (PermissionError, IsADirectoryError, NotADirectoryError) as error:
        if local and os.path.exists(path):
            os.remove(path)
        raise StorageError(
            f"{redact_url(url)}: cannot write the output ({error.strerror or type(error).__name__})"
        ) from None
    except BaseException:
        if local and os.path.exists(path):
            os.remove(path)
        raise
    if local:
        try:
            os.replace(path, target)
        except OSError as error:  # the target became a directory, or cannot be replaced
            os.remove(path)
            raise StorageError(f"{redact_url(url)}: cannot write the output ({error.strerror})") from None


def _write_text(url: str, text: str, options: dict) -> None:
    try:
        with fsspec.open(url, "w", **options) as handle:
            handle.write(text)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as error:
        raise StorageError(f"{redact_url(url)}: cannot write ({error.strerror or type(error).__name__})") from None
