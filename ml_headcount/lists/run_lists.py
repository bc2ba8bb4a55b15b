"""A finished run's keyword lists as applying them needs them: the lists, their queries and matchers, the run's
cleaning and tokenisation, and its TF-IDF classifier."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from ml_headcount.config import ExtractionSettings, IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.artifacts import read_artifact
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists import text_classifier
from ml_headcount.lists.documents import MAX_CLASSIFIER_BYTES, ClassifierDocument, KeywordLists, Queries, RunManifest
from ml_headcount.lists.queries import QueryError, dialect, lint, list_query, render
from ml_headcount.lists.text_classifier import TextClassifier
from ml_headcount.runs.finished import finished_run
from ml_headcount.scoring.keyword_list import KeywordList, list_column
from ml_headcount.scoring.phrase_matching import PhraseMatcher, SearchQuery

if TYPE_CHECKING:
    from ml_headcount.scoring.matching import KeywordMatcher


@dataclass(frozen=True)
class RunLists:
    """What applying a run needs from it: its lists and how it cleaned and tokenised texts."""

    run_id: str
    location: str
    by_category: dict[str, dict[str, KeywordList]]  # category -> list name -> its keywords and exclusions
    ingest: IngestSettings
    extraction: ExtractionSettings
    classifier: TextClassifier | None = None  # the run's TF-IDF classifier, where it has one

    @cached_property
    def lists(self) -> dict[str, KeywordList]:
        """Every list by its column, `<category>/<list>`."""
        return {
            list_column(c, name): keywords
            for c, by_name in self.by_category.items()
            for name, keywords in by_name.items()
        }

    @cached_property
    def queries(self) -> dict[str, SearchQuery]:
        """Every list's query by its column, for phrase search."""
        return {name: list_query(keywords) for name, keywords in self.lists.items()}

    def matcher(self, kind: str, with_classifier: bool = False) -> KeywordMatcher | PhraseMatcher | WithClassifier:
        """The product's matcher of the lists, or phrase search of their queries (`kind`: lists.matcher); with the
        run's TF-IDF classifier's `<category>/tfidf` columns after the lists' when asked and the run has one."""
        from ml_headcount.scoring.matching import KeywordMatcher

        lists = KeywordMatcher(self.lists, self.extraction) if kind == "product" else PhraseMatcher(self.queries)
        return WithClassifier(lists, self.classifier) if with_classifier and self.classifier else lists


class WithClassifier:
    """A list matcher's columns, then the TF-IDF classifier's annotations (`<category>/tfidf`)."""

    def __init__(self, lists: KeywordMatcher | PhraseMatcher, classifier: TextClassifier):
        self._lists, self._classifier = lists, classifier
        self.names = lists.names + [text_classifier.column(c) for c in classifier.coefficients]

    def match(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(names)) bool."""
        annotated = self._classifier.annotate(texts)
        own = [annotated[name] > 0 for name in self.names[len(self._lists.names) :]]
        return np.column_stack([self._lists.match(texts), *own])


def load_run_lists(store: ArtifactStore, run_id: str) -> RunLists:
    """A finished run's lists, queries and classifier, and how it cleaned and tokenised texts (`run_id`: an id or
    `latest`); an InputError naming the run and the file when it is not a complete run's."""
    run = finished_run(store, run_id)
    try:
        parameters = read_artifact(store, run.manifest, RunManifest).parameters
        lists = read_artifact(store, run.keyword_lists, KeywordLists).root
        classifier = (
            TextClassifier.from_document(
                read_artifact(store, run.text_classifier, ClassifierDocument, MAX_CLASSIFIER_BYTES)
            )
            if store.exists(run.text_classifier)
            else None
        )
    except FileNotFoundError as error:
        raise InputError(
            f"{store.location(run.prefix)}: the run lacks {PurePosixPath(str(error)).name or 'a file'}"
        ) from None
    return RunLists(
        run_id=run.run_id,
        location=store.location(run.prefix),
        by_category={
            category: {name: KeywordList(entry.keywords, entry.exclusions) for name, entry in by_name.items()}
            for category, by_name in lists.items()
        },
        ingest=parameters.ingest,
        extraction=parameters.extraction,
        classifier=classifier,
    )


def run_query(store: ArtifactStore, run_id: str, dialect_name: str, category: str | None, list_name: str) -> str:
    """One list's query in one dialect, rebuilt from the phrases in the run's queries.json by the linter and renderer;
    QueryError (a user error) when there is none, or when the stored query is not the rebuilt one."""
    dialect(dialect_name)
    run = finished_run(store, run_id)
    if not store.exists(run.queries):
        raise QueryError(f"{store.location(run.queries)}: the run has no queries (a run older than queries.json)")
    document = read_artifact(store, run.queries, Queries)
    queries = document.queries
    if category is None and document.positive in queries:
        category = document.positive
    if category is None:  # a run older than `positive` in queries.json
        named = [c for c in queries if c != "0"]
        if len(named) != 1:
            raise QueryError(f"{store.location(run.queries)}: give --category, one of {sorted(queries)}")
        category = named[0]
    entry = queries.get(category, {}).get(list_name)
    if entry is None:
        raise QueryError(
            f"{store.location(run.queries)}: no list {category}/{list_name}; lists: "
            f"{[f'{c}/{n}' for c, by in queries.items() for n in by]}"
        )
    try:
        rebuilt = render(lint(entry.any_of, entry.none_of)[0], dialect_name)
    except QueryError as error:
        raise QueryError(
            f"{store.location(run.queries)}: list {category}/{list_name} has no {dialect_name} query: {error}"
        ) from None
    # printed only as its phrases give it: a query edited into the file (SQL, terminal escape codes) is never shown
    stored = entry.dialects.get(dialect_name)
    if stored is None or stored.query != rebuilt:
        raise QueryError(
            f"{store.location(run.queries)}: the {dialect_name} query of list {category}/{list_name} is not the one "
            "its phrases (any_of, none_of) give; the file was changed after the run wrote it"
        )
    return rebuilt
