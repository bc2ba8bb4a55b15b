"""Tasks that produce the run's keyword scores and keyword lists."""

from __future__ import annotations

from prefect import task

from ml_headcount import scoring
from ml_headcount.config import Settings
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore
from tasks.policies import TASK_POLICY


@task(name="discriminative-keywords", **TASK_POLICY)
def discriminative_keywords(settings: Settings, run: RunLayout) -> dict:
    """category_keywords.csv, discriminative_keywords.csv and keyword_lists.json; returns their sizes."""
    store = ArtifactStore(settings.storage)
    cvs = store.read_parquet(run.cvs, columns=["cv_id", "category", "text"])
    keywords = store.read_parquet(run.keywords)
    stats = scoring.category_keyword_stats(cvs, keywords)
    vocabulary = sorted(keywords["keyword"].unique())
    counts = scoring.keyword_counts(cvs["text"].tolist(), vocabulary, settings.extraction)
    discriminative = scoring.discriminative_keywords(cvs, stats, counts, vocabulary, settings.scoring)
    lists = scoring.keyword_lists(discriminative, cvs, counts, vocabulary, settings.scoring)

    store.write_csv(run.category_keywords, stats)
    store.write_csv(run.discriminative_keywords, discriminative)
    store.write_json(run.keyword_lists, lists)
    return {
        "scored_keywords": len(vocabulary),
        "discriminative_keywords": discriminative.groupby("category").size().to_dict(),
        "list_sizes": {c: {name: len(entry["keywords"]) for name, entry in by_name.items()} for c, by_name in lists.items()},
    }
