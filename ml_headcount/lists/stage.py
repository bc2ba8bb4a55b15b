"""A run's lists, after its scores (`scoring.stage`): learned from a sample and cross-validated.

The lists are learned from a stratified sample of at most `lists.max_learning_cvs` CVs (the learners hold that
sample in memory) and cross-validated on the same CVs, once per held-out fold. What is written: keyword_lists.json,
queries.json, heldout_matches.parquet and, with `lists.text_classifier`, text_classifier.json.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ml_headcount.config import ListSettings, Settings
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists import quality, queries, text_classifier
from ml_headcount.lists.evidence import Corpus, build_corpus
from ml_headcount.lists.folds import stratified_sample
from ml_headcount.lists.learners import learn
from ml_headcount.progress import heartbeat, still_running
from ml_headcount.runs.layout import RunLayout
from ml_headcount.scoring.keyword_list import list_column


def learn_run_lists(store: ArtifactStore, settings: Settings, run: RunLayout, log: Callable[[str], None]) -> dict:
    """Write the run's lists, queries and held-out matches (and classifier); returns their sizes and quality."""
    index = store.read_parquet(run.cvs, columns=["cv_id", "category"])
    batch = settings.scoring.batch_cvs
    learning = _learning_sample(index, settings.lists)
    with heartbeat(still_running(f"keyword lists (learned from {len(learning):,} CVs, cross-validated)"), log):
        corpus = build_corpus(
            _rows_of(store, run.cvs, ["cv_id", "category", "text"], learning, batch),
            _rows_of(store, run.keywords, None, learning, 20 * batch),
            settings.extraction,
        )
        lists = learn(corpus, None, settings.lists, settings.scoring)
        # the same learning, once per held-out fold
        validation = quality.cross_validate(corpus, settings.lists, settings.scoring)
    document = quality.keyword_lists_document(corpus, lists, validation, settings.lists)
    store.write_json(run.keyword_lists, document)
    store.write_json(run.queries, queries.queries_document(document))
    store.write_parquet(run.heldout_matches, validation.heldout_matches)
    classifier_skipped = None
    if settings.lists.text_classifier:  # learned from the same CVs as the lists, cross-validated on the same folds
        classifier_skipped = _write_text_classifier(store, run, corpus, validation, settings.lists)
    return {
        "list_method": settings.lists.method,
        "learning_cvs": len(learning),
        **_lists_summary(document),
        **({"text_classifier_skipped": classifier_skipped} if classifier_skipped else {}),
    }


def _learning_sample(index: pd.DataFrame, list_settings: ListSettings) -> set[str]:
    """cv_ids of the stratified sample the lists are learned from (every CV when there are few enough)."""
    ids, labels = index["cv_id"].to_numpy(), index["category"].to_numpy()
    return set(index["cv_id"].iloc[stratified_sample(ids, labels, list_settings.max_learning_cvs, list_settings.seed)])


def _rows_of(store: ArtifactStore, key: str, columns: list[str] | None, cv_ids: set[str], batch: int) -> pd.DataFrame:
    """The rows of a run table whose cv_id is one of `cv_ids`, in the table's order, read a batch at a time."""
    parts = [part[part["cv_id"].isin(cv_ids)] for part in store.parquet_batches(key, columns, batch)]
    return pd.concat(parts, ignore_index=True) if parts else store.read_parquet(key, columns)


def _write_text_classifier(
    store: ArtifactStore,
    run: RunLayout,
    corpus: Corpus,
    validation: quality.CrossValidation,
    list_settings: ListSettings,
) -> str | None:
    """text_classifier.json: the model, or why there is none (returned then). An optional annotator that cannot be
    learned from these CVs never fails a run that has lists to give."""
    labels = corpus.cvs["category"].to_numpy().astype(str)
    skipped = validation.classifier_skipped
    if skipped is None:
        try:
            model = text_classifier.fit(corpus.cvs["text"].tolist(), labels, list_settings.seed)
        except text_classifier.Unfittable as reason:
            skipped = str(reason)
    if skipped is not None:
        store.write_json(run.text_classifier, text_classifier.skipped_document(skipped, len(labels)))
        return skipped
    store.write_json(run.text_classifier, quality.classifier_document(corpus, model, validation))
    return None


def _lists_summary(document: dict) -> dict:
    """Each list's size and cross-validated balanced accuracy, from keyword_lists.json."""
    return {
        "list_sizes": {
            c: {name: len(entry["keywords"]) for name, entry in by_name.items()} for c, by_name in document.items()
        },
        "list_quality": {
            list_column(c, name): (entry["cross_validated"] or {}).get("balanced_accuracy")
            for c, by_name in document.items()
            for name, entry in by_name.items()
        },
    }
