"""What lets a run grow to millions of CVs: exact fast keyword counting, scores summed batch by batch in worker
processes, a bounded learning sample, and streamed storage."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import ExtractionSettings, IngestSettings, ScoringSettings, Settings, StorageSettings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.extraction.cache import cache_key
from ml_headcount.extraction.candidates import candidate_vectorizer
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists.folds import stratified_sample
from ml_headcount.runs import report
from ml_headcount.runs.stage_cache import StageResult, cached_stage
from ml_headcount.scoring import discriminative
from ml_headcount.scoring.corpus import corpus_scores
from ml_headcount.scoring.matching import KeywordCounter
from tests.conftest import RATED_CVS


def test_keyword_counter_counts_exactly_as_the_vectorizer(rated):
    settings = ExtractionSettings()
    texts = rated["text"].tolist()
    fitted = candidate_vectorizer(settings).fit(texts[:40])
    # every candidate of 40 CVs, plus keywords no text can yield: a stop word inside, 5 tokens, one letter
    vocabulary = sorted(
        set(fitted.get_feature_names_out()) | {"the model", "deep neural network training pipeline", "x"}
    )
    want = candidate_vectorizer(settings, vocabulary=vocabulary).transform(texts).tocsr()
    got = KeywordCounter(vocabulary, settings).counts(texts)
    assert want.nnz > 100_000
    assert got.shape == want.shape and (got != want).nnz == 0


def test_scores_summed_in_batches_by_worker_processes_equal_scores_in_memory(rated_sample_run):
    cvs = pd.read_parquet(rated_sample_run / "cvs.parquet")
    keywords = pd.read_parquet(rated_sample_run / "keywords.parquet")
    extraction, settings = ExtractionSettings(), ScoringSettings()
    vocabulary = sorted(keywords["keyword"].unique())
    want_stats = discriminative.category_keyword_stats(cvs, keywords)
    want = discriminative.discriminative_keywords(
        cvs,
        want_stats,
        discriminative.keyword_counts(cvs["text"].tolist(), vocabulary, extraction),
        vocabulary,
        settings,
    )
    cv_batches = (cvs.iloc[i : i + 7][["text", "category"]] for i in range(0, len(cvs), 7))
    keyword_batches = (keywords.iloc[i : i + 100] for i in range(0, len(keywords), 100))
    stats, got = corpus_scores(
        cv_batches, keyword_batches, cvs.set_index("cv_id")["category"], extraction, settings, workers=2
    )
    assert len(want) > 20
    pd.testing.assert_frame_equal(stats, want_stats, check_exact=False, atol=1e-12)
    pd.testing.assert_frame_equal(got, want, check_exact=False, atol=1e-4)


def test_learning_sample_is_bounded_stratified_and_independent_of_row_order(rated):
    ids, labels = rated["cv_id"].to_numpy(), rated["category"].to_numpy()
    assert stratified_sample(ids, labels, 1000, seed=1).tolist() == list(range(len(ids)))
    rows = stratified_sample(ids, labels, 100, seed=1)
    assert 80 <= len(rows) <= 100 and np.all(np.diff(rows) > 0)
    share = (labels == "1").mean()
    assert abs((labels[rows] == "1").mean() - share) < 0.02
    order = np.random.default_rng(0).permutation(len(ids))
    assert set(ids[order][stratified_sample(ids[order], labels[order], 100, seed=1)]) == set(ids[rows])


@pytest.mark.shared_data
def test_an_ingest_cleaned_by_worker_processes_and_spilled_equals_the_in_memory_one(tmp_path):
    in_memory = ingest(str(RATED_CVS), IngestSettings(chunk_rows=50))
    spilled = ingest(str(RATED_CVS), IngestSettings(chunk_rows=50), spill=tmp_path / "cvs.parquet", workers=2)
    assert len(list(spilled.kept.batches())) > 5  # one per chunk, read back from the file
    pd.testing.assert_frame_equal(spilled.cvs, in_memory.cvs)
    assert spilled.summary() == in_memory.summary()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_streamed_write_appears_whole_or_not_at_all(where, tmp_path, request):
    url = str(tmp_path / "store") if where == "local" else f"s3://{request.getfixturevalue('bucket')}/streamed"
    store = ArtifactStore(StorageSettings(url=url))  # s3: the bucket fixture points AWS_ENDPOINT_URL at moto's server
    batches = [pd.DataFrame({"cv_id": [f"{i}-{j}" for j in range(1000)], "n": np.arange(1000)}) for i in range(5)]
    assert store.write_parquet_batches("table.parquet", iter(batches)) == 5000
    pd.testing.assert_frame_equal(
        pd.concat(store.parquet_batches("table.parquet", rows=700), ignore_index=True),
        pd.concat(batches, ignore_index=True),
    )

    def failing():
        yield batches[0]
        raise RuntimeError("the producer failed half way")

    with pytest.raises(RuntimeError):
        store.write_parquet_batches("broken.parquet", failing())
    assert not store.exists("broken.parquet") and store.list("") == ["table.parquet"]


def test_threads_and_workers_are_machine_settings_outside_every_cache_key():
    assert cache_key(ExtractionSettings(cpu_threads=1)) == cache_key(ExtractionSettings())
    assert Settings(workers=3).cpu_workers() == 3
    assert Settings().cpu_workers() == len(os.sched_getaffinity(0))


def test_a_stage_cache_entry_is_used_only_when_complete(tmp_path):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    computed = []

    def compute(run: str):
        def write() -> dict:
            computed.append(run)
            store.write_json(f"runs/{run}/lists.json", {"broad": ["pytorch"]})
            return {"lists": 1}

        return write

    assert cached_stage(store, "scores", "k", ["runs/a/lists.json"], compute("a")) == StageResult({"lists": 1}, False)
    assert cached_stage(store, "scores", "k", ["runs/b/lists.json"], compute("b")) == StageResult({"lists": 1}, True)
    assert store.read_json("runs/b/lists.json") == {"broad": ["pytorch"]} and computed == ["a"]
    # a crash between the artifacts and the summary: the entry is ignored, recomputed and repaired
    (tmp_path / "cache/scores/k/summary.json").unlink()
    (tmp_path / "cache/scores/k/lists.json").write_text("not what the run wrote")
    assert cached_stage(store, "scores", "k", ["runs/c/lists.json"], compute("c")) == StageResult({"lists": 1}, False)
    assert store.read_json("cache/scores/k/lists.json") == {"broad": ["pytorch"]} and computed == ["a", "c"]


def test_the_top_keywords_plot_shows_the_categories_with_the_most_cvs_and_says_so():
    """150 categories took 132 s to plot into a 15 MB PNG (each category's bars for every other, categories squared):
    the plot shows the 9 with the most CVs, and its title says it is 9 of 150. 60 categories keep the test short."""
    import io

    from PIL import Image

    categories = [f"c{i:03d}" for i in range(60)]
    cvs = {c: 100 + i for i, c in enumerate(categories)}  # c051..c059 have the most
    keywords = [(c, f"{c} keyword {k}", k + 1) for c in categories for k in range(10)]
    discriminative = pd.DataFrame(keywords, columns=["category", "keyword", "rank"])
    category_keywords = pd.DataFrame(
        [(c, keyword, 0.5) for c in categories for _, keyword, _ in keywords[:: len(categories)]],
        columns=["category", "keyword", "rate"],
    )
    figure = report.top_keywords_figure(discriminative, category_keywords, cvs)
    assert figure.get_suptitle() == "the 9 categories with the most CVs, of 60"
    shown = [a.get_title() for a in figure.axes if a.get_visible()]
    assert shown == [f"top keywords of category c{i:03d}" for i in range(51, 60)]
    assert all(len(a.get_legend().get_texts()) == 9 for a in figure.axes if a.get_visible())
    png = report.png_bytes(figure)
    assert len(png) < 1_000_000 and Image.open(io.BytesIO(png)).size[1] < 2500, len(png)
