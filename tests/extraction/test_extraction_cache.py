"""The extraction cache's index: one read per run, no entry lost to concurrent runs; what a planted entry can do."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest

from ml_headcount.config import ExtractionSettings, StorageSettings
from ml_headcount.extraction import cache as extraction_cache
from ml_headcount.extraction.candidates import CandidateText
from ml_headcount.io.storage import ArtifactStore

SETTINGS = ExtractionSettings(shard_size=4)
CANDIDATES = CandidateText(SETTINGS)


def words_as_keywords(cvs: pd.DataFrame) -> pd.DataFrame:
    """A stand-in for extracted keywords that the cache must return unchanged: each CV's first five distinct
    candidate words (what extraction could have picked)."""
    rows = [
        (cv_id, word, 1.0 / rank, rank)
        for cv_id, text in zip(cvs["cv_id"], cvs["text"])
        for rank, word in enumerate(list(dict.fromkeys(CANDIDATES.joined(text).split()))[:5], start=1)
    ]
    return pd.DataFrame(rows, columns=["cv_id", "keyword", "score", "rank"])


def texts_of(cvs: pd.DataFrame) -> pd.Series:
    return cvs.set_index("cv_id")["text"]


def store_all(store: ArtifactStore, cvs: pd.DataFrame) -> list[extraction_cache.Shard]:
    shards = extraction_cache.plan_shards(
        cvs["cv_id"].tolist(), extraction_cache.cached_shards(store, SETTINGS), SETTINGS
    )
    by_id = cvs.set_index("cv_id", drop=False)
    for shard in shards:
        extraction_cache.store_shard(store, SETTINGS, shard, words_as_keywords(by_id.loc[list(shard.cv_ids)]))
    return shards


def counting_reads(monkeypatch) -> list[str]:
    """Keys read through the store, by any of its readers."""
    reads: list[str] = []
    real_bytes, real_parquet, real_bounded = (
        ArtifactStore.read_bytes,
        ArtifactStore.read_parquet,
        ArtifactStore.read_bounded,
    )
    monkeypatch.setattr(ArtifactStore, "read_bytes", lambda self, key: (reads.append(key), real_bytes(self, key))[1])
    monkeypatch.setattr(
        ArtifactStore,
        "read_parquet",
        lambda self, key, columns=None: (reads.append(key), real_parquet(self, key, columns))[1],
    )
    monkeypatch.setattr(
        ArtifactStore, "read_bounded", lambda self, key, n: (reads.append(key), real_bounded(self, key, n))[1]
    )
    return reads


def test_store_then_assemble_returns_every_keyword_in_cv_then_rank_order(tmp_path, rated):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    cvs = rated.head(40)
    assert len(store_all(store, cvs)) == 10
    table = extraction_cache.load_keywords(store, SETTINGS, texts_of(cvs))
    expected = words_as_keywords(cvs).sort_values(["cv_id", "rank"], ignore_index=True)
    pd.testing.assert_frame_equal(table, expected)
    assert (
        extraction_cache.plan_shards(cvs["cv_id"].tolist(), extraction_cache.cached_shards(store, SETTINGS), SETTINGS)
        == []
    )
    with pytest.raises(KeyError, match="1 CVs have no cached keywords"):
        extraction_cache.load_keywords(store, SETTINGS, texts_of(pd.concat([cvs, rated.iloc[[100]]])))


def test_a_compacted_index_is_one_read_and_assembly_reuses_the_plan(tmp_path, rated, monkeypatch):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    cvs = rated.head(120)
    store_all(store, cvs.head(100))  # 25 shards: more unfolded parts than COMPACT_AFTER
    extraction_cache.cached_shards(store, SETTINGS)  # compacts
    reads = counting_reads(monkeypatch)
    cached = extraction_cache.cached_shards(store, SETTINGS)
    assert len(cached) == 25 and len(reads) == 1 and "/index/snapshot-" in reads[0]

    planned = extraction_cache.plan_shards(cvs["cv_id"].tolist(), cached, SETTINGS)
    assert sum(len(s.cv_ids) for s in planned) == 20
    by_id = cvs.set_index("cv_id", drop=False)
    for shard in planned:
        extraction_cache.store_shard(store, SETTINGS, shard, words_as_keywords(by_id.loc[list(shard.cv_ids)]))
    reads.clear()
    table = extraction_cache.load_keywords(store, SETTINGS, texts_of(cvs), cached.with_shards(planned))
    # what planning learned is the index: no snapshot is read again, only the parts of the shards planned (they give
    # the sha256 their keywords are checked against), and each shard's keywords once
    assert not any("/index/snapshot-" in key for key in reads)
    assert sorted(key.rsplit("/", 1)[-1] for key in reads if "/index/parts/" in key) == sorted(
        f"{s.shard_id}.json" for s in planned
    )
    keyword_reads = [key for key in reads if "/index/" not in key]
    assert len(set(keyword_reads)) == len(keyword_reads) == 30
    pd.testing.assert_frame_equal(table, words_as_keywords(cvs).sort_values(["cv_id", "rank"], ignore_index=True))


def _concurrent_run(url: str, cvs: pd.DataFrame, barrier) -> None:
    """One of two runs sharing a store: stores its shards one by one, reading (and compacting) the index as it goes."""
    store = ArtifactStore(StorageSettings(url=url))
    by_id = cvs.set_index("cv_id", drop=False)
    cv_ids = cvs["cv_id"].tolist()
    barrier.wait()
    for i in range(0, len(cv_ids), SETTINGS.shard_size):
        (shard,) = extraction_cache.shards_of(cv_ids[i : i + SETTINGS.shard_size], SETTINGS)
        extraction_cache.store_shard(
            store, SETTINGS, shard, words_as_keywords(by_id.loc[list(shard.cv_ids)]).query("rank == 1")
        )
        if (i // SETTINGS.shard_size) % 3 == 0:
            extraction_cache.cached_shards(store, SETTINGS)


def assert_no_entry_lost_to_two_concurrent_runs(url: str, rated: pd.DataFrame) -> None:
    cvs = rated.head(400)
    ids = cvs["cv_id"].tolist()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    runs = [context.Process(target=_concurrent_run, args=(url, cvs.iloc[half::2], barrier)) for half in (0, 1)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=300)
        assert run.exitcode == 0
    store = ArtifactStore(StorageSettings(url=url))
    snapshots = [k for k in store.list(f"{extraction_cache.cache_prefix(SETTINGS)}/index") if "snapshot-" in k]
    assert len(snapshots) >= 4  # both runs compacted, several times, while the other stored shards
    cached = extraction_cache.cached_shards(store, SETTINGS)
    assert len(cached) == 100 and extraction_cache.plan_shards(ids, cached, SETTINGS) == []
    assert len(extraction_cache.load_keywords(store, SETTINGS, texts_of(cvs))) == 400


def test_two_concurrent_runs_on_local_storage_lose_no_entry(tmp_path, rated):
    assert_no_entry_lost_to_two_concurrent_runs(str(tmp_path / "store"), rated)


def test_two_concurrent_runs_on_s3_lose_no_entry(bucket, rated):
    assert_no_entry_lost_to_two_concurrent_runs(f"s3://{bucket}/ml", rated)


def test_the_run_table_written_in_chunks_equals_the_one_assembled_whole(tmp_path, rated, monkeypatch):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    cvs = rated.head(50)
    store_all(store, cvs)
    monkeypatch.setattr("ml_headcount.extraction.cache._assembly.ASSEMBLY_CHUNK", 7)  # chunks that cut through shards
    store.write_parquet("runs/r/cvs.parquet", cvs)
    texts = extraction_cache.CvTexts.from_run(store, "runs/r/cvs.parquet", SETTINGS, batch=9)  # spilled: 8 chunks
    assembly = extraction_cache.write_run_keywords(store, SETTINGS, texts, "runs/r/keywords.parquet")
    written = store.read_parquet("runs/r/keywords.parquet")
    assert assembly.rows == len(written) == 250 and not assembly.unresolved and not assembly.rejected
    pd.testing.assert_frame_equal(written, extraction_cache.load_keywords(store, SETTINGS, texts_of(cvs)))
