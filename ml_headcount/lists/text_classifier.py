"""TF-IDF + logistic regression: one more classifier of a run, beside its keyword lists, for `apply` and for the
headcount (where, like each list, it is an annotator).

A search tool cannot run it (it needs the profiles' texts), but where the
texts are at hand it is a classifier whose errors are not the lists': on the
development CVs of the rated set its cross-validated balanced accuracy is
0.814 (the broad list's 0.828), and on the rated lockbox 0.858 (the broad
list's 0.708; docs/lists.md).
One classifier per category (one-vs-rest) on the run's cleaned texts: TF-IDF
of 1-2-grams (terms in at least 2 CVs, sublinear term frequency, L2 norm),
logistic regression with balanced class weights; a text is annotated 1 when
its probability is at least 0.5 (decision value >= 0). It is learned, and
cross-validated, on the same learning sample and folds as the lists
(`quality.cross_validate`), so its held-out annotations sit beside the lists'
in `heldout_matches.parquet` as `<category>/tfidf`.

The model is stored as JSON (`text_classifier.json`): the terms with their idf
weights and each category's coefficients and intercept. Never pickle: run
storage is shared and need not be trusted, and unpickling runs code. Loaded
back, it gives scikit-learn's own vectorizer the stored vocabulary and idf, so
its annotations equal the fitted model's exactly (tested on the rated CVs).

A classifier needs terms shared by CVs: on a small or unusual table (a dozen
CVs, texts without shared words) none may remain, and then the run goes on
without one. `fit` raises `Unfittable`, and text_classifier.json records why
(`skipped_document`): the run's other artifacts stand, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ml_headcount.lists.documents import ClassifierDocument

NAME = "tfidf"  # the classifier's list name: columns `<category>/tfidf`
FORMAT = "ml-headcount text classifier 1"
VECTORIZER = {
    "ngram_range": [1, 2],
    "min_df": 2,
    "sublinear_tf": True,
    "norm": "l2",
    "lowercase": True,
    "token_pattern": r"(?u)\b\w\w+\b",
}


class Unfittable(ValueError):
    """Why no classifier can be learned from these CVs; the run goes on without one."""


def column(category: str) -> str:
    """The classifier's column of a category, as in `heldout_matches.parquet` and `apply`'s output."""
    return f"{category}/{NAME}"


def _vectorizer(vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    settings = {**VECTORIZER, "ngram_range": tuple(VECTORIZER["ngram_range"])}
    return TfidfVectorizer(**settings, **({"vocabulary": vocabulary} if vocabulary is not None else {}))


@dataclass(frozen=True)
class TextClassifier:
    """The stored model: terms (in feature order), their idf, and per category the coefficients and intercept."""

    terms: list[str]
    idf: np.ndarray
    coefficients: dict[str, np.ndarray]
    intercepts: dict[str, float]

    def decision(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Per category, the logistic regression's decision value (log-odds) of each text."""
        vectorizer = _vectorizer({term: i for i, term in enumerate(self.terms)})
        vectorizer.idf_ = self.idf
        features = vectorizer.transform(texts)
        return {c: (features @ w[:, None]).ravel() + self.intercepts[c] for c, w in self.coefficients.items()}

    def annotate(self, texts: list[str]) -> dict[str, np.ndarray]:
        """int8 1/0 per column `<category>/tfidf`: probability >= 0.5."""
        if not texts:
            return {column(c): np.zeros(0, np.int8) for c in self.coefficients}
        return {column(c): (value >= 0).astype(np.int8) for c, value in self.decision(texts).items()}

    def document(self) -> dict:
        """The JSON form (floats written exactly: JSON keeps a float's shortest repr, which reads back the same)."""
        return {
            "format": FORMAT,
            "vectorizer": VECTORIZER,
            "threshold": "probability >= 0.5 (decision value >= 0)",
            "terms": self.terms,
            "idf": self.idf.tolist(),
            "categories": {
                c: {"intercept": self.intercepts[c], "coefficients": w.tolist()} for c, w in self.coefficients.items()
            },
        }

    @classmethod
    def from_document(cls, document: ClassifierDocument) -> TextClassifier | None:
        """The model from its JSON form, as validated (None when the run skipped it)."""
        from ml_headcount.lists.documents import SkippedClassifier

        model = document.root
        if isinstance(model, SkippedClassifier):
            return None
        return cls(
            model.terms,
            np.asarray(model.idf, dtype=np.float64),
            {c: np.asarray(e.coefficients, dtype=np.float64) for c, e in model.categories.items()},
            {c: e.intercept for c, e in model.categories.items()},
        )


def skipped_document(reason: str, learning_cvs: int) -> dict:
    """text_classifier.json of a run that has no classifier: why."""
    return {"format": FORMAT, "skipped": reason, "learning_cvs": learning_cvs}


def fit(texts: list[str], labels: np.ndarray, seed: int) -> TextClassifier:
    """One classifier per category of `labels` (one-vs-rest) on one shared TF-IDF vocabulary; Unfittable when no
    term is in enough of the texts.

    With two categories, one is fitted and the other is its negation: with balanced class weights the objective is
    symmetric in the labels, so that is the optimum of the other fit too (and half the cost)."""
    from sklearn.linear_model import LogisticRegression

    vectorizer = _vectorizer()
    try:
        features = vectorizer.fit_transform(texts)
    except ValueError:  # scikit-learn's "no terms remain" / "empty vocabulary": nothing to learn from
        raise Unfittable(f"no term is in {VECTORIZER['min_df']} or more of its {len(texts)} CVs") from None
    categories = [str(c) for c in sorted(set(labels.tolist()))]
    coefficients, intercepts = {}, {}
    for category in categories[-1:] if len(categories) == 2 else categories:
        if (labels == category).all():
            continue  # nothing outside the category to learn from
        model = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)
        model.fit(features, labels == category)
        coefficients[category], intercepts[category] = model.coef_[0].copy(), float(model.intercept_[0])
    if len(categories) == 2 and categories[1] in coefficients:
        coefficients = {categories[0]: -coefficients[categories[1]], **coefficients}
        intercepts = {categories[0]: -intercepts[categories[1]], **intercepts}
    return TextClassifier(vectorizer.get_feature_names_out().tolist(), vectorizer.idf_.copy(), coefficients, intercepts)


def heldout_decisions(texts: list[str], labels: np.ndarray, folds: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Per category, each text's decision value by the classifier learned without its fold (annotated 1 when >= 0;
    -inf where a fold had nothing outside the category to learn from); Unfittable when a fold's CVs give none."""
    values = {str(c): np.full(len(texts), -np.inf) for c in sorted(set(labels.tolist()))}
    for fold in np.unique(folds):
        train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        try:
            model = fit([texts[i] for i in train], labels[train], seed)
        except Unfittable as reason:
            raise Unfittable(f"cross-validation fold {fold}: {reason}") from None
        for category, decided in model.decision([texts[i] for i in held]).items():
            values[category][held] = decided
    return values
