"""A run's scoring stage: every keyword's scores summed over all the run's CVs in batches (`scoring.corpus`), written
as category_keywords.csv and discriminative_keywords.csv (the lists are learned from them next: `lists.stage`)."""

from __future__ import annotations

from collections.abc import Callable

from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout
from ml_headcount.scoring.corpus import corpus_scores


def write_run_scores(store: ArtifactStore, settings: Settings, run: RunLayout, log: Callable[[str], None]) -> dict:
    """Write the run's keyword statistics per category and its discriminative keywords; returns their sizes."""
    index = store.read_parquet(run.cvs, columns=["cv_id", "category"])
    batch = settings.scoring.batch_cvs
    stats, discriminative = corpus_scores(
        store.parquet_batches(run.cvs, ["text", "category"], batch),
        store.parquet_batches(run.keywords, ["cv_id", "keyword", "score"], 20 * batch),
        index.set_index("cv_id")["category"],
        settings.extraction,
        settings.scoring,
        settings.cpu_workers(),
        log,
    )
    store.write_csv(run.category_keywords, stats)
    store.write_csv(run.discriminative_keywords, discriminative)
    return {
        "scored_keywords": int(stats["keyword"].nunique()),
        "discriminative_keywords": discriminative.groupby("category").size().to_dict(),
    }
