"""Tasks that produce the run's keyword scores, keyword lists, their search queries and cross-validated quality."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task

from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists import learners, text_classifier
from ml_headcount.lists import quality as filter_quality
from ml_headcount.lists import queries as search_queries
from ml_headcount.lists.folds import stratified_sample
from ml_headcount.progress import heartbeat, still_running
from ml_headcount.runs.layout import RunLayout
from ml_headcount.runs.stage_cache import cached_stage, stage_key
from ml_headcount.scoring.corpus import corpus_scores
from tasks.policies import TASK_POLICY


@task(name="discriminative-keywords", **TASK_POLICY)
def discriminative_keywords(settings: Settings, run: RunLayout) -> dict:
    """category_keywords.csv, discriminative_keywords.csv, keyword_lists.json, heldout_matches.parquet, queries.json and
    text_classifier.json (with filters.text_classifier), copied from an earlier run with the same CVs, keywords and
    settings when there is one; returns their sizes."""
    store = ArtifactStore(settings.storage)
    key = stage_key(
        "scores",
        store.sha256(run.cvs),
        store.sha256(run.keywords),
        settings.extraction.cache_key(),
        settings.scoring.model_dump(mode="json", exclude={"batch_cvs"}),
        settings.filters.model_dump(mode="json", exclude={"apply_chunk_rows"}),
    )
    artifacts = [
        run.category_keywords,
        run.discriminative_keywords,
        run.keyword_lists,
        run.heldout_matches,
        run.queries,
    ]
    artifacts += [run.text_classifier] if settings.filters.text_classifier else []
    stage = cached_stage(store, "scores", key, artifacts, lambda: _scores(store, settings, run))
    logger = get_run_logger()
    for entry in stage.rejected:
        logger.warning("ignored the cache entry %s: %s", entry["entry"], entry["reason"])
    summary = stage.summary
    logger.info(
        "keyword lists (%s, learned from %d CVs)%s: %s",
        settings.filters.method,
        summary["learning_cvs"],
        " (scored by an earlier run of these CVs: copied)" if stage.cached else "",
        summary["list_quality"],
    )
    return {**summary, "from_cache": stage.cached, "cache_rejected": stage.rejected}


def _scores(store: ArtifactStore, settings: Settings, run: RunLayout) -> dict:
    logger = get_run_logger()
    index = store.read_parquet(run.cvs, columns=["cv_id", "category"])
    batch = settings.scoring.batch_cvs
    stats, discriminative = corpus_scores(
        store.parquet_batches(run.cvs, ["text", "category"], batch),
        store.parquet_batches(run.keywords, ["cv_id", "keyword", "score"], 20 * batch),
        index.set_index("cv_id")["category"],
        settings.extraction,
        settings.scoring,
        settings.cpu_workers(),
        logger.info,
    )
    filters = settings.filters
    learning = set(
        index["cv_id"].iloc[
            stratified_sample(
                index["cv_id"].to_numpy(), index["category"].to_numpy(), filters.max_learning_cvs, filters.seed
            )
        ]
    )
    with heartbeat(still_running(f"keyword lists (learned from {len(learning):,} CVs, cross-validated)"), logger.info):
        corpus = learners.build_corpus(
            _rows_of(store, run.cvs, ["cv_id", "category", "text"], learning, batch),
            _rows_of(store, run.keywords, None, learning, 20 * batch),
            settings.extraction,
        )
        lists = learners.learn(corpus, None, settings)
        validation = filter_quality.cross_validate(corpus, settings)  # the same learning, once per held-out fold
    document = filter_quality.keyword_lists_document(corpus, lists, validation, settings)

    store.write_csv(run.category_keywords, stats)
    store.write_csv(run.discriminative_keywords, discriminative)
    store.write_json(run.keyword_lists, document)
    store.write_json(run.queries, search_queries.queries_document(document))
    store.write_parquet(run.heldout_matches, validation.heldout_matches)
    if filters.text_classifier:  # learned from the same CVs as the lists, cross-validated on the same folds
        labels = corpus.cvs["category"].to_numpy().astype(str)
        model = text_classifier.fit(corpus.cvs["text"].tolist(), labels, filters.seed)
        store.write_json(run.text_classifier, filter_quality.classifier_document(corpus, model, validation, settings))
    return {
        "scored_keywords": int(stats["keyword"].nunique()),
        "discriminative_keywords": discriminative.groupby("category").size().to_dict(),
        "list_method": filters.method,
        "learning_cvs": len(learning),
        "list_sizes": {
            c: {name: len(entry["keywords"]) for name, entry in by_name.items()} for c, by_name in document.items()
        },
        "list_quality": {
            f"{c}/{name}": (entry["cross_validated"] or {}).get("balanced_accuracy")
            for c, by_name in document.items()
            for name, entry in by_name.items()
        },
    }


def _rows_of(store: ArtifactStore, key: str, columns: list[str] | None, cv_ids: set[str], batch: int) -> pd.DataFrame:
    """The rows of a run table whose cv_id is one of `cv_ids`, in the table's order, read a batch at a time."""
    parts = [part[part["cv_id"].isin(cv_ids)] for part in store.parquet_batches(key, columns, batch)]
    return pd.concat(parts, ignore_index=True) if parts else store.read_parquet(key, columns)
