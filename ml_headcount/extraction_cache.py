"""The content-keyed cache of extracted keywords, shared by every run and machine.

Layout under the store: `cache/keywords/<settings key>/<shard id>.parquet`
(the keywords) and `<shard id>.json` (the CV ids it covers), written in that
order, so a listed .json always has its complete .parquet. A CV's id is the
hash of its cleaned text, and the settings key covers the model, every
extraction parameter and the extraction code version: a CV is extracted at most
once per settings key, whichever run or shard it arrives in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from ml_headcount.config import ExtractionSettings
from ml_headcount.keywords import KEYWORD_COLUMNS
from ml_headcount.storage import ArtifactStore


@dataclass(frozen=True)
class Shard:
    shard_id: str
    cv_ids: tuple[str, ...]


def cache_prefix(settings: ExtractionSettings) -> str:
    return f"cache/keywords/{settings.cache_key()}"


def cached_shards(store: ArtifactStore, settings: ExtractionSettings) -> dict[str, list[str]]:
    """Shard id -> the CV ids it covers, for every complete shard in the cache."""
    prefix = cache_prefix(settings)
    return {
        key.rsplit("/", 1)[-1].removesuffix(".json"): store.read_json(key)["cv_ids"]
        for key in store.list(prefix)
        if key.endswith(".json")
    }


def plan_shards(cv_ids: list[str], cached: dict[str, list[str]], settings: ExtractionSettings) -> list[Shard]:
    """Shards of the CVs the cache does not cover, in a deterministic order."""
    covered = {cv_id for ids in cached.values() for cv_id in ids}
    missing = sorted(set(cv_ids) - covered)
    size = settings.shard_size
    return [_shard(tuple(missing[i : i + size]), settings) for i in range(0, len(missing), size)]


def _shard(cv_ids: tuple[str, ...], settings: ExtractionSettings) -> Shard:
    digest = hashlib.sha256("\n".join((settings.cache_key(), *cv_ids)).encode()).hexdigest()[:16]
    return Shard(shard_id=digest, cv_ids=cv_ids)


def store_shard(store: ArtifactStore, settings: ExtractionSettings, shard: Shard, keywords: pd.DataFrame) -> str:
    prefix = cache_prefix(settings)
    store.write_parquet(f"{prefix}/{shard.shard_id}.parquet", keywords[KEYWORD_COLUMNS])
    return store.write_json(f"{prefix}/{shard.shard_id}.json", {"cv_ids": list(shard.cv_ids)})


def load_keywords(store: ArtifactStore, settings: ExtractionSettings, cv_ids: list[str]) -> pd.DataFrame:
    """The cached keywords of these CVs, ordered by CV id then rank; KeyError if any is missing."""
    wanted = set(cv_ids)
    prefix = cache_prefix(settings)
    parts, seen = [], set()
    for shard_id, ids in sorted(cached_shards(store, settings).items()):
        useful = (set(ids) & wanted) - seen
        if not useful:
            continue
        table = store.read_parquet(f"{prefix}/{shard_id}.parquet")
        parts.append(table[table["cv_id"].isin(useful)])
        seen |= useful
    if wanted - seen:
        raise KeyError(f"{len(wanted - seen)} CVs have no cached keywords under {store.location(prefix)}")
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=KEYWORD_COLUMNS)
    return table.sort_values(["cv_id", "rank"], ignore_index=True)
