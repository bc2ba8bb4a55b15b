"""Checking a shard before its keywords are used: its digest, its CVs, and each keyword against its CV's text."""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.cache._index import CacheIndex, read_part
from ml_headcount.extraction.cache._shards import (
    KEYWORD_SCHEMA,
    MAX_SHARD_BYTES,
    SHARD_ID,
    cache_key,
    cache_prefix,
    parallel_reads,
)
from ml_headcount.extraction.candidates import CandidateText
from ml_headcount.extraction.extractor import KEYWORD_COLUMNS
from ml_headcount.io.storage import ArtifactStore, TooLargeError


class ShardVerifier:
    """Reads shards through an index and keeps, per CV, the keywords of its first holder that passes every check."""

    def __init__(self, store: ArtifactStore, settings: ExtractionSettings, index: CacheIndex):
        self.store, self.settings, self.key = store, settings, cache_key(settings)
        self.prefix = cache_prefix(settings, self.key)
        self.candidates = CandidateText(settings)
        pairs = index.pairs
        self._cv_ids = pairs["cv_id"].to_numpy()
        self._positions = pairs.groupby("shard_id", sort=False).indices  # shard -> rows of its CVs
        self.digests = dict(zip(pairs["shard_id"], pairs["sha256"]))
        first = ~pairs["cv_id"].duplicated()
        self._first = dict(zip(pairs.loc[first, "cv_id"], pairs.loc[first, "shard_id"]))
        self._more = pairs[~first].groupby("cv_id", sort=False)["shard_id"].agg(list).to_dict()  # rarely any
        self.failed: set[str] = set()
        self.rejected: list[dict] = []

    def members(self, shard: str) -> np.ndarray:
        return self._cv_ids[self._positions[shard]] if shard in self._positions else np.array([], dtype=object)

    def holders(self, cv_id: str) -> list[str]:
        first = self._first.get(cv_id)
        return [] if first is None else [first, *self._more.get(cv_id, [])]

    def keywords(self, joined: pd.Series) -> tuple[pa.Table, list[str]]:
        """(keywords of these CVs, ordered by CV id then rank; CVs none of whose holders checked out)."""
        remaining = set(joined.index)
        found: list[pa.Table] = []
        unresolved: list[str] = []
        while remaining:
            asked: dict[str, list[str]] = {}
            for cv_id in remaining:
                holder = next((h for h in self.holders(cv_id) if h not in self.failed), None)
                if holder is None:
                    unresolved.append(cv_id)
                else:
                    asked.setdefault(holder, []).append(cv_id)
            remaining.difference_update(unresolved)
            shards = sorted(asked)
            for shard, table in zip(shards, parallel_reads(lambda shard: self._checked(shard, joined), shards)):
                if table is None:
                    self.failed.add(shard)
                    continue
                # every CV still wanted that this shard holds, not only those it was asked for
                ours = [c for c in self.members(shard) if c in remaining]
                found.append(table.filter(pc.is_in(table["cv_id"], value_set=pa.array(ours, pa.string()))))
                remaining.difference_update(ours)
        table = pa.concat_tables(found) if found else KEYWORD_SCHEMA.empty_table()
        return table.sort_by([("cv_id", "ascending"), ("rank", "ascending")]), sorted(unresolved)

    def _checked(self, shard: str, joined: pd.Series) -> pa.Table | None:
        """The shard's keywords, if it passes every check for the CVs of `joined` it holds; else None (reported)."""
        problem, table = None, None
        if not SHARD_ID.fullmatch(shard):  # the run's own index is in the storage too: never a path
            return self._rejected(self.prefix, f"{shard!r} is not a shard id", shard)
        try:
            data = self.store.read_bounded(f"{self.prefix}/{shard}.parquet", MAX_SHARD_BYTES)
        except FileNotFoundError:
            data, problem = None, "its keywords are missing"
        except TooLargeError as error:
            data, problem = None, str(error)
        if data is not None and hashlib.sha256(data).hexdigest() != self.digests.get(shard):
            # the digest came from a snapshot, or from nowhere yet (a shard this run planned): the part is the truth
            part = read_part(self.store, self.key, shard, f"{self.prefix}/index/parts/{shard}.json")
            if not (
                isinstance(part, pd.DataFrame)
                and set(part["cv_id"]) == set(self.members(shard))
                and part["sha256"].iloc[0] == hashlib.sha256(data).hexdigest()
            ):
                problem = "its keywords are not the ones its index entry records (sha256)"
        if problem is None:
            problem, table = self._content(data, shard, joined)
        if problem is None:
            return table
        return self._rejected(f"{self.prefix}/{shard}.parquet", problem, shard)

    def _rejected(self, key: str, reason: str, shard: str) -> None:
        """Report a shard that failed a check (None: its keywords are not used)."""
        entry = {"entry": self.store.location(key), "reason": reason, "shard_id": shard}
        self.rejected.append({**entry, "sha256": self.digests.get(shard, "")})

    def _content(self, data: bytes, shard: str, joined: pd.Series) -> tuple[str | None, pa.Table | None]:
        """(what is wrong with the shard's keywords, or None; the keyword table)."""
        members = set(self.members(shard))
        top_n = self.settings.top_n
        try:
            parquet = pq.ParquetFile(io.BytesIO(data))
            if parquet.metadata.num_rows > len(members) * top_n:
                return f"{parquet.metadata.num_rows:,} keywords for {len(members)} CVs", None
            table = parquet.read(columns=KEYWORD_COLUMNS).replace_schema_metadata(None).cast(KEYWORD_SCHEMA)
        except (pa.ArrowException, OSError, KeyError, ValueError) as error:
            return f"not a keyword table ({type(error).__name__})", None
        if any(table[column].null_count for column in KEYWORD_COLUMNS):
            return "empty cells", None
        cv_ids = table["cv_id"].to_pylist()
        if not set(cv_ids) <= members:
            return "keywords of CVs its part does not list", None
        by_cv: dict[str, list[tuple[str, float, int]]] = {cv_id: [] for cv_id in members.intersection(joined.index)}
        for cv_id, keyword, score, rank in zip(
            cv_ids, table["keyword"].to_pylist(), table["score"].to_pylist(), table["rank"].to_pylist()
        ):
            if cv_id in by_cv:
                by_cv[cv_id].append((keyword, score, rank))
        holds = self.candidates.holds
        for cv_id, rows in by_cv.items():
            text = joined[cv_id]
            if not rows:
                if text != " ":
                    return f"no keywords for CV {cv_id}, whose text has candidates", None
                continue
            keywords = [k for k, _, _ in rows]
            if (
                len(rows) > top_n
                or [r for _, _, r in rows] != list(range(1, len(rows) + 1))
                or len(set(keywords)) != len(keywords)
            ):
                return f"CV {cv_id}: not at most {top_n} distinct keywords ranked 1..n", None
            if not all(math.isfinite(s) and abs(s) <= 1 for _, s, _ in rows):
                return f"CV {cv_id}: a score that is no similarity", None
            absent = next((k for k in keywords if not holds(text, k)), None)
            if absent is not None:
                return f"CV {cv_id}: {absent!r} is not a candidate of its text", None
        return None, table
