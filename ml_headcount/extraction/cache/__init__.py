"""The content-keyed cache of extracted keywords, shared by every run and machine, and its index.

Modules: `_shards` (what is stored and its name), `_index` (finding what is stored), `_verifier` (checking it),
`_assembly` (a run's keywords from it).

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

from ml_headcount.extraction.cache._assembly import Assembly, CvTexts, load_keywords, write_run_keywords
from ml_headcount.extraction.cache._index import CacheIndex, cached_shards, plan_shards
from ml_headcount.extraction.cache._shards import (
    KEYWORD_SCHEMA,
    Shard,
    cache_key,
    cache_prefix,
    shard_id,
    shards_of,
    store_shard,
)

__all__ = [
    "KEYWORD_SCHEMA",
    "Assembly",
    "CacheIndex",
    "CvTexts",
    "Shard",
    "cache_key",
    "cache_prefix",
    "cached_shards",
    "load_keywords",
    "plan_shards",
    "shard_id",
    "shards_of",
    "store_shard",
    "write_run_keywords",
]
