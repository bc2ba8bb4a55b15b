"""The content-keyed cache of extracted keywords, shared by every run and machine, and its index.

Layout under the store, per settings key (`cache/keywords/<settings key>/`):

- `<shard id>.parquet`: the keywords of one shard's CVs;
- `index/parts/<shard id>.json`: the shard's index part, `{"cv_ids": [...], "sha256": <the Parquet's>}`, written
  after the keywords, so a listed part always has its complete keywords;
- `index/snapshot-<shards>-<nonce>.parquet`: a compaction of parts, one row per (cv_id, shard_id, sha256) of the
  `<shards>` shards it covers.

A CV's id is the hash of its cleaned text, a shard's id the hash of the settings
key and its CV ids, and the settings key covers the model (a local model by its
weights' digest), every extraction parameter and the extraction code version: a
CV is extracted at most once per settings key, whichever run or shard it arrives in.

Parts are never deleted, so the union of the parts is the truth and a snapshot
is only a shortcut to it. Reading the index is one listing of the parts, one
listing of the snapshots, one GET of the widest valid snapshot and one GET per
part that snapshot does not cover; a read that found `COMPACT_AFTER` or more
such parts writes a new, wider snapshot (under a fresh name: no write replaces
another's). Two runs sharing a bucket may store shards and compact at the same
time without losing an entry: whatever a snapshot misses is still in its parts.

Whoever can write to the storage can write here, so nothing read is trusted
as it is (docs/storage.md, "Trust"):
- reading the index, a part or snapshot is used only if it is well formed, no
  larger than `MAX_PART_BYTES` / `MAX_SNAPSHOT_BYTES`, and every shard id in it
  is the hash of its CV ids (so an id is 16 hex digits and can name no other
  path); a snapshot is chosen by what it holds, its name is only checked against
  that. Anything else is skipped and reported;
- assembling a run's keywords (`write_run_keywords`), a shard is used only if its
  Parquet's sha256 is the one its index entry records, it holds only the CVs its
  part lists, it has keywords for each of them that has any candidate, and each
  keyword is a candidate of its CV's text: at most `top_n`, distinct, ranked
  1..n, n-grams of the text's own tokens. A CV whose every holder fails is
  unresolved: the run extracts it again (`Assembly.unresolved`), and the
  failures are reported in its manifest. No check ever fails a run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.extractor import KEYWORD_COLUMNS
from ml_headcount.io.parallel import ordered_map
from ml_headcount.io.storage import ArtifactStore, TooLargeError
from ml_headcount.scoring.matching import CandidateText

# uncovered parts a read may meet before it writes a snapshot; a run extracting a few shards does not rewrite the index
COMPACT_AFTER = 16
# concurrent GETs: object stores answer in parallel, and a local disk does not mind
READERS = 16
# CVs a run's keyword table is assembled by at a time (~30 keywords each, and their texts): what assembly holds
ASSEMBLY_CHUNK = 100_000
# what is read of the index, at most: a part of 32 CVs is ~700 bytes, a snapshot of 1M CVs ~20 MB
MAX_PART_BYTES = 4 * 2**20
MAX_SNAPSHOT_BYTES = 512 * 2**20
MAX_SHARD_BYTES = 256 * 2**20
KEYWORD_SCHEMA = pa.schema(
    [("cv_id", pa.string()), ("keyword", pa.string()), ("score", pa.float64()), ("rank", pa.int64())]
)
INDEX_SCHEMA = pa.schema([("cv_id", pa.string()), ("shard_id", pa.string()), ("sha256", pa.string())])
INDEX_COLUMNS = ["cv_id", "shard_id", "sha256"]

_ID = re.compile(r"[0-9a-f]{16}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SNAPSHOT = re.compile(r"snapshot-(\d{10})-[0-9a-f]{12}\.parquet")


@dataclass(frozen=True)
class Shard:
    shard_id: str
    cv_ids: tuple[str, ...]


@dataclass(frozen=True)
class CacheIndex:
    """Which shards hold each cached CV, as read once from the cache, and what was rejected while reading it.

    `pairs` has one row per (cv_id, shard_id) of every shard it knows, all of each
    shard's CVs, with the shard's Parquet sha256 ("" for a shard planned but not yet
    stored: assembly reads its part), sorted by cv_id then shard_id: the order in
    which a CV's holders are tried."""

    pairs: pd.DataFrame
    rejected: tuple[dict, ...] = ()

    def __post_init__(self):
        pairs = self.pairs[INDEX_COLUMNS].drop_duplicates(["cv_id", "shard_id"]).sort_values(["cv_id", "shard_id"])
        object.__setattr__(self, "pairs", pairs.reset_index(drop=True))

    def __len__(self) -> int:
        """The number of complete shards."""
        return self.pairs["shard_id"].nunique()

    @property
    def shard_of(self) -> pd.Series:
        """The first holder of each CV (index: cv_id)."""
        first = self.pairs.drop_duplicates("cv_id")
        return pd.Series(first["shard_id"].to_numpy(), index=pd.Index(first["cv_id"].to_numpy(), name="cv_id"))

    def missing(self, cv_ids: list[str]) -> pd.Index:
        """The CVs no cached shard holds, sorted."""
        return pd.Index(cv_ids).unique().difference(pd.Index(self.pairs["cv_id"].unique())).sort_values()

    def with_shards(self, shards: list[Shard]) -> CacheIndex:
        """This index once these shards are stored: what a run plans, its assembly can read without the cache's index."""
        added = pd.DataFrame([(cv_id, s.shard_id, "") for s in shards for cv_id in s.cv_ids], columns=INDEX_COLUMNS)
        ours = set(s.shard_id for s in shards)  # one of ours may be an entry rejected before (the same CVs): ours wins
        kept = self.pairs[~self.pairs["shard_id"].isin(ours)]
        return CacheIndex(pd.concat([kept, added], ignore_index=True), self.rejected)

    def without(self, entries: list[tuple[str, str]]) -> CacheIndex:
        """This index less these (shard_id, sha256) entries."""
        drop = pd.MultiIndex.from_tuples(entries) if entries else None
        if drop is None:
            return self
        keep = ~pd.MultiIndex.from_arrays([self.pairs["shard_id"], self.pairs["sha256"]]).isin(drop)
        return CacheIndex(self.pairs[keep], self.rejected)

    def for_cvs(self, cv_ids: list[str]) -> CacheIndex:
        """Every entry of the shards holding these CVs: a run's own index, small enough to keep with the run."""
        holders = self.pairs.loc[self.pairs["cv_id"].isin(pd.Index(cv_ids)), "shard_id"].unique()
        return CacheIndex(self.pairs[self.pairs["shard_id"].isin(holders)], self.rejected)


def cache_prefix(settings: ExtractionSettings, key: str | None = None) -> str:
    return f"cache/keywords/{key or settings.cache_key()}"


def _parts_prefix(settings: ExtractionSettings, key: str | None = None) -> str:
    return f"{cache_prefix(settings, key)}/index/parts"


def _parallel(function, items: list) -> list:
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(function, items))


def shard_id(key: str, cv_ids) -> str:
    """The id of a shard of these CVs under this settings key: what every shard id read is checked against."""
    return hashlib.sha256("\n".join((key, *sorted(cv_ids))).encode()).hexdigest()[:16]


def cached_shards(store: ArtifactStore, settings: ExtractionSettings) -> CacheIndex:
    """The cache's index: every valid shard entry and the CVs it covers. Compacts it when many parts are unfolded."""
    key = settings.cache_key()
    prefix = cache_prefix(settings, key)
    rejected: list[dict] = []
    parts = {}
    for part_key, size in store.list_sizes(_parts_prefix(settings, key)).items():
        name = part_key.rsplit("/", 1)[-1]
        if not (name.endswith(".json") and _ID.fullmatch(name.removesuffix(".json"))):
            rejected.append(_rejection(store, part_key, "not named <shard id>.json"))
        elif size > MAX_PART_BYTES:
            rejected.append(_rejection(store, part_key, f"{size:,} bytes, over {MAX_PART_BYTES:,}"))
        else:
            parts[name.removesuffix(".json")] = part_key
    snapshot = _chosen_snapshot(store, prefix, key, rejected)
    folded = set(snapshot["shard_id"].unique())
    read = _parallel(
        lambda item: _read_part(store, key, *item), sorted((s, k) for s, k in parts.items() if s not in folded)
    )
    rejected += [entry for entry in read if isinstance(entry, dict) and "reason" in entry]
    unfolded = [entry for entry in read if isinstance(entry, pd.DataFrame)]
    pairs = pd.concat([snapshot, *unfolded], ignore_index=True) if unfolded else snapshot
    if len(unfolded) >= COMPACT_AFTER:
        _write_snapshot(store, prefix, pairs)
    return CacheIndex(pairs, tuple(rejected))


def _rejection(store: ArtifactStore, key: str, reason: str) -> dict:
    return {"entry": store.location(key), "reason": reason}


def _read_part(store: ArtifactStore, key: str, shard: str, part_key: str) -> pd.DataFrame | dict:
    """A part's (cv_id, shard_id, sha256) rows, or why it is not used."""
    try:
        part = json.loads(store.read_bounded(part_key, MAX_PART_BYTES))
    except FileNotFoundError:
        return {}  # gone since the listing: nothing to use, nothing to report
    except (TooLargeError, ValueError, RecursionError) as error:
        return _rejection(store, part_key, str(error) if isinstance(error, TooLargeError) else "not JSON")
    cv_ids = part.get("cv_ids") if isinstance(part, dict) else None
    digest = part.get("sha256") if isinstance(part, dict) else None
    if not isinstance(cv_ids, list) or not cv_ids or not all(isinstance(c, str) and _ID.fullmatch(c) for c in cv_ids):
        return _rejection(store, part_key, "no list of CV ids (cv_ids)")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        return _rejection(store, part_key, "no sha256 of its keywords")
    if len(set(cv_ids)) != len(cv_ids) or shard_id(key, cv_ids) != shard:
        return _rejection(store, part_key, "its shard id is not the id of the CVs it lists")
    return pd.DataFrame({"cv_id": cv_ids, "shard_id": shard, "sha256": digest})


def _chosen_snapshot(store: ArtifactStore, prefix: str, key: str, rejected: list[dict]) -> pd.DataFrame:
    """The widest snapshot that holds what its name says, every shard in it named by its CVs' id; else no snapshot."""
    candidates = []
    for snapshot_key, size in store.list_sizes(f"{prefix}/index").items():
        name = snapshot_key.rsplit("/", 1)[-1]
        if not name.startswith("snapshot-"):
            continue
        match = _SNAPSHOT.fullmatch(name)
        if not match:
            rejected.append(_rejection(store, snapshot_key, "not named snapshot-<shards>-<nonce>.parquet"))
        elif size > MAX_SNAPSHOT_BYTES:
            rejected.append(_rejection(store, snapshot_key, f"{size:,} bytes, over {MAX_SNAPSHOT_BYTES:,}"))
        else:
            candidates.append((int(match.group(1)), snapshot_key))
    for shards, snapshot_key in sorted(candidates, reverse=True):  # widest first; the first one that checks out is used
        try:
            pairs = _snapshot_pairs(store.read_bounded(snapshot_key, MAX_SNAPSHOT_BYTES), key, shards)
        except FileNotFoundError:
            continue
        except (TooLargeError, ValueError) as error:
            rejected.append(_rejection(store, snapshot_key, str(error)))
            continue
        return pairs
    return pd.DataFrame(columns=INDEX_COLUMNS, dtype=object)


def _snapshot_pairs(data: bytes, key: str, shards: int) -> pd.DataFrame:
    """A snapshot's rows, or ValueError saying what is wrong with them."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"not a Parquet table ({error})") from None
    if table.schema.names != INDEX_COLUMNS or not all(pa.types.is_string(t) for t in table.schema.types):
        raise ValueError(f"columns {table.schema.names}, not {INDEX_COLUMNS} (strings)")
    pairs = table.to_pandas()
    if pairs.isna().any().any():
        raise ValueError("empty cells")
    if not (
        pairs["cv_id"].str.fullmatch(_ID.pattern).all()
        and pairs["shard_id"].str.fullmatch(_ID.pattern).all()
        and pairs["sha256"].str.fullmatch(_DIGEST.pattern).all()
    ):
        raise ValueError("a CV id, shard id or sha256 is not hex of its length")
    groups = pairs.groupby("shard_id", sort=False)
    if groups.ngroups != shards:
        raise ValueError(f"holds {groups.ngroups:,} shards, its name says {shards:,}")
    if (groups["sha256"].nunique() != 1).any():
        raise ValueError("a shard with two sha256")
    for shard, cv_ids in groups["cv_id"]:
        if shard_id(key, cv_ids.unique()) != shard:
            raise ValueError(f"shard {shard} is not the id of the CVs listed for it")
    return pairs


def _write_snapshot(store: ArtifactStore, prefix: str, pairs: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(
        pairs[INDEX_COLUMNS].drop_duplicates(["cv_id", "shard_id"]), schema=INDEX_SCHEMA, preserve_index=False
    )
    shards = len(set(pairs["shard_id"]))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.write_bytes(f"{prefix}/index/snapshot-{shards:010d}-{uuid.uuid4().hex[:12]}.parquet", buffer.getvalue())


def plan_shards(cv_ids: list[str], cached: CacheIndex, settings: ExtractionSettings) -> list[Shard]:
    """Shards of the CVs the cache does not cover, in a deterministic order."""
    return shards_of(cached.missing(cv_ids).tolist(), settings)


def shards_of(cv_ids: list[str], settings: ExtractionSettings) -> list[Shard]:
    """These CVs (sorted, unique) in shards of `shard_size`."""
    key, ids, size = settings.cache_key(), sorted(set(cv_ids)), settings.shard_size
    return [Shard(shard_id(key, ids[i : i + size]), tuple(ids[i : i + size])) for i in range(0, len(ids), size)]


def _shard(cv_ids: tuple[str, ...], settings: ExtractionSettings) -> Shard:
    return Shard(shard_id=shard_id(settings.cache_key(), cv_ids), cv_ids=tuple(sorted(cv_ids)))


def store_shard(store: ArtifactStore, settings: ExtractionSettings, shard: Shard, keywords: pd.DataFrame) -> str:
    """The shard's keywords, then its index part with their sha256: a part is never listed before its keywords are
    complete, and it says what they are."""
    buffer = io.BytesIO()
    keywords[KEYWORD_COLUMNS].to_parquet(buffer, index=False)
    data = buffer.getvalue()
    prefix = cache_prefix(settings)
    location = store.write_bytes(f"{prefix}/{shard.shard_id}.parquet", data)
    part = {"cv_ids": list(shard.cv_ids), "sha256": hashlib.sha256(data).hexdigest()}
    store.write_json(f"{prefix}/index/parts/{shard.shard_id}.json", part)
    return location


# --- assembly: a run's keywords from the cache, every shard checked ---------------------------------------------------


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
            verifier = _Verifier(store, settings, index)
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
    verifier = _Verifier(store, settings, index)
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


class _Verifier:
    """Reads shards through an index and keeps, per CV, the keywords of its first holder that passes every check."""

    def __init__(self, store: ArtifactStore, settings: ExtractionSettings, index: CacheIndex):
        self.store, self.settings, self.key = store, settings, settings.cache_key()
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
            for shard, table in zip(shards, _parallel(lambda shard: self._checked(shard, joined), shards)):
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
        if not _ID.fullmatch(shard):  # the run's own index is in the storage too: never a path
            self.rejected.append(
                {
                    "entry": self.store.location(self.prefix),
                    "reason": f"{shard!r} is not a shard id",
                    "shard_id": shard,
                    "sha256": self.digests.get(shard, ""),
                }
            )
            return None
        try:
            data = self.store.read_bounded(f"{self.prefix}/{shard}.parquet", MAX_SHARD_BYTES)
        except FileNotFoundError:
            data, problem = None, "its keywords are missing"
        except TooLargeError as error:
            data, problem = None, str(error)
        if data is not None and hashlib.sha256(data).hexdigest() != self.digests.get(shard):
            # the digest came from a snapshot, or from nowhere yet (a shard this run planned): the part is the truth
            part = _read_part(self.store, self.key, shard, f"{self.prefix}/index/parts/{shard}.json")
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
        self.rejected.append(
            {
                "entry": self.store.location(f"{self.prefix}/{shard}.parquet"),
                "reason": problem,
                "shard_id": shard,
                "sha256": self.digests.get(shard, ""),
            }
        )
        return None

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
