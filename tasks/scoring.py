"""Tasks that produce the run's keyword scores, keyword lists and their cross-validated quality."""

from __future__ import annotations

from prefect import get_run_logger, task

from ml_headcount import filter_quality, keyword_filters
from ml_headcount.config import Settings
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore
from tasks.policies import TASK_POLICY


@task(name="discriminative-keywords", **TASK_POLICY)
def discriminative_keywords(settings: Settings, run: RunLayout) -> dict:
    """category_keywords.csv, discriminative_keywords.csv, keyword_lists.json and heldout_matches.parquet; returns their sizes."""
    store = ArtifactStore(settings.storage)
    cvs = store.read_parquet(run.cvs, columns=["cv_id", "category", "text"])
    corpus = keyword_filters.build_corpus(cvs, store.read_parquet(run.keywords), settings.extraction)
    learned = keyword_filters.learn(corpus, None, settings)
    validation = filter_quality.cross_validate(corpus, settings)  # the same learning, once per held-out fold
    lists = filter_quality.keyword_lists_document(corpus, learned.lists, validation, settings)

    store.write_csv(run.category_keywords, learned.stats)
    store.write_csv(run.discriminative_keywords, learned.discriminative)
    store.write_json(run.keyword_lists, lists)
    store.write_parquet(run.heldout_matches, validation.heldout_matches)
    get_run_logger().info("keyword lists (%s): %s", settings.filters.method, {
        f"{c}/{name}": (len(entry["keywords"]), (entry["cross_validated"] or {}).get("balanced_accuracy"))
        for c, by_name in lists.items() for name, entry in by_name.items()
    })
    return {
        "scored_keywords": len(corpus.vocabulary),
        "discriminative_keywords": learned.discriminative.groupby("category").size().to_dict(),
        "list_method": settings.filters.method,
        "list_sizes": {c: {name: len(entry["keywords"]) for name, entry in by_name.items()} for c, by_name in lists.items()},
    }
