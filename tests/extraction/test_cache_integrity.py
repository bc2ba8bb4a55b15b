"""A shared store whose caches anyone may write: what a planted or damaged entry can still do (nothing to results).

Each test plants what issue 20's audit planted, in a real store (a local directory, and moto's S3 server), and
checks that the next read or run gives what a clean one gives, names what it rejected, and never fails for it.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from ml_headcount.config import ExtractionSettings, IngestSettings, StorageSettings, load_settings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.extraction import cache as extraction_cache
from ml_headcount.extraction.cache import cache_key
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout
from ml_headcount.runs.stage_cache import cached_stage
from tests.conftest import RATED_CVS
from tests.extraction.test_extraction_cache import SETTINGS, store_all, texts_of, words_as_keywords


@pytest.fixture(scope="module")
def rated() -> pd.DataFrame:
    return ingest(str(RATED_CVS), IngestSettings()).cvs


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(StorageSettings(url=str(tmp_path / "store")))
    return ArtifactStore(StorageSettings(url=f"s3://{request.getfixturevalue('bucket')}/ml"))


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def plant_shard(
    store: ArtifactStore,
    settings: ExtractionSettings,
    shard_id: str,
    cv_ids: list[str],
    keywords: pd.DataFrame,
    digest: str | None = None,
) -> str:
    """A shard as a writer of the bucket could add it: keywords and a part whose sha256 matches them (or `digest`)."""
    prefix = extraction_cache.cache_prefix(settings)
    data = parquet_bytes(keywords)
    store.write_bytes(f"{prefix}/{shard_id}.parquet", data)
    store.write_json(
        f"{prefix}/index/parts/{shard_id}.json",
        {"cv_ids": cv_ids, "sha256": digest or hashlib.sha256(data).hexdigest()},
    )
    return store.location(f"{prefix}/{shard_id}.parquet")


def plant_index_garbage(store: ArtifactStore, settings: ExtractionSettings, victim: str) -> list[str]:
    """Finding 3's plantings: a path in a snapshot, a garbage snapshot, one named wider than every real one, a part
    without cv_ids, a part nested too deeply to parse. Returns the keys planted."""
    prefix = extraction_cache.cache_prefix(settings)
    planted = {
        f"{prefix}/index/snapshot-0000000099-aaaaaaaaaaaa.parquet": parquet_bytes(
            pd.DataFrame({"cv_id": [victim], "shard_id": ["../../../../etc"], "sha256": ["0" * 64]})
        ),
        f"{prefix}/index/snapshot-0000000098-bbbbbbbbbbbb.parquet": b"PAR1 not a snapshot at all",
        f"{prefix}/index/snapshot-9999999999-cccccccccccc.parquet": parquet_bytes(
            pd.DataFrame(
                {
                    "cv_id": [victim],
                    "shard_id": [extraction_cache.shard_id(cache_key(settings), [victim])],
                    "sha256": ["0" * 64],
                }
            )
        ),
        f"{prefix}/index/parts/{'1' * 16}.json": json.dumps({"sha256": "0" * 64}).encode(),
        f"{prefix}/index/parts/{'2' * 16}.json": b"[" * 200_000,
    }
    for key, data in planted.items():
        store.write_bytes(key, data)
    return list(planted)


def test_planted_and_damaged_extraction_entries_never_change_the_keywords(store, rated):
    cvs = rated.head(80)
    shards = store_all(store, cvs)  # 20 shards: more unfolded parts than COMPACT_AFTER
    extraction_cache.cached_shards(store, SETTINGS)  # the real snapshot
    clean = extraction_cache.load_keywords(store, SETTINGS, texts_of(cvs))
    key = cache_key(SETTINGS)
    by_id = cvs.set_index("cv_id", drop=False)
    victim, other = cvs["cv_id"].iloc[0], cvs["cv_id"].iloc[1]
    victim_keywords = words_as_keywords(by_id.loc[[victim]])

    # 1. the audit's planting: a part and keywords for the victim under the smallest id there is...
    plant_shard(store, SETTINGS, "0" * 16, [victim], victim_keywords.assign(keyword="pwned keyword"))
    # ... and under the one valid id of {victim}: the id checks out, the keyword does not occur in the victim's text
    single = extraction_cache.shard_id(key, [victim])
    pwned = plant_shard(
        store,
        SETTINGS,
        single,
        [victim],
        victim_keywords.assign(keyword=["pwned keyword", *victim_keywords["keyword"][1:]]),
    )
    # a part listing the victim whose keywords leave it out: it would get no keywords at all
    pair = sorted([victim, other])
    silent = plant_shard(
        store, SETTINGS, extraction_cache.shard_id(key, pair), pair, words_as_keywords(by_id.loc[[other]])
    )
    # 3. garbage in the index
    garbage = plant_index_garbage(store, SETTINGS, victim)
    # a real shard damaged in place: its keywords no longer match the sha256 its part records
    damaged = next(s for s in shards if victim not in s.cv_ids and other not in s.cv_ids)
    damaged_key = f"{extraction_cache.cache_prefix(SETTINGS)}/{damaged.shard_id}.parquet"
    store.write_bytes(damaged_key, parquet_bytes(words_as_keywords(by_id.loc[list(damaged.cv_ids)]).assign(score=0.99)))

    index = extraction_cache.cached_shards(store, SETTINGS)
    rejected_in_index = {entry["entry"] for entry in index.rejected}
    assert {store.location(k) for k in garbage} <= rejected_in_index
    assert store.location(f"{extraction_cache.cache_prefix(SETTINGS)}/index/parts/{'0' * 16}.json") in rejected_in_index
    assert not any("/etc" in shard for shard in index.pairs["shard_id"]), "a path from a snapshot reached the index"
    assert extraction_cache.plan_shards(cvs["cv_id"].tolist(), index, SETTINGS) == []

    texts = extraction_cache.CvTexts.of(texts_of(cvs), SETTINGS)
    assembly = extraction_cache.write_run_keywords(
        store, SETTINGS, texts, "runs/r/keywords.parquet", index.for_cvs(cvs["cv_id"])
    )
    reasons = {entry["entry"]: entry["reason"] for entry in assembly.rejected}
    assert "'pwned keyword' is not a candidate" in reasons[pwned]
    assert f"no keywords for CV {victim}" in reasons[silent]
    assert "sha256" in reasons[store.location(damaged_key)]
    # the damaged shard's CVs have no other holder: the run must extract them again, and writes nothing meanwhile
    assert (
        assembly.unresolved == sorted(damaged.cv_ids)
        and assembly.rows == 0
        and not store.exists("runs/r/keywords.parquet")
    )

    # what the flow does next (tasks.extraction.reextraction_shards): extract them again, then assemble
    again = extraction_cache.shards_of(assembly.unresolved, SETTINGS)
    assert [s.shard_id for s in again] == [damaged.shard_id], "the same CVs: the same shard, repaired in place"
    for shard in again:
        extraction_cache.store_shard(store, SETTINGS, shard, words_as_keywords(by_id.loc[list(shard.cv_ids)]))
    run_index = (
        index.for_cvs(cvs["cv_id"])
        .without([(e["shard_id"], e["sha256"]) for e in assembly.rejected])
        .with_shards(again)
    )
    repaired = extraction_cache.write_run_keywords(store, SETTINGS, texts, "runs/r/keywords.parquet", run_index)
    assert not repaired.unresolved and not repaired.rejected and repaired.rows == len(clean)
    pd.testing.assert_frame_equal(store.read_parquet("runs/r/keywords.parquet"), clean)
    assert "pwned" not in " ".join(store.read_parquet("runs/r/keywords.parquet")["keyword"])


def test_a_damaged_snapshot_digest_falls_back_to_the_part(tmp_path, rated):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    cvs = rated.head(80)
    store_all(store, cvs)
    index = extraction_cache.cached_shards(store, SETTINGS)  # compacts
    snapshot_key = next(k for k in store.list(f"{extraction_cache.cache_prefix(SETTINGS)}/index") if "snapshot-" in k)
    pairs = store.read_parquet(snapshot_key)
    store.write_parquet(
        snapshot_key, pairs.assign(sha256="f" * 64)
    )  # every digest wrong: the parts still say the truth
    assembly = extraction_cache.write_run_keywords(
        store,
        SETTINGS,
        extraction_cache.CvTexts.of(texts_of(cvs), SETTINGS),
        "runs/r/keywords.parquet",
        extraction_cache.cached_shards(store, SETTINGS),
    )
    assert not assembly.unresolved and not assembly.rejected and assembly.rows == 400 and len(index) == 20


def test_a_stage_cache_entry_is_checked_against_its_digests_and_its_key(store):
    computed = []

    def compute(run: str, lists: dict):
        def write() -> dict:
            computed.append(run)
            store.write_json(f"runs/{run}/lists.json", lists)
            return {"input_sha256": "a" * 64, "lists": 1}

        return write

    clean = {"broad": ["pytorch"]}
    assert not cached_stage(store, "scores", "k", ["runs/a/lists.json"], compute("a", clean)).cached
    store.write_json("cache/scores/k/lists.json", {"broad": ["pwned"]})  # the artifact changed under its summary
    second = cached_stage(store, "scores", "k", ["runs/b/lists.json"], compute("b", clean))
    assert not second.cached and "lists.json differ from the sha256" in second.rejected[0]["reason"]
    assert store.read_json("runs/b/lists.json") == clean and store.read_json("cache/scores/k/lists.json") == clean

    # an entry for other input, and a summary that is no summary
    assert (
        "is for other input"
        in cached_stage(
            store, "scores", "k", ["runs/c/lists.json"], compute("c", clean), expect={"input_sha256": "b" * 64}
        ).rejected[0]["reason"]
    )
    store.write_bytes("cache/scores/k/summary.json", b"[" * 100_000)
    assert (
        "not JSON"
        in cached_stage(store, "scores", "k", ["runs/d/lists.json"], compute("d", clean)).rejected[0]["reason"]
    )
    assert cached_stage(store, "scores", "k", ["runs/e/lists.json"], compute("e", clean)).cached
    assert computed == ["a", "b", "c", "d"]


def test_the_ingest_key_is_the_digest_ingestion_took(tmp_path, monkeypatch):
    """A file appended to between the lookup's read and ingestion is cached under what ingestion read."""
    import tasks.ingest

    names = ["alpha", "beta", "gamma"]
    lines = (
        ["cv_text,category"]
        + [f"Machine learning researcher {n} training deep models,1" for n in names]
        + [f"Sales manager {n} for retail accounts and clients,0" for n in names]
    )
    source = tmp_path / "cvs.csv"
    source.write_text("\n".join(lines) + "\n")
    settings = load_settings(storage={"url": str(tmp_path / "store")})
    before = tasks.ingest.file_sha256

    def then_appended(url, options=None):
        digest = before(url, options)
        with open(url, "a") as handle:
            handle.write("Data engineer building pipelines for the analytics team,0\n")
        return digest

    monkeypatch.setattr(tasks.ingest, "file_sha256", then_appended)
    first = tasks.ingest.cleaned_cvs(ArtifactStore(settings.storage), str(source), settings, RunLayout("first"))
    assert (
        first.summary["cvs"] == 7 and first.summary["input_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    )
    monkeypatch.setattr(tasks.ingest, "file_sha256", before)

    source.write_text("\n".join(lines) + "\n")  # the file as the lookup read it: its 6 CVs, not the cached 7
    second = tasks.ingest.cleaned_cvs(ArtifactStore(settings.storage), str(source), settings, RunLayout("second"))
    assert second.summary["cvs"] == 6 and not second.cached
    third = tasks.ingest.cleaned_cvs(ArtifactStore(settings.storage), str(source), settings, RunLayout("third"))
    assert third.cached and third.summary["cvs"] == 6
    assert len(pd.read_parquet(Path(settings.storage.url) / "runs" / "third" / "cvs.parquet")) == 6


# --- the same plantings in a run's store: the next run gives a clean run's artifacts ---------------------------------

# every artifact of a run that holds a result (the manifest, report.md and the plot say when and how it was made)
RESULT_ARTIFACTS = [
    "cvs.parquet",
    "rejected.csv",
    "keywords.parquet",
    "category_keywords.csv",
    "discriminative_keywords.csv",
    "keyword_lists.json",
    "heldout_matches.parquet",
    "clusters.json",
]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory, rated_cvs) -> Path:
    short = rated_cvs[rated_cvs["cv_text"].str.len().between(200, 700)]
    sample = pd.concat([short[short["category"] == c].head(4) for c in (1, 0)])
    path = tmp_path_factory.mktemp("data") / "small.csv"
    sample.to_csv(path, index=False)
    return path


def flow_settings(url: str):
    return load_settings(storage={"url": url}, extraction={"ngram_max": 2, "top_n": 10, "shard_size": 4})


@pytest.fixture(scope="module")
def clean_store(prefect_harness, small_csv, tmp_path_factory) -> Path:
    """A store after one clean run (`runs/clean`), copied aside before anything is planted in it."""
    from flows.cv_keywords import cv_keywords

    storage = tmp_path_factory.mktemp("clean") / "store"
    cv_keywords(str(small_csv), settings=flow_settings(str(storage)), run_id="clean")
    return storage


def plant_in_run_store(store: ArtifactStore, settings) -> dict[str, list[str]]:
    """Findings 1 and 2 (and, for a local store, 3 and 4) planted in a store a clean run left: returns what was
    planted, by finding. The shard damaged in place is the first one extracted, whose re-extraction then starts
    from the same state (an empty phrase cache) as it did."""
    extraction = settings.extraction
    prefix = extraction_cache.cache_prefix(extraction)
    run = "runs/clean"
    cvs = store.read_parquet(f"{run}/cvs.parquet")
    index = extraction_cache.cached_shards(store, extraction)
    shards = sorted(index.pairs.groupby("shard_id")["cv_id"].agg(sorted).items(), key=lambda item: item[1])
    first, second = shards[0], shards[1]
    keywords = store.read_parquet(f"{run}/keywords.parquet")
    planted: dict[str, list[str]] = {}

    # 1: the victim's keywords planted under the valid id of {victim}, "pwned keyword" first
    victim = second[1][0]
    own = keywords[keywords["cv_id"] == victim]
    pwned = plant_shard(
        store,
        extraction,
        extraction_cache.shard_id(cache_key(extraction), [victim]),
        [victim],
        own.assign(keyword=["pwned keyword", *own["keyword"][1:]]),
    )
    damaged = f"{prefix}/{first[0]}.parquet"
    store.write_bytes(
        damaged, parquet_bytes(keywords[keywords["cv_id"].isin(first[1])].assign(keyword="pwned keyword"))
    )
    planted["1"] = [pwned, store.location(damaged)]

    # 2: five labels flipped in the ingest entry's cvs.parquet; the scores entry's lists emptied
    entries = {stage: _only_entry(store, stage) for stage in ("ingest", "scores")}
    flipped = cvs.copy()
    flipped.loc[:4, "category"] = flipped.loc[:4, "category"].map({"0": "1", "1": "0"})
    store.write_parquet(f"{entries['ingest']}/cvs.parquet", flipped)
    lists = store.read_json(f"{entries['scores']}/keyword_lists.json")
    store.write_json(
        f"{entries['scores']}/keyword_lists.json",
        {c: {n: {**e, "keywords": []} for n, e in by.items()} for c, by in lists.items()},
    )
    planted["2"] = [store.location(entries["ingest"]), store.location(entries["scores"])]
    return planted


def _only_entry(store: ArtifactStore, stage: str) -> str:
    entries = {key.rsplit("/", 1)[0] for key in _keys_below(store, f"cache/{stage}")}
    assert len(entries) == 1, entries
    return entries.pop()


def _keys_below(store: ArtifactStore, prefix: str) -> list[str]:
    base = store.root.rstrip("/") + "/"
    return [path.removeprefix(base) for path in store.fs.find(f"{base}{prefix}")]


def assert_clean_results(store: ArtifactStore, location: str, clean: Path) -> None:
    run = location.rsplit("/runs/", 1)[1]
    for name in RESULT_ARTIFACTS:
        assert store.read_bytes(f"runs/{run}/{name}") == (clean / "runs" / "clean" / name).read_bytes(), name


def test_a_run_on_a_store_planted_with_findings_1_to_4_gives_the_clean_runs_artifacts(clean_store, small_csv, tmp_path):
    import shutil

    from flows.cli import main
    from flows.cv_keywords import cv_keywords

    storage = tmp_path / "store"
    shutil.copytree(clean_store, storage)
    settings = flow_settings(str(storage))
    store = ArtifactStore(settings.storage)
    planted = plant_in_run_store(store, settings)
    victim = store.read_parquet("runs/clean/cvs.parquet")["cv_id"].iloc[0]
    planted["3"] = [store.location(k) for k in plant_index_garbage(store, settings.extraction, victim)]
    # 4: latest.json pointing out of the store, "completed" in the future so that no run would ever move it
    other = tmp_path / "other"
    shutil.copytree(clean_store / "runs" / "clean", other / "runs" / "x")
    (other / "runs" / "x" / "manifest.json").unlink()
    store.write_json("runs/latest.json", {"run_id": "../../other/runs/x", "completed_at": "9999-12-31T00:00:00+00:00"})
    assert main(["apply", "latest", str(small_csv), "--storage-url", str(storage)]) == 2
    assert not (other / "filtered").exists() and not any(p.name == "manifest.json" for p in other.rglob("*"))

    location = cv_keywords(str(small_csv), settings=settings, run_id="after")

    assert_clean_results(store, location, clean_store)
    manifest = json.loads(store.read_bytes("runs/after/manifest.json"))
    rejected = {entry["entry"] for entry in manifest["cache_rejected"]}
    for finding in ("1", "2", "3"):
        assert set(planted[finding]) <= rejected, (finding, set(planted[finding]) - rejected)
    assert manifest["extraction"]["cvs_extracted"] == 4, "the damaged shard's CVs, extracted again"
    assert json.loads(store.read_bytes("runs/latest.json"))["run_id"] == "after"
    assert "cache entries in the storage failed their checks" in store.read_bytes("runs/after/report.md").decode()


def test_a_run_on_an_s3_store_planted_with_findings_1_and_2_gives_the_clean_runs_artifacts(
    clean_store, small_csv, bucket, s3_endpoint
):
    import s3fs

    from flows.cv_keywords import cv_keywords

    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    s3.put(str(clean_store) + "/", f"{bucket}/ml/", recursive=True)
    settings = flow_settings(f"s3://{bucket}/ml")
    store = ArtifactStore(settings.storage)
    planted = plant_in_run_store(store, settings)

    location = cv_keywords(str(small_csv), settings=settings, run_id="after")

    assert_clean_results(store, location, clean_store)
    rejected = {entry["entry"] for entry in json.loads(store.read_bytes("runs/after/manifest.json"))["cache_rejected"]}
    assert set(planted["1"]) | set(planted["2"]) <= rejected


# --- the model in the cache key: its weights, not its name ---------------------------------------------------------


def test_a_local_model_is_keyed_by_its_weights_not_its_path(tmp_path, monkeypatch):

    model = tmp_path / "my-model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (model / "model.safetensors").write_bytes(b"weights before retraining")
    (model / "onnx").mkdir()
    (model / "onnx" / "model.onnx").write_bytes(b"a converted copy, not what is loaded")
    settings = ExtractionSettings(model=str(model))
    before = cache_key(settings)

    (model / "model.safetensors").write_bytes(b"weights after retraining!")  # same path, same size, new weights
    retrained = cache_key(settings)
    assert retrained != before, "a retrained model reuses the keywords of its old weights"
    (model / "onnx" / "model.onnx").write_bytes(b"another converted copy")
    (model / "README.md").write_text("notes")
    assert cache_key(settings) == retrained, "only what the model computes with is in its key"

    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda file, *a, **k: (reads.append(str(file)), real_open(file, *a, **k))[1])
    for _ in range(3):
        cache_key(settings)
    assert not [r for r in reads if "my-model" in r], "hashed once per process and model state, not per key"


def test_the_packaged_model_is_keyed_by_its_files_and_a_hub_name_by_itself():
    from ml_headcount.extraction import encoders

    digest = encoders.model_digest(ExtractionSettings().model)
    assert digest is not None and len(digest) == 64
    assert encoders.model_digest("sentence-transformers/all-mpnet-base-v2") is None  # not local: its hub name names it
    assert cache_key(ExtractionSettings(model="all-mpnet-base-v2")) != cache_key(ExtractionSettings())
