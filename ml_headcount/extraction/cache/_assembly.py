"""A run's keywords assembled from the cache, a chunk of CVs at a time, every shard checked."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.cache._index import CacheIndex, cached_shards
from ml_headcount.extraction.cache._shards import KEYWORD_SCHEMA, cache_prefix
from ml_headcount.extraction.cache._verifier import ShardVerifier
from ml_headcount.extraction.candidates import CandidateText
from ml_headcount.io.parallel import ordered_map
from ml_headcount.io.storage import ArtifactStore

# CVs a run's keyword table is assembled by at a time (~30 keywords each, and their texts): what assembly holds
ASSEMBLY_CHUNK = 100_000


@dataclass
class Assembly:
    """What assembling a run's keywords found: rows written (0 unless every CV was resolved), the CVs no holder
    could vouch for, and the entries that failed their checks."""

    rows: int = 0
    unresolved: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)  # {"entry", "reason", "shard_id", "sha256"}


class CvTexts:
    """The run's CVs and their texts as candidates (`CandidateText.joined`), by chunks of sorted CV ids."""

    def __init__(self, chunks, cv_ids: pd.Index):
        self._chunks, self.cv_ids = chunks, cv_ids

    @classmethod
    def of(cls, texts: pd.Series, settings: ExtractionSettings) -> CvTexts:
        """From texts in memory (index: cv_id)."""
        texts = texts[~texts.index.duplicated()]
        candidates = CandidateText(settings)
        ids = pd.Index(texts.index).sort_values()

        def chunks(size: int) -> Iterator[pd.Series]:
            for start in range(0, len(ids), size):
                part = texts.loc[ids[start : start + size]]
                yield pd.Series([candidates.joined(t) for t in part], index=part.index, dtype=object)

        return cls(chunks, ids)

    @classmethod
    def from_run(
        cls, store: ArtifactStore, cvs_key: str, settings: ExtractionSettings, workers: int = 1, batch: int = 20_000
    ) -> CvTexts:
        """From a run's cvs.parquet, read once: texts go, as candidates, to one local file per chunk of sorted ids
        (in memory when there is one chunk), in `workers` processes."""
        ids = pd.Index(store.read_parquet(cvs_key, columns=["cv_id"])["cv_id"]).unique().sort_values()

        def chunks(size: int) -> Iterator[pd.Series]:
            batches = store.parquet_batches(cvs_key, ["cv_id", "text"], batch)
            joined = ordered_map(
                _joined_in_worker,
                ((b["cv_id"].tolist(), b["text"].tolist()) for b in batches),
                workers,
                _start_joining,
                (settings,),
            )
            if len(ids) <= size:
                whole = [pd.Series(texts, index=cv_ids, dtype=object) for cv_ids, texts in joined]
                series = pd.concat(whole) if whole else pd.Series(dtype=object)
                yield series[~series.index.duplicated()].loc[ids]
                return
            with tempfile.TemporaryDirectory(prefix="ml-headcount-assembly-") as scratch:
                writers: dict[int, pq.ParquetWriter] = {}
                schema = pa.schema([("cv_id", pa.string()), ("joined", pa.string())])
                for cv_ids, texts in joined:
                    bucket = ids.get_indexer(cv_ids) // size
                    for b in np.unique(bucket).tolist():
                        rows = bucket == b
                        if b not in writers:
                            writers[b] = pq.ParquetWriter(Path(scratch, f"{b}.parquet"), schema)
                        writers[b].write_table(
                            pa.table(
                                {
                                    "cv_id": np.asarray(cv_ids, dtype=object)[rows],
                                    "joined": np.asarray(texts, dtype=object)[rows],
                                },
                                schema=schema,
                            )
                        )
                for writer in writers.values():
                    writer.close()
                for b in range(math.ceil(len(ids) / size)):
                    table = pq.read_table(Path(scratch, f"{b}.parquet")).to_pandas()
                    series = pd.Series(table["joined"].to_numpy(), index=table["cv_id"].to_numpy(), dtype=object)
                    yield series[~series.index.duplicated()].loc[ids[b * size : (b + 1) * size]]

        return cls(chunks, ids)

    def chunks(self, size: int) -> Iterator[pd.Series]:
        return self._chunks(size)


_worker_candidates: CandidateText | None = None


def _start_joining(settings: ExtractionSettings) -> None:
    global _worker_candidates
    _worker_candidates = CandidateText(settings)


def _joined_in_worker(item: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    cv_ids, texts = item
    return cv_ids, [_worker_candidates.joined(t) for t in texts]


def write_run_keywords(
    store: ArtifactStore, settings: ExtractionSettings, texts: CvTexts, key: str, index: CacheIndex | None = None
) -> Assembly:
    """The run's keywords, every shard checked (module docstring), written to `key` as Parquet ordered by CV id then
    rank, ASSEMBLY_CHUNK CVs at a time (one row group each). With unresolved CVs nothing is written.

    `index` is what planning learned (`cached.with_shards(planned).for_cvs(...)`); without it the cache's index is read.
    """
    index = index if index is not None else cached_shards(store, settings)
    assembly = Assembly()
    wanted = texts.cv_ids
    missing = wanted.difference(pd.Index(index.pairs["cv_id"].unique()))
    assembly.unresolved += missing.tolist()

    class Unresolved(Exception):
        pass

    try:
        with store.writer(key) as handle, pq.ParquetWriter(handle, KEYWORD_SCHEMA) as writer:
            verifier = ShardVerifier(store, settings, index)
            for joined in texts.chunks(ASSEMBLY_CHUNK):
                table, unresolved = verifier.keywords(joined[~joined.index.isin(missing)])
                assembly.unresolved += unresolved
                if not assembly.unresolved:
                    writer.write_table(table)
                    assembly.rows += table.num_rows
            assembly.rejected = verifier.rejected
            if assembly.unresolved:
                raise Unresolved
    except Unresolved:
        assembly.rows = 0
        assembly.unresolved.sort()
    return assembly


def load_keywords(
    store: ArtifactStore, settings: ExtractionSettings, texts: pd.Series, index: CacheIndex | None = None
) -> pd.DataFrame:
    """The cached, checked keywords of these CVs (texts indexed by cv_id), ordered by CV id then rank; KeyError if any
    CV has none that checks out."""
    index = index if index is not None else cached_shards(store, settings)
    verifier = ShardVerifier(store, settings, index)
    tables, unresolved = [], []
    cv_texts = CvTexts.of(texts, settings)
    for joined in cv_texts.chunks(ASSEMBLY_CHUNK):
        held = joined[joined.index.isin(pd.Index(index.pairs["cv_id"].unique()))]
        unresolved += joined.index.difference(held.index).tolist()
        table, failed = verifier.keywords(held)
        tables.append(table)
        unresolved += failed
    if unresolved:
        raise KeyError(f"{len(unresolved)} CVs have no cached keywords under {store.location(cache_prefix(settings))}")
    return pa.concat_tables(tables).to_pandas() if tables else KEYWORD_SCHEMA.empty_table().to_pandas()
