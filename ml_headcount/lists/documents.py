"""The shapes of the run artifacts that applying a run reads back (`read_artifact` checks them): the manifest's
settings, keyword_lists.json, queries.json and text_classifier.json. Only what a reader uses is described; other
fields pass unchecked. A file of another shape is one error naming it, never a traceback later on."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Discriminator, Field, FiniteFloat, RootModel, Tag, model_validator

from ml_headcount.config import DesignOptimism, ExtractionSettings, IngestSettings
from ml_headcount.lists.text_classifier import FORMAT, VECTORIZER

MAX_CLASSIFIER_BYTES = 2**30  # 363 CVs give 20,214 terms (1.6 MB); a classifier grows with terms x categories


class RunListMatcher(BaseModel):
    """The run's list settings that applying it reads: the matcher its `new_sample` intervals measured."""

    matcher: Literal["product", "phrase"] = "product"


class RunParameters(BaseModel):
    """How the run cleaned and tokenised texts, and matched its lists."""

    ingest: IngestSettings
    extraction: ExtractionSettings
    lists: RunListMatcher = RunListMatcher()


class RunManifest(BaseModel):
    """manifest.json: what applying a run needs of it."""

    parameters: RunParameters


Interval = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=2, max_length=2)]


class NewSample(BaseModel):
    """What a new sample of `cvs` rated CVs will see of a list: `level` prediction intervals of its rates, with the
    cross-validation's fold and seed noise, the design-selection optimism and the new sample's binomial noise."""

    cvs: int = Field(ge=1)
    level: float = Field(gt=0.0, lt=1.0)
    sensitivity: Interval
    specificity: Interval
    balanced_accuracy: Interval
    source: str
    design_optimism: DesignOptimism | None = None  # absent in runs older than it


class CrossValidatedRates(BaseModel):
    """A list's cross-validated rates by one matcher and the CVs it was learned from, (in the category, outside);
    rates are absent where a class had too few CVs."""

    sensitivity: float | None = Field(None, ge=0.0, le=1.0)
    specificity: float | None = Field(None, ge=0.0, le=1.0)
    cvs: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)] | None = None


class ListEntry(BaseModel):
    """One keyword list: its keywords and exclusions (a string is not a list of its letters), and the interval a
    new sample will see (None where a class has too few CVs; absent in runs older than it)."""

    keywords: list[str]
    exclusions: list[str] = []
    role: str | None = None  # "positive" for the category the lists are for, else "complement of <it>"
    new_sample: NewSample | None = None
    cross_validated: CrossValidatedRates | None = None  # by the product's matcher
    cross_validated_phrase: CrossValidatedRates | None = None  # by phrase search


class KeywordLists(RootModel[dict[str, dict[str, ListEntry]]]):
    """keyword_lists.json: category -> list name -> the list."""


class RenderedQuery(BaseModel):
    """A list's query in one dialect, or why it has none."""

    query: str | None = None
    refused: str | None = None

    @model_validator(mode="after")
    def _one_of_them(self) -> RenderedQuery:
        if (self.query is None) == (self.refused is None):
            raise ValueError("holds exactly one of 'query' and 'refused'")
        return self


class ListQueries(BaseModel):
    """One list's entry in queries.json: its phrases (the query is rebuilt from them before it is printed) and its
    queries by dialect."""

    any_of: list[str]
    none_of: list[str]
    dialects: dict[str, RenderedQuery]


class Queries(BaseModel):
    """queries.json: category -> list name -> its queries by dialect (the category the lists are for, `positive`,
    first; absent in runs older than it)."""

    positive: str | None = None
    queries: dict[str, dict[str, ListQueries]]


class CategoryModel(BaseModel):
    """One category's logistic regression: its intercept and a coefficient per term (NaN and infinity refused: a NaN
    intercept would annotate every text 0)."""

    intercept: FiniteFloat
    coefficients: list[FiniteFloat]


class LearnedClassifier(BaseModel):
    """A TF-IDF classifier: terms in feature order, their idf, each category's weights, all of one length."""

    format: Literal[FORMAT]
    vectorizer: dict
    terms: list[str]
    idf: list[FiniteFloat]
    categories: dict[str, CategoryModel]

    @model_validator(mode="after")
    def _consistent(self) -> LearnedClassifier:
        if self.vectorizer != VECTORIZER:
            raise ValueError(f"the vectorizer is not {VECTORIZER}")
        if len(set(self.terms)) != len(self.terms):
            raise ValueError("a term appears twice")
        weights = {f"category {c!r}": e.coefficients for c, e in self.categories.items()}
        for what, values in {"idf": self.idf, **weights}.items():
            if len(values) != len(self.terms):
                raise ValueError(f"{what}: {len(values):,} values for {len(self.terms):,} terms")
        return self


class SkippedClassifier(BaseModel):
    """A run that learned no classifier, and why (`text_classifier.skipped_document`)."""

    format: Literal[FORMAT]
    skipped: str
    learning_cvs: int = Field(ge=0)


def _classifier_kind(document) -> str:
    return "skipped" if isinstance(document, dict) and "skipped" in document else "learned"


class ClassifierDocument(
    RootModel[
        Annotated[
            Annotated[SkippedClassifier, Tag("skipped")] | Annotated[LearnedClassifier, Tag("learned")],
            Discriminator(_classifier_kind),
        ]
    ]
):
    """text_classifier.json: a learned classifier, or the record of a skipped one."""
