"""Fill the extraction cache for a synthetic corpus, running the model only on the real CVs it recombines.

    uv run python benchmarks/fill_cache.py CORPUS.csv STORE_URL [--sources N] [--sources-store URL]

What it does, exactly:
1. The real model extracts keywords (the pipeline's `KeywordExtractor`, default
   settings, shards of `shard_size`) from the source CVs the corpus was made of
   (`make_corpus.source_cvs`, same --sources); those go to the extraction cache
   under --sources-store, so every later corpus reuses them. CVs/s is printed: it
   prices the model work this benchmark skips.
2. Each pool sentence gets its candidate keywords (KeyBERT's own
   CountVectorizer analyzer on the cleaned sentence) and the model's keywords of
   its source CV that are among them (with the model's scores).
3. Each synthetic CV (clean text already, so its cv_id is its text's hash, as
   ingestion computes it; checked on the first 200) gets a keyword set built
   without the model: the best-scored model keywords of its
   sentences, up to half of top_n, then candidates of its sentences drawn at
   random (seeded by the CV) up to top_n, scored below the model's picks. The
   random half stands for MMR's CV-specific picks, so that the vocabulary grows
   with the corpus as it does on real CVs; the model half keeps real keywords
   and scores in the lists.
4. The sets are stored through `extraction_cache.store_shard`, shard by shard,
   in the shards the flow itself would plan: the cache then holds exactly what
   a cold run's extraction would have left (keywords and index parts, no
   snapshot yet).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_corpus import provenance_path, sentence_pool, source_cvs  # noqa: E402

from ml_headcount.config import ExtractionSettings, IngestSettings, StorageSettings  # noqa: E402
from ml_headcount.corpus.cleaning import clean_text, text_hash  # noqa: E402
from ml_headcount.corpus.ingest import ingest_table  # noqa: E402
from ml_headcount.extraction import cache as extraction_cache  # noqa: E402
from ml_headcount.extraction.candidates import candidate_vectorizer
from ml_headcount.extraction.extractor import KeywordExtractor, keywords_table  # noqa: E402
from ml_headcount.io.storage import ArtifactStore  # noqa: E402

SOURCES_STORE = Path(tempfile.gettempdir()) / "ml-headcount-bench" / "sources-store"


def source_keywords(
    store: ArtifactStore, settings: ExtractionSettings, sources: pd.DataFrame
) -> tuple[list[list[tuple[str, float]]], float]:
    """The model's keywords of each source CV (cached under the store), and the model's CVs/s (0 when all were
    cached)."""
    cvs = ingest_table(sources, "sources", IngestSettings(min_text_chars=1)).cvs
    cached = extraction_cache.cached_shards(store, settings)
    shards = extraction_cache.plan_shards(cvs["cv_id"].tolist(), cached, settings)
    texts = dict(zip(cvs["cv_id"], cvs["text"]))
    extractor = KeywordExtractor(settings)
    began = time.perf_counter()
    for shard in shards:
        results = extractor.extract([texts[i] for i in shard.cv_ids])
        extraction_cache.store_shard(store, settings, shard, keywords_table(list(shard.cv_ids), results))
    seconds = time.perf_counter() - began
    rate = sum(len(s.cv_ids) for s in shards) / seconds if shards else 0.0
    table = extraction_cache.load_keywords(store, settings, cvs.drop_duplicates("cv_id").set_index("cv_id")["text"])
    by_cv = {cv_id: list(zip(g["keyword"], g["score"])) for cv_id, g in table.groupby("cv_id")}
    # source_row is 1-based; a source CV that ingest drops has no keywords
    by_row = {row - 1: by_cv.get(cv_id, []) for row, cv_id in zip(cvs["source_row"], cvs["cv_id"])}
    return [by_row.get(i, []) for i in range(len(sources))], rate


def sentence_keywords(pool: pd.DataFrame, model_keywords: list[list[tuple[str, float]]], settings: ExtractionSettings):
    """Per pool sentence: its candidate keywords, and its source CV's model keywords among them."""
    analyse = candidate_vectorizer(settings).build_analyzer()
    candidates, model = [], []
    for source, sentence in zip(pool["source"], pool["sentence"]):
        found = sorted(set(analyse(sentence)))
        present = set(found)
        candidates.append(found)
        model.append([(k, s) for k, s in model_keywords[source] if k in present])
    return candidates, model


def keyword_set(cv_id: str, sentences: np.ndarray, candidates, model, top_n: int) -> list[tuple[str, float]]:
    best: dict[str, float] = {}
    for row in sentences:
        for keyword, score in model[row]:
            best[keyword] = max(score, best.get(keyword, 0.0))
    picks = sorted(best.items(), key=lambda item: (-item[1], item[0]))[: top_n // 2]
    chosen = {k for k, _ in picks}
    rng = np.random.default_rng(int(cv_id, 16))
    extra: list[str] = []
    # a random candidate of a random sentence of the CV, until top_n (or too many repeats: a short CV)
    for row, draw in zip(rng.choice(sentences, size=4 * top_n), rng.random(4 * top_n)):
        if len(picks) + len(extra) == top_n:
            break
        if candidates[row] and (keyword := candidates[row][int(draw * len(candidates[row]))]) not in chosen:
            chosen.add(keyword)
            extra.append(keyword)
    floor = min((s for _, s in picks), default=0.5)
    scores = np.sort(rng.uniform(0.5 * floor, floor, size=len(extra)))[::-1]
    return picks + [(k, float(s)) for k, s in zip(extra, scores)]


def fill(
    corpus: Path,
    store: ArtifactStore,
    sources_store: ArtifactStore,
    settings: ExtractionSettings,
    sources_count: int | None,
) -> dict:
    """Fill `store`'s extraction cache for `corpus`; the model's keywords of the source CVs are cached in
    `sources_store`."""
    sources = source_cvs(sources=sources_count)
    model_keywords, rate = source_keywords(sources_store, settings, sources)
    pool = sentence_pool(sources)
    candidates, model = sentence_keywords(pool, model_keywords, settings)
    provenance = pd.read_parquet(provenance_path(corpus))["sentences"].to_numpy()
    texts = pd.read_csv(corpus, usecols=["cv_text"], dtype=str, keep_default_na=False)["cv_text"]
    # the corpus is clean already (make_corpus.sentence_pool), so a CV's id is its text's hash, as ingestion computes it
    if any(clean_text(text, IngestSettings()) != text for text in texts.head(200)):
        raise SystemExit(f"{corpus}: texts are not clean; regenerate it with make_corpus.py")
    cv_ids = [text_hash(text)[:16] for text in texts]
    sentences_of = dict(zip(cv_ids, provenance))
    shards = extraction_cache.plan_shards(cv_ids, extraction_cache.cached_shards(store, settings), settings)
    for shard in shards:
        results = [keyword_set(cv_id, sentences_of[cv_id], candidates, model, settings.top_n) for cv_id in shard.cv_ids]
        extraction_cache.store_shard(store, settings, shard, keywords_table(list(shard.cv_ids), results))
    return {"sources": len(sources), "model_cvs_per_s": rate, "cvs": len(sentences_of), "shards_stored": len(shards)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("store")
    parser.add_argument("--sources", type=int, default=None)
    parser.add_argument("--sources-store", default=str(SOURCES_STORE))
    args = parser.parse_args()
    stores = [ArtifactStore(StorageSettings(url=url)) for url in (args.store, args.sources_store)]
    print(fill(args.corpus, *stores, ExtractionSettings(), args.sources))


if __name__ == "__main__":
    main()
