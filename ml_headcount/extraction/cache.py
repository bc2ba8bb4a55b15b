"""The content-keyed cache of extracted keywords, shared by every run and machine, and its index.

Layout under the store, per settings key (`cache/keywords/<settings key>/`):

- `<shard id>.parquet`: the keywords of one shard's CVs;
- `index/parts/<shard id>.json`: the shard's index part (the CV ids it covers),
  written after the keywords, so a listed part always has its complete keywords;
- `index/snapshot-<shards>-<nonce>.parquet`: a compaction of parts, one row per
  (cv_id, shard_id) of the `<shards>` shards it covers.

A CV's id is the hash of its cleaned text, and the settings key covers the
model, every extraction parameter and the extraction code version: a CV is
extracted at most once per settings key, whichever run or shard it arrives in.

Parts are never rewritten or deleted, so the union of the parts is the truth
and a snapshot is only a shortcut to it. Reading the index is one listing of
the parts, one GET of the widest snapshot and one GET per part that snapshot
does not cover; a read that found `COMPACT_AFTER` or more such parts writes a
new, wider snapshot (under a fresh name: no write replaces another's). Two runs
sharing a bucket may store shards and compact at the same time without losing
an entry: whatever a snapshot misses is still in its parts.

Caches from before the index (`<shard id>.json` beside each parquet, no
snapshot) are read as they are and compacted into a snapshot on first read;
their .json files stay, unread once a snapshot exists.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.extractor import KEYWORD_COLUMNS
from ml_headcount.io.storage import ArtifactStore

# uncovered parts a read may meet before it writes a snapshot; a run extracting a few shards does not rewrite the index
COMPACT_AFTER = 16
# concurrent GETs: object stores answer in parallel, and a local disk does not mind
READERS = 16
# CVs a run's keyword table is assembled by at a time (~30 keywords each): what assembly holds, whatever the corpus
ASSEMBLY_CHUNK = 100_000
KEYWORD_SCHEMA = pa.schema([("cv_id", pa.string()), ("keyword", pa.string()), ("score", pa.float64()), ("rank", pa.int64())])
INDEX_SCHEMA = pa.schema([("cv_id", pa.string()), ("shard_id", pa.string())])


@dataclass(frozen=True)
class Shard:
    shard_id: str
    cv_ids: tuple[str, ...]


@dataclass(frozen=True)
class CacheIndex:
    """Which complete shard holds each cached CV, as read once from the cache."""

    shard_of: pd.Series  # index: cv_id (unique); value: shard id, the smallest when two shards hold a CV
    shard_ids: frozenset[str]

    def __len__(self) -> int:
        """The number of complete shards."""
        return len(self.shard_ids)

    @classmethod
    def from_pairs(cls, pairs: pd.DataFrame) -> CacheIndex:
        pairs = pairs.sort_values(["cv_id", "shard_id"]).drop_duplicates("cv_id")
        return cls(pd.Series(pairs["shard_id"].to_numpy(), index=pd.Index(pairs["cv_id"].to_numpy(), name="cv_id")),
                   frozenset(pairs["shard_id"].unique()))

    def missing(self, cv_ids: list[str]) -> pd.Index:
        """The CVs no cached shard holds, sorted."""
        return pd.Index(cv_ids).unique().difference(self.shard_of.index).sort_values()

    def with_shards(self, shards: list[Shard]) -> CacheIndex:
        """This index once these shards are stored: what a run plans, its assembly can read without the cache's index."""
        added = pd.DataFrame([(cv_id, s.shard_id) for s in shards for cv_id in s.cv_ids], columns=["cv_id", "shard_id"])
        return CacheIndex.from_pairs(pd.concat([self.pairs(), added], ignore_index=True))

    def for_cvs(self, cv_ids: list[str]) -> CacheIndex:
        """Only these CVs' entries: a run's own index, small enough to keep with the run."""
        return CacheIndex.from_pairs(self.pairs()[lambda pairs: pairs["cv_id"].isin(pd.Index(cv_ids))])

    def pairs(self) -> pd.DataFrame:
        return pd.DataFrame({"cv_id": self.shard_of.index.to_numpy(), "shard_id": self.shard_of.to_numpy()})


def cache_prefix(settings: ExtractionSettings) -> str:
    return f"cache/keywords/{settings.cache_key()}"


def _parts_prefix(settings: ExtractionSettings) -> str:
    return f"{cache_prefix(settings)}/index/parts"


def _parallel(function, items: list) -> list:
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(function, items))


def cached_shards(store: ArtifactStore, settings: ExtractionSettings) -> CacheIndex:
    """The cache's index: every complete shard and the CVs it covers. Compacts it when many parts are unfolded."""
    prefix = cache_prefix(settings)
    parts = {key.rsplit("/", 1)[-1].removesuffix(".json"): key for key in store.list(_parts_prefix(settings)) if key.endswith(".json")}
    snapshots = [k for k in store.list(f"{prefix}/index") if k.rsplit("/", 1)[-1].startswith("snapshot-") and k.endswith(".parquet")]
    legacy = {} if snapshots else {
        key.rsplit("/", 1)[-1].removesuffix(".json"): key for key in store.list(prefix) if key.endswith(".json")
    }
    snapshot = store.read_parquet(max(snapshots)) if snapshots else pd.DataFrame(columns=["cv_id", "shard_id"])
    folded = set(snapshot["shard_id"].unique())
    unfolded = {shard_id: key for shard_id, key in {**legacy, **parts}.items() if shard_id not in folded}
    read = _parallel(lambda item: (item[0], store.read_json(item[1])["cv_ids"]), sorted(unfolded.items()))
    pairs = pd.concat(
        [snapshot[["cv_id", "shard_id"]], pd.DataFrame([(c, s) for s, ids in read for c in ids], columns=["cv_id", "shard_id"])],
        ignore_index=True,
    )
    if len(unfolded) >= COMPACT_AFTER or legacy:
        _write_snapshot(store, settings, pairs)
    return CacheIndex.from_pairs(pairs)


def _write_snapshot(store: ArtifactStore, settings: ExtractionSettings, pairs: pd.DataFrame) -> None:
    # every (cv, shard) pair, duplicates included, so that the snapshot names every shard it folded in
    table = pa.Table.from_pandas(pairs[["cv_id", "shard_id"]], schema=INDEX_SCHEMA, preserve_index=False)
    shards = len(set(pairs["shard_id"]))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.write_bytes(f"{cache_prefix(settings)}/index/snapshot-{shards:010d}-{uuid.uuid4().hex[:12]}.parquet", buffer.getvalue())


def plan_shards(cv_ids: list[str], cached: CacheIndex, settings: ExtractionSettings) -> list[Shard]:
    """Shards of the CVs the cache does not cover, in a deterministic order."""
    missing = cached.missing(cv_ids).tolist()
    size = settings.shard_size
    return [_shard(tuple(missing[i : i + size]), settings) for i in range(0, len(missing), size)]


def _shard(cv_ids: tuple[str, ...], settings: ExtractionSettings) -> Shard:
    digest = hashlib.sha256("\n".join((settings.cache_key(), *cv_ids)).encode()).hexdigest()[:16]
    return Shard(shard_id=digest, cv_ids=cv_ids)


def store_shard(store: ArtifactStore, settings: ExtractionSettings, shard: Shard, keywords: pd.DataFrame) -> str:
    """The shard's keywords, then its index part: a part is never listed before its keywords are complete."""
    location = store.write_parquet(f"{cache_prefix(settings)}/{shard.shard_id}.parquet", keywords[KEYWORD_COLUMNS])
    store.write_json(f"{_parts_prefix(settings)}/{shard.shard_id}.json", {"cv_ids": list(shard.cv_ids)})
    return location


def run_keywords(store: ArtifactStore, settings: ExtractionSettings, cv_ids: list[str], index: CacheIndex | None = None) -> pa.Table:
    """The cached keywords of these CVs as an Arrow table, ordered by CV id then rank; KeyError if any is missing.

    `index` is what planning learned (`cached.with_shards(planned)`); without it the cache's index is read.
    """
    index, wanted = _located(store, settings, cv_ids, index)
    return _keywords_of(store, settings, index, wanted)


def load_keywords(store: ArtifactStore, settings: ExtractionSettings, cv_ids: list[str], index: CacheIndex | None = None) -> pd.DataFrame:
    """The cached keywords of these CVs, ordered by CV id then rank; KeyError if any is missing."""
    return run_keywords(store, settings, cv_ids, index).to_pandas()


def write_run_keywords(
    store: ArtifactStore, settings: ExtractionSettings, cv_ids: list[str], key: str, index: CacheIndex | None = None
) -> int:
    """`run_keywords` written to `key` as Parquet, ASSEMBLY_CHUNK CVs at a time (one row group each); returns the row count."""
    index, wanted = _located(store, settings, cv_ids, index)
    rows = 0
    with store.writer(key) as handle, pq.ParquetWriter(handle, KEYWORD_SCHEMA) as writer:
        for start in range(0, len(wanted), ASSEMBLY_CHUNK):
            table = _keywords_of(store, settings, index, wanted[start : start + ASSEMBLY_CHUNK])
            writer.write_table(table)
            rows += table.num_rows
    return rows


def _located(store: ArtifactStore, settings: ExtractionSettings, cv_ids: list[str], index: CacheIndex | None) -> tuple[CacheIndex, pd.Index]:
    """The index to read through and the wanted CVs, sorted and unique; KeyError if the cache lacks any."""
    index = index if index is not None else cached_shards(store, settings)
    wanted = pd.Index(cv_ids).unique().sort_values()
    missing = wanted.difference(index.shard_of.index)
    if len(missing):
        raise KeyError(f"{len(missing)} CVs have no cached keywords under {store.location(cache_prefix(settings))}")
    return index, wanted


def _keywords_of(store: ArtifactStore, settings: ExtractionSettings, index: CacheIndex, wanted: pd.Index) -> pa.Table:
    """Each shard holding some of these CVs read once, in parallel, keeping the CVs it is the designated holder of."""
    holders = index.shard_of.loc[wanted]
    prefix = cache_prefix(settings)

    def read(item) -> pa.Table:
        shard_id, ids = item
        table = pq.read_table(io.BytesIO(store.read_bytes(f"{prefix}/{shard_id}.parquet")), columns=KEYWORD_COLUMNS)
        table = table.replace_schema_metadata(None).cast(KEYWORD_SCHEMA)
        return table.filter(pc.is_in(table["cv_id"], value_set=pa.array(list(ids), pa.string())))

    tables = _parallel(read, sorted(holders.groupby(holders.to_numpy()).groups.items()))
    table = pa.concat_tables(tables) if tables else KEYWORD_SCHEMA.empty_table()
    return table.sort_by([("cv_id", "ascending"), ("rank", "ascending")])
