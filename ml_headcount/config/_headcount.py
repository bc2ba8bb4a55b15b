"""How headcounts are estimated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HeadcountSettings(BaseModel, extra="forbid"):
    """How `estimate` turns annotators into per-organisation headcounts (docs/headcount.md)."""

    annotators: list[str] | None = Field(
        None,
        description="Annotator columns to consider; None = every column present in both tables (and keyword lists).",
    )
    positive: str = Field(
        "1", description="The validation label (after ingest's normalisation) that marks an ML expert."
    )
    text_classifier: bool = Field(
        True,
        description="--keywords with a population of profile texts: the keyword run's TF-IDF + logistic-regression "
        "classifier, where the run has one, is one more annotator (`<positive>/tfidf`), with its out-of-fold "
        "annotations for the CVs the run learned from (docs/lists.md).",
    )
    org_column: str | None = Field(None, description="Organisation column; None = detect from org_aliases.")
    employees_column: str | None = Field(
        None, description="The population's or counts table's employees column; None = detect from employees_aliases."
    )
    # each table its own columns; None = ingest's setting, else detected from ingest's aliases
    validation_label_column: str | None = Field(None, description="The validation table's label column.")
    validation_text_column: str | None = Field(None, description="--keywords: the validation table's text column.")
    population_text_column: str | None = Field(None, description="--keywords: the population table's text column.")
    org_aliases: list[str] = ["organisation", "organization", "org", "company", "employer"]
    employees_aliases: list[str] = Field(
        ["employees", "employee_count", "headcount"], description="Column with the organisation's number of employees."
    )
    profiles_aliases: list[str] = Field(["profiles", "profile_count"], description="Counts mode: profiles searched.")
    type_aliases: list[str] = Field(
        ["organisation_type", "organization_type", "org_type"],
        description="The optional organisation-type column (one value per organisation): the hierarchical prior is "
        "learned per type, so that consultancies do not set the prior of research labs.",
    )
    max_joint_annotators: int = Field(
        2,
        ge=1,
        le=7,
        description="At most this many annotators enter the joint pattern model (chosen by leave-one-out fit).",
    )
    smoothing: float = Field(
        4.0,
        gt=0,
        description="Dirichlet concentration pulling each class's joint pattern distribution towards independence.",
    )
    transfer: float = Field(
        1.0,
        ge=0,
        description="Extra variance of the annotators' error rates in the population, in units of their "
        "validation resampling variance: 0 = they behave exactly as on the validation set; 1 = as differently as a "
        "second validation sample would (docs/calibration.md).",
    )
    prior: Literal["hierarchical", "fixed"] = Field(
        "hierarchical",
        description="Prevalence prior: a Beta learned across organisations, or Beta(prior_alpha, prior_beta).",
    )
    prior_alpha: float = Field(
        2.0, gt=0, description="fixed prior: Beta alpha (the study's class prior is Beta(2, 10))."
    )
    prior_beta: float = Field(10.0, gt=0, description="fixed prior: Beta beta.")
    draws: int = Field(1000, ge=10, description="Posterior predictive draws.")
    seed: int = Field(0, description="Seed of every random draw: the same inputs and seed give the same estimates.")
    grid_points: int = Field(
        256, ge=32, description="Points of the prevalence grid (uniform in logit, 1.1e-7 to 1 - 1.1e-7)."
    )
    error_rates: Literal["population", "validation"] = Field(
        "population",
        description="population: the annotators' error rates in the population are learned with the "
        "prevalences, the validation rates their prior; validation: the validation rates hold in the population.",
    )
    rate_shift_sd: float = Field(
        0.6, gt=0, description="Prior sd, in logit, of an annotator's population rate around its validation rate."
    )
    rate_spread_sd: float = Field(
        0.9,
        ge=0,
        description="Sd, in logit, of an organisation's false-positive rate around the population's: 0.9 puts the "
        "10th and 90th percentile organisations 10x apart (docs/headcount.md, error rates that differ); 0 = one "
        "rate for every organisation.",
    )
    sensitivity_spread_sd: float = Field(
        0.4, ge=0, description="Sd, in logit, of an organisation's sensitivity around the population's."
    )
    max_organisations: int = Field(
        100_000,
        ge=1,
        description="A table of more organisations is refused before any work: the estimate's time grows with the "
        "organisations, its memory with the organisations times the draws (docs/headcount.md, Scale).",
    )
    repair_counts: bool = Field(
        True,
        description="Counts tables: repair impossible counts by the stated rule and list them in repairs.csv; "
        "False refuses the table at the first one (docs/headcount.md).",
    )
    count_aliases: list[str] = Field(["count", "n"], description="Pattern tables: the number of profiles of each row.")
