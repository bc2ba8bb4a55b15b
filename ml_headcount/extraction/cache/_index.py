"""The cache's index: its parts, its snapshots, and reading them without trusting either."""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.cache._shards import (
    DIGEST,
    SHARD_ID,
    Shard,
    cache_key,
    cache_prefix,
    parallel_reads,
    parts_prefix,
    shard_id,
    shards_of,
)
from ml_headcount.io.storage import ArtifactStore, TooLargeError

# uncovered parts a read may meet before it writes a snapshot; a run extracting a few shards does not rewrite the index
COMPACT_AFTER = 16


# what is read of the index, at most: a part of 32 CVs is ~700 bytes, a snapshot of 1M CVs ~20 MB
MAX_PART_BYTES = 4 * 2**20


MAX_SNAPSHOT_BYTES = 512 * 2**20


INDEX_SCHEMA = pa.schema([("cv_id", pa.string()), ("shard_id", pa.string()), ("sha256", pa.string())])


INDEX_COLUMNS = ["cv_id", "shard_id", "sha256"]


_SNAPSHOT = re.compile(r"snapshot-(\d{10})-[0-9a-f]{12}\.parquet")


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

    def missing(self, cv_ids: list[str]) -> pd.Index:
        """The CVs no cached shard holds, sorted."""
        return pd.Index(cv_ids).unique().difference(pd.Index(self.pairs["cv_id"].unique())).sort_values()

    def with_shards(self, shards: list[Shard]) -> CacheIndex:
        """This index once these shards are stored: what a run plans, so its assembly need not read the cache's
        index."""
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


def plan_shards(cv_ids: list[str], cached: CacheIndex, settings: ExtractionSettings) -> list[Shard]:
    """Shards of the CVs the cache does not cover, in a deterministic order."""
    return shards_of(cached.missing(cv_ids).tolist(), settings)


def cached_shards(store: ArtifactStore, settings: ExtractionSettings) -> CacheIndex:
    """The cache's index: every valid shard entry and the CVs it covers. Compacts it when many parts are unfolded."""
    key = cache_key(settings)
    prefix = cache_prefix(settings, key)
    rejected: list[dict] = []
    parts = {}
    for part_key, size in store.list_sizes(parts_prefix(settings, key)).items():
        name = part_key.rsplit("/", 1)[-1]
        if not (name.endswith(".json") and SHARD_ID.fullmatch(name.removesuffix(".json"))):
            rejected.append(rejection(store, part_key, "not named <shard id>.json"))
        elif size > MAX_PART_BYTES:
            rejected.append(rejection(store, part_key, f"{size:,} bytes, over {MAX_PART_BYTES:,}"))
        else:
            parts[name.removesuffix(".json")] = part_key
    snapshot = _chosen_snapshot(store, prefix, key, rejected)
    folded = set(snapshot["shard_id"].unique())
    read = parallel_reads(
        lambda item: read_part(store, key, *item), sorted((s, k) for s, k in parts.items() if s not in folded)
    )
    rejected += [entry for entry in read if isinstance(entry, dict) and "reason" in entry]
    unfolded = [entry for entry in read if isinstance(entry, pd.DataFrame)]
    pairs = pd.concat([snapshot, *unfolded], ignore_index=True) if unfolded else snapshot
    if len(unfolded) >= COMPACT_AFTER:
        _write_snapshot(store, prefix, pairs)
    return CacheIndex(pairs, tuple(rejected))


def rejection(store: ArtifactStore, key: str, reason: str) -> dict:
    return {"entry": store.location(key), "reason": reason}


def read_part(store: ArtifactStore, key: str, shard: str, part_key: str) -> pd.DataFrame | dict:
    """A part's (cv_id, shard_id, sha256) rows, or why it is not used."""
    try:
        part = json.loads(store.read_bounded(part_key, MAX_PART_BYTES))
    except FileNotFoundError:
        return {}  # gone since the listing: nothing to use, nothing to report
    except (TooLargeError, ValueError, RecursionError) as error:
        return rejection(store, part_key, str(error) if isinstance(error, TooLargeError) else "not JSON")
    cv_ids = part.get("cv_ids") if isinstance(part, dict) else None
    digest = part.get("sha256") if isinstance(part, dict) else None
    if (
        not isinstance(cv_ids, list)
        or not cv_ids
        or not all(isinstance(c, str) and SHARD_ID.fullmatch(c) for c in cv_ids)
    ):
        return rejection(store, part_key, "no list of CV ids (cv_ids)")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        return rejection(store, part_key, "no sha256 of its keywords")
    if len(set(cv_ids)) != len(cv_ids) or shard_id(key, cv_ids) != shard:
        return rejection(store, part_key, "its shard id is not the id of the CVs it lists")
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
            rejected.append(rejection(store, snapshot_key, "not named snapshot-<shards>-<nonce>.parquet"))
        elif size > MAX_SNAPSHOT_BYTES:
            rejected.append(rejection(store, snapshot_key, f"{size:,} bytes, over {MAX_SNAPSHOT_BYTES:,}"))
        else:
            candidates.append((int(match.group(1)), snapshot_key))
    for shards, snapshot_key in sorted(candidates, reverse=True):  # widest first; the first one that checks out is used
        try:
            pairs = _snapshot_pairs(store.read_bounded(snapshot_key, MAX_SNAPSHOT_BYTES), key, shards)
        except FileNotFoundError:
            continue
        except (TooLargeError, ValueError) as error:
            rejected.append(rejection(store, snapshot_key, str(error)))
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
        pairs["cv_id"].str.fullmatch(SHARD_ID.pattern).all()
        and pairs["shard_id"].str.fullmatch(SHARD_ID.pattern).all()
        and pairs["sha256"].str.fullmatch(DIGEST.pattern).all()
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
