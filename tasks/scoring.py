"""Tasks that produce the run's keyword scores, keyword lists, their search queries and cross-validated quality."""

from __future__ import annotations

from prefect import get_run_logger, task

from ml_headcount.config import Settings, result_fields
from ml_headcount.extraction.cache import cache_key
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists.stage import learn_run_lists
from ml_headcount.progress import progress_log
from ml_headcount.runs.layout import RunLayout
from ml_headcount.runs.stage_cache import cached_stage, stage_key
from ml_headcount.scoring.stage import write_run_scores
from tasks.policies import TASK_POLICY, say_ignored_cache_entries


@task(name="discriminative-keywords", **TASK_POLICY)
def discriminative_keywords(store: ArtifactStore, settings: Settings, run: RunLayout) -> dict:
    """category_keywords.csv, discriminative_keywords.csv, keyword_lists.json, heldout_matches.parquet, queries.json and
    text_classifier.json (with lists.text_classifier), copied from an earlier run with the same CVs, keywords and
    settings when there is one; returns their sizes."""
    key = stage_key(
        "scores",
        store.sha256(run.cvs),
        store.sha256(run.keywords),
        cache_key(settings.extraction),
        result_fields(settings.scoring),
        result_fields(settings.lists),
    )
    artifacts = [
        run.category_keywords,
        run.discriminative_keywords,
        run.keyword_lists,
        run.heldout_matches,
        run.queries,
    ]
    artifacts += [run.text_classifier] if settings.lists.text_classifier else []
    logger = get_run_logger()
    log = progress_log(logger)
    stage = cached_stage(
        store,
        "scores",
        key,
        artifacts,
        # the stage's two parts: the scores, then the lists learned from them (cached as one)
        lambda: {**write_run_scores(store, settings, run, log), **learn_run_lists(store, settings, run, log)},
    )
    say_ignored_cache_entries(stage, logger)
    summary = stage.summary
    logger.info(
        "keyword lists (%s, learned from %d CVs)%s: cross-validated balanced accuracy %s",
        settings.lists.method,
        summary["learning_cvs"],
        " (scored by an earlier run of these CVs: copied)" if stage.cached else "",
        ", ".join(f"{name} {'n/a' if q is None else f'{q:.3f}'}" for name, q in summary["list_quality"].items()),
    )
    if skipped := summary.get("text_classifier_skipped"):
        logger.warning("no TF-IDF classifier in this run: %s (the lists are unaffected)", skipped)
    return {**summary, "from_cache": stage.cached, "cache_rejected": stage.rejected}
