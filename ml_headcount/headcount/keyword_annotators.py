"""A finished keyword run's lists as annotators `<category>/<list>` (e.g. `1/broad`) of both tables' texts.

A list matches a text when the text contains any of its keywords, tokenised as
the run's extraction did. Validation CVs that the run learned its lists from
must never be matched in-sample (optimistic error rates bias every count):
their values come from the run's cross-validated `heldout_matches.parquet`
(one int8 column per list, the out-of-fold match of each `cv_id` the lists
were learned from), and a run without that file is refused for them. Every
other text (the population, validation CVs the run did not see, and a large
run's CVs outside its learning sample) is matched with the lists as they are.

With `headcount.text_classifier` (the default), the run's TF-IDF + logistic-regression
classifier (`text_classifier.json`), where it has one, is one more annotator, `<category>/tfidf`:
like a list's, its values for CVs the run learned from are its out-of-fold
annotations (`heldout_matches.parquet`, the lists' folds), and every other
text is annotated by the stored model.

`lists.matcher` names the instrument whose counts are estimated:
`product` (the run's n-gram matcher) or `phrase` (phrase search of each list's
query, as a search tool runs it). With `phrase` the annotators are
`<category>/<list>@phrase`, their held-out values are those columns of
`heldout_matches.parquet` and other texts are matched by phrase search, so
the error rates are those of the instrument that produces the counts. A counts
table (no population texts) was counted by a search tool: its lists are
matched by phrase search, and the classifier, which no search tool runs, is no
annotator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_headcount.config import ExtractionSettings, HeadcountSettings, IngestSettings, ListSettings
from ml_headcount.corpus.cleaning import clean_text, cv_id, text_hash
from ml_headcount.errors import InputError
from ml_headcount.headcount.annotators import MISSING
from ml_headcount.headcount.columns import profile_text_column
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists import text_classifier
from ml_headcount.lists.queries import list_query
from ml_headcount.lists.run_lists import RunLists, load_run_lists
from ml_headcount.lists.text_classifier import TextClassifier
from ml_headcount.runs.layout import RunLayout
from ml_headcount.scoring.keyword_list import list_column
from ml_headcount.scoring.matching import KeywordMatcher
from ml_headcount.scoring.phrase_matching import PhraseMatcher


def match_lists(
    texts: list[str], lists: dict[str, list[str]], extraction: ExtractionSettings, matcher_kind: str = "product"
) -> dict[str, np.ndarray]:
    """int8 match (1/0) of every list in every cleaned text, as `apply` and the run's own filter match."""
    matcher = (
        KeywordMatcher(lists, extraction)
        if matcher_kind == "product"
        else PhraseMatcher({name: list_query(keywords) for name, keywords in lists.items()})
    )
    matched = matcher.match(texts)
    return {name: matched[:, i].astype(np.int8) for i, name in enumerate(matcher.names)}


def _cleaned_texts(
    table: pd.DataFrame, url: str, ingest: IngestSettings, text_column: str | None, which: str
) -> tuple[list[str], np.ndarray]:
    column = profile_text_column(list(table.columns), url, ingest, text_column, which)
    raw = table[column].map(lambda v: v if isinstance(v, str) else "")
    texts = [clean_text(t, ingest) if t.strip() else "" for t in raw]
    return texts, np.array([t != "" for t in texts])


def keyword_values(
    store: ArtifactStore,
    run: RunLayout,
    validation: pd.DataFrame,
    validation_url: str,
    population: pd.DataFrame | None,
    population_url: str,
    headcount_settings: HeadcountSettings,
    list_settings: ListSettings,
    ingest_settings: IngestSettings,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Values of the run's non-empty lists for `headcount.positive`, for the validation and population rows, matched
    by `lists.matcher`; with `headcount.text_classifier` also the run's TF-IDF classifier, `<positive>/tfidf`, where
    the run has one. Without a `population` (a counts table counted the lists with a search tool): the validation
    rows' values alone, by phrase search, and no classifier. The texts are in `headcount.validation_text_column` and
    `headcount.population_text_column` (None = ingest.text_column, else detected)."""
    positive, counted = headcount_settings.positive, population is None
    matcher = "phrase" if counted else list_settings.matcher
    with_classifier = headcount_settings.text_classifier and not counted
    run_lists = load_run_lists(store, run.run_id)
    lists = {
        list_column(positive, name, matcher): keywords
        for name, keywords in run_lists.by_category.get(positive, {}).items()
        if keywords
    }
    if not lists:
        raise InputError(f"{run_lists.location}: the run has no non-empty keyword list for category {positive!r}")
    extraction = run_lists.extraction

    validation_texts, validation_has_text = _cleaned_texts(
        validation, validation_url, ingest_settings, headcount_settings.validation_text_column, "validation"
    )
    validation_ids, learned = _learned(store, run, validation_texts, validation_has_text)
    classifier = _classifier(run_lists, store.location(run.text_classifier), positive) if with_classifier else None
    validation_values = _matched(
        validation_texts, validation_has_text & ~learned, lists, extraction, matcher, classifier
    )
    if learned.any():
        _use_out_of_fold(store, run, validation_values, validation_ids, learned, validation_url)

    if population is None:
        return validation_values, {}
    population_texts, population_has_text = _cleaned_texts(
        population, population_url, ingest_settings, headcount_settings.population_text_column, "population"
    )
    return validation_values, _matched(population_texts, population_has_text, lists, extraction, matcher, classifier)


def out_of_fold_share(
    store: ArtifactStore,
    run: RunLayout,
    validation: pd.DataFrame,
    validation_url: str,
    headcount_settings: HeadcountSettings,
    ingest_settings: IngestSettings,
) -> float:
    """The share of the validation CVs with a text whose values are the run's out-of-fold matches (keyword_values)."""
    text_column = headcount_settings.validation_text_column
    texts, has_text = _cleaned_texts(validation, validation_url, ingest_settings, text_column, "validation")
    learned = _learned(store, run, texts, has_text)[1]
    return float(learned.sum() / max(has_text.sum(), 1))


def _learned(
    store: ArtifactStore, run: RunLayout, texts: list[str], has_text: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each cleaned validation text's cv_id, and whether it is one of the CVs the lists were learned from: those with
    held-out matches (a large run learns from a sample of its CVs); a run without that file learned from all its
    CVs."""
    ids = np.array([cv_id(text_hash(t)) for t in texts])
    taught = run.heldout_matches if store.exists(run.heldout_matches) else run.cvs
    return ids, np.isin(ids, store.read_parquet(taught, columns=["cv_id"])["cv_id"].to_numpy()) & has_text


def _use_out_of_fold(
    store: ArtifactStore,
    run: RunLayout,
    values: dict[str, np.ndarray],
    ids: np.ndarray,
    learned: np.ndarray,
    validation_url: str,
) -> None:
    """The run's cross-validated matches in place of in-sample ones for the validation CVs it learned from."""
    if not store.exists(run.heldout_matches):
        raise InputError(
            f"{validation_url}: {int(learned.sum())} validation CVs are ones the keyword run "
            f"{store.location(run.prefix)} learned its lists from, and the run has no heldout_matches.parquet "
            "(cross-validated matches); in-sample matches would make the lists look better than they are. Use a "
            "cross-validated run or a validation table the run did not learn from."
        )
    heldout = store.read_parquet(run.heldout_matches).set_index("cv_id")
    for name, column in values.items():
        if name not in heldout.columns:
            raise InputError(
                f"{store.location(run.heldout_matches)}: no column {name!r}; columns found: {list(heldout.columns)}"
            )
        out_of_fold = heldout[name].reindex(ids[learned])
        column[learned] = np.where(out_of_fold.isna(), MISSING, out_of_fold.fillna(MISSING)).astype(np.int8)


def _classifier(run_lists: RunLists, location: str, positive: str) -> TextClassifier | None:
    """The run's TF-IDF classifier of the positive category (its text_classifier.json at `location`); None when the
    run has none (its text_classifier.json says why, when it tried)."""
    model = run_lists.classifier
    if model is None:
        return None
    if positive not in model.coefficients:
        raise InputError(f"{location}: no classifier of category {positive!r}")
    return TextClassifier(
        model.terms, model.idf, {positive: model.coefficients[positive]}, {positive: model.intercepts[positive]}
    )


def _matched(
    texts: list[str],
    rows: np.ndarray,
    lists: dict[str, list[str]],
    extraction: ExtractionSettings,
    matcher: str,
    classifier: TextClassifier | None,
) -> dict[str, np.ndarray]:
    """Matches (and the classifier's annotations) for the selected rows; MISSING elsewhere (no text, or filled in
    by the caller)."""
    names = list(lists) + ([text_classifier.column(c) for c in classifier.coefficients] if classifier else [])
    values = {name: np.full(len(texts), MISSING, np.int8) for name in names}
    if rows.any():
        selected = [t for t, keep in zip(texts, rows) if keep]
        found = match_lists(selected, lists, extraction, matcher)
        for name, matched in (found | (classifier.annotate(selected) if classifier else {})).items():
            values[name][rows] = matched
    return values
