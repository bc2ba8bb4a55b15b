"""Shards: the unit the cache stores, named by the hash of their CV ids under a settings key."""

from __future__ import annotations

import hashlib
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from ml_headcount.config import ExtractionSettings, result_fields
from ml_headcount.extraction.encoders import model_digest
from ml_headcount.extraction.extractor import KEYWORD_COLUMNS
from ml_headcount.io.storage import ArtifactStore

# Part of every extraction cache key: bump when the same settings would give other keywords, or the cache's format
# changes. 3: entries record their Parquet's sha256; keys hold local models' weight digests.
EXTRACTION_VERSION = "3"


# Part of fast mode's cache keys only, so that changing fast mode leaves exact mode's caches valid.
# 2: static vectors of the model's tokens for every candidate (1 embedded near-picks with the transformer).
FAST_MODE_VERSION = "2"


# concurrent GETs: object stores answer in parallel, and a local disk does not mind
READERS = 16


MAX_SHARD_BYTES = 256 * 2**20


KEYWORD_SCHEMA = pa.schema(
    [("cv_id", pa.string()), ("keyword", pa.string()), ("score", pa.float64()), ("rank", pa.int64())]
)


SHARD_ID = re.compile(r"[0-9a-f]{16}")


DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Shard:
    shard_id: str
    cv_ids: tuple[str, ...]


def cache_key(settings: ExtractionSettings) -> str:
    """Everything that changes extracted keywords, and nothing else (no machine-only field): the model by its weights'
    digest where it is local (the packaged default, a directory), by its hub name otherwise."""
    relevant = result_fields(settings)
    if digest := model_digest(settings.model):
        relevant["model_sha256"] = digest
    if settings.mode == "fast":
        relevant.pop("screen_margin")  # exact mode's knob changes nothing here
        relevant["fast_mode_version"] = FAST_MODE_VERSION
    relevant["extraction_version"] = EXTRACTION_VERSION
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def cache_prefix(settings: ExtractionSettings, key: str | None = None) -> str:
    return f"cache/keywords/{key or cache_key(settings)}"


def parts_prefix(settings: ExtractionSettings, key: str | None = None) -> str:
    return f"{cache_prefix(settings, key)}/index/parts"


def parallel_reads(function, items: list) -> list:
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(function, items))


def shard_id(key: str, cv_ids) -> str:
    """The id of a shard of these CVs under this settings key: what every shard id read is checked against."""
    return hashlib.sha256("\n".join((key, *sorted(cv_ids))).encode()).hexdigest()[:16]


def shards_of(cv_ids: list[str], settings: ExtractionSettings) -> list[Shard]:
    """These CVs (sorted, unique) in shards of `shard_size`."""
    key, ids, size = cache_key(settings), sorted(set(cv_ids)), settings.shard_size
    return [Shard(shard_id(key, ids[i : i + size]), tuple(ids[i : i + size])) for i in range(0, len(ids), size)]


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
