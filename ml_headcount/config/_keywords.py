"""How keywords are scored, learned into keyword lists and clustered."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ml_headcount.config._result_fields import MACHINE_ONLY


class ScoringSettings(BaseModel, extra="forbid"):
    tfidf_ngram_min: int = 1
    tfidf_ngram_max: int = 4
    tfidf_max_features: int = 5000
    tfidf_min_df: int = 2
    tfidf_max_df: float = 0.85
    frequency_weight: float = Field(0.5, description="Weight of the frequency share; TF-IDF share gets the rest.")
    threshold: float = Field(0.6, description="Discriminative keywords score above this.")
    max_per_category: int = 100
    min_frequency: int = Field(
        2, description="A keyword extracted from fewer CVs than this is not scored as discriminative."
    )
    list_min_frequency: int = Field(5, description="Keyword lists need this total frequency.")
    batch_cvs: int = Field(
        10_000,
        ge=1,
        description="CVs whose texts are counted at a time (memory follows this, not the run).",
        json_schema_extra=MACHINE_ONLY,
    )
    broad_score: float = 0.8
    broad_specificity: float = 0.7
    strict_score: float = 0.9
    strict_specificity: float = 0.8


class DesignOptimism(BaseModel, extra="forbid"):
    """What cross-validation cannot see: the learner's design chosen on the same CVs. The new-sample interval
    subtracts `sensitivity` and `specificity` from the cross-validated figures and widens by `sd` (per rate);
    docs/lists.md gives the measurements behind the defaults."""

    sensitivity: float = Field(0.0, ge=-1.0, le=1.0, description="Cross-validated minus new-CV sensitivity.")
    specificity: float = Field(0.0, ge=-1.0, le=1.0, description="Cross-validated minus new-CV specificity.")
    sd: float = Field(0.0, ge=0.0, le=1.0, description="Spread of that gap from one design and sample to another.")
    source: str = Field("", description="Where the figures were measured.")


def _measured_design_optimism() -> dict[str, DesignOptimism]:
    """Per list name, the gaps measured on rated CVs the default lists never saw (docs/lists.md)."""
    return {
        "broad": DesignOptimism(
            sensitivity=0.19,
            specificity=0.01,
            sd=0.05,
            source="the default broad list's gap between its cross-validated rates and two samples of rated CVs it "
            "never saw (a 91-CV lockbox, 119 other rated CVs), docs/lists.md",
        ),
        "strict": DesignOptimism(
            sd=0.05,
            source="none measured: on the 91-CV lockbox the default strict list did better than cross-validated "
            "(sensitivity 0.417, specificity 1.000 against 0.316, 0.966), docs/lists.md",
        ),
    }


class ListSettings(BaseModel, extra="forbid"):
    """How keyword lists are learned from the scored keywords, and how their quality is measured (docs/lists.md)."""

    method: Literal["selected", "study"] = Field(
        "selected",
        description="selected: lists grown greedily from phrases found in CVs of several employers, their size "
        "chosen by inner cross-validation; study: the study's score and specificity thresholds (scoring.*_score).",
    )
    folds: int = Field(5, ge=2, description="Stratified folds for the cross-validated quality of every list.")
    inner_folds: int = Field(4, ge=2, description="selected: folds inside each training set that choose a list's size.")
    seed: int = Field(42, description="Seed of the fold assignment and of the bootstrap.")
    cv_repeats: int = Field(
        5,
        ge=1,
        description="Cross-validations with fold seeds seed, seed + 1, ...: the reported cross-validated figures are "
        "their mean, with their spread; each repeat costs one more cross-validation.",
    )
    positive: str | None = Field(
        None,
        description="The category the lists are for: the report and queries.json lead with it (None: `1` where it is "
        "a category, else the least frequent one).",
    )
    new_sample_cvs: int | None = Field(
        None,
        ge=2,
        description="Rated CVs of the new sample whose prediction interval each list reports (`new_sample`); None: as "
        "many as the lists were learned from.",
    )
    design_optimism: dict[str, DesignOptimism] = Field(
        default_factory=_measured_design_optimism,
        description="Per list name (broad, strict): how much its cross-validated figures overstate what CVs it never "
        "saw give (docs/lists.md); a list not named here gets none.",
    )
    matcher: Literal["product", "phrase"] = Field(
        "product",
        description="How apply and estimate --keywords match a list: product (the run's n-grams after the "
        "study's cleaning) or phrase (phrase search of the list's query, as a search tool runs it; docs/lists.md).",
    )
    interval: float = Field(
        0.8, gt=0.0, lt=1.0, description="Coverage of the reported intervals (Wilson; bootstrap for balanced accuracy)."
    )
    bootstrap_resamples: int = Field(
        2000, ge=100, description="Stratified bootstrap resamples for the balanced-accuracy interval."
    )
    max_keywords: int = Field(40, ge=1, description="selected: most keywords in one list.")
    min_employers: int = Field(
        3,
        ge=1,
        description="selected: a keyword must occur in the category's CVs at this many different current employers.",
    )
    min_cvs: int = Field(
        3, ge=1, description="selected: a keyword must occur in at least this many of the category's CVs."
    )
    min_extracted: int = Field(
        0,
        ge=0,
        description="selected: KeyBERT must have extracted a keyword from at least this many of the category's CVs "
        "(0: any keyword extracted from any CV of the run).",
    )
    max_organisation_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="selected: a keyword found inside the company field of Experiences in more than this share of "
        "the CVs containing it counts as an organisation name and is not used.",
    )
    organisation_stop_list: list[str] = Field([], description="Organisation names never used as keywords (any case).")
    min_phrase_agreement: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="selected: of the training CVs either matcher finds a keyword in (the product's n-grams, phrase "
        "search of its query), the share both must find it in; keeps lists that a search tool runs as they were "
        "learned.",
    )
    strict_specificity: float = Field(
        0.95,
        gt=0.0,
        lt=1.0,
        description="selected: the strict list's target specificity, met by inner cross-validation.",
    )
    max_learning_cvs: int = Field(
        10_000,
        ge=10,
        description="Lists are learned, and cross-validated, on at most this many of a run's CVs (a seeded stratified "
        "sample; scores always use every CV). Learning cost grows with it; list quality stops improving long before.",
    )
    text_classifier: bool = Field(
        True,
        description="Learn a TF-IDF + logistic-regression classifier per category beside the lists, on the same "
        "CVs and folds (text_classifier.json; held-out annotations `<category>/tfidf` in heldout_matches.parquet), "
        "and let apply emit its `<category>/tfidf` columns where the run has one.",
    )
    apply_chunk_rows: int = Field(
        5000,
        ge=1,
        description="apply / cv-apply: input rows read, matched and written at a time (bounds memory).",
        json_schema_extra=MACHINE_ONLY,
    )
    broad_weights: list[float] = Field(
        [1.0, 1.5, 2.0, 3.0],
        description="selected: costs of a false match relative to a found CV tried for the broad list (inner "
        "cross-validation keeps the best balanced accuracy).",
    )
    penalties: list[float] = Field(
        [0.0, 1.0, 2.0],
        description="selected: extra false matches charged per keyword, tried by inner cross-validation "
        "(higher: fewer, "
        "broader keywords).",
    )
    max_exclusions: int = Field(
        0,
        ge=0,
        description="selected: most exclusions of a list (`(A OR B) AND NOT (C OR D)`); how many (0: the plain OR "
        "list) is chosen by inner cross-validation. Off by default: under the replayed design selection they did not "
        "pay on the rated CVs (docs/lists.md).",
    )
    strict_weights: list[float] = Field(
        [3.0, 5.0, 8.0, 13.0, 21.0, 34.0],
        description="selected: costs tried for the strict list (inner cross-validation keeps the most sensitive "
        "one that reaches strict_specificity).",
    )


class ClusteringSettings(BaseModel, extra="forbid"):
    min_cluster_size: int = 3
    min_samples: int = 2
    cluster_selection_method: Literal["eom", "leaf"] = "eom"
    max_noise_fraction: float = Field(0.5, description="Above this share of noise, fall back to KMeans.")
    kmeans_max_k: int = 40
    seed: int = 42
