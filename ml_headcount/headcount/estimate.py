"""From tables to headcount estimates and back: reading, checking, choosing annotators, the result tables.

Tables are read with the product's reader (CSV, TSV, XLSX, JSONL, Parquet, local
or s3://). Problems with the input are `InputError`s naming the file, column
and (where it applies) row.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.corpus.cleaning import normalise_labels
from ml_headcount.errors import InputError
from ml_headcount.headcount.annotator_columns import (
    annotator_names,
    check_validation_values,
    validation_only_columns,
    values_of,
)
from ml_headcount.headcount.annotator_evidence import PatternEvidence, group_profiles
from ml_headcount.headcount.annotators import (
    MISSING,
    PatternSpace,
    choose_annotators,
    class_correlations,
    displaced_by,
    shown_apart,
)
from ml_headcount.headcount.columns import (
    count_column_of_patterns,
    employees_column,
    organisation_column,
    validation_label_column,
)
from ml_headcount.headcount.counts import (
    REPAIR_COLUMNS,
    CountData,
    check_totals,
    count_evidence,
    read_count_data,
    whole_numbers,
)
from ml_headcount.headcount.model import headcount_draws, model_options
from ml_headcount.headcount.predictive_checks import predictive_checks
from ml_headcount.headcount.results import (
    ObservedPopulation,
    confusion_with_population_rates,
    estimate_summary,
    estimate_table,
    organisation_flags,
    with_correlations,
)
from ml_headcount.io.tables import column_by_alias, is_missing

if TYPE_CHECKING:
    from ml_headcount.headcount.new_sample_rates import RunRatePriors


@dataclass
class Validation:
    """The validation table's labelled rows and their labels."""

    url: str
    labels: np.ndarray  # bool, True = positive class
    table: pd.DataFrame  # the rows with a label
    unlabelled_rows: int


@dataclass
class Population:
    """Per organisation: employees, profiles and the annotator values of each profile (or match counts only)."""

    url: str
    mode: str  # "population", "patterns" or "counts"
    organisations: list[str]
    employees: np.ndarray
    profiles: np.ndarray
    table: pd.DataFrame  # population: one row per profile; patterns: per pattern; counts: one row per organisation
    profile_organisation: np.ndarray | None = None  # population, patterns: organisation index of each row
    weights: np.ndarray | None = None  # patterns: profiles of each row
    count_columns: tuple[str, str | None] | None = None  # counts: the employees and (optional) profiles columns
    types: np.ndarray | None = None  # each organisation's type, when the table has a type column


@dataclass
class Estimate:
    """An estimate's result tables: estimates.csv, the draws, summary.json, annotators.csv, repairs.csv."""

    estimates: pd.DataFrame
    draws: np.ndarray
    summary: dict
    annotators: pd.DataFrame
    chosen: list[str] = field(default_factory=list)
    repairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPAIR_COLUMNS))


def read_validation(
    table: pd.DataFrame, url: str, headcount_settings: HeadcountSettings, ingest_settings: IngestSettings
) -> Validation:
    """The labelled rows, `headcount.positive` the experts; headcount.validation_label_column wins over
    ingest.label_column."""
    positive = headcount_settings.positive
    label_column = validation_label_column(
        list(table.columns), url, ingest_settings, headcount_settings.validation_label_column
    )
    labels = normalise_labels(table[label_column])
    labelled = (labels != "").to_numpy()
    present = sorted(set(labels[labelled]))
    if positive not in present:  # "yes" / "true" name the label that ingest normalised to "1"
        positive = normalise_labels(pd.Series([positive])).iloc[0]
    if positive not in present or len(present) < 2:
        raise InputError(
            f"{url}: column {label_column!r} must hold the positive label {positive!r} and at least one other; "
            f"found {present} (set --positive)"
        )
    return Validation(
        url, (labels[labelled] == positive).to_numpy(), table[labelled].reset_index(drop=True), int((~labelled).sum())
    )


def _name(value) -> str:
    """An organisation's name or type as one spelling: NFKC-normalised (`Café` composed or decomposed, fullwidth
    `Ａcme` and `Acme` are one name), without format characters (a zero-width space, a BOM: Unicode category Cf,
    invisible in every table view) and stripped; "" for a missing value."""
    if is_missing(value):
        return ""
    normalised = unicodedata.normalize("NFKC", str(value))
    return "".join(c for c in normalised if unicodedata.category(c) != "Cf").strip()


def _organisation_names(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> tuple[str, pd.Series]:
    """The organisation column and its names, one spelling each (`_name`)."""
    if table.empty:
        raise InputError(f"{url}: row 1: the table has a header but no rows")
    org_column = organisation_column(list(table.columns), url, settings)
    names = table[org_column].map(_name)
    if (names == "").any():
        row = int(np.flatnonzero((names == "").to_numpy())[0]) + 1
        raise InputError(f"{url}: row {row}, column {org_column!r}: empty organisation")
    return org_column, names


def read_population(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> Population:
    """One row per employee profile; an optional employees column gives each organisation's headcount."""
    return _read_profiles(table, url, settings, None)


def read_patterns(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> Population:
    """One row per (organisation, pattern of annotator values 0/1/blank) with its number of profiles."""
    if table.empty:
        raise InputError(f"{url}: row 1: the table has a header but no rows")
    count_column = count_column_of_patterns(list(table.columns), url, settings)
    return _read_profiles(table, url, settings, whole_numbers(table, count_column, url), count_column)


def _read_profiles(
    table: pd.DataFrame, url: str, settings: HeadcountSettings, weights: np.ndarray | None, count_column: str = ""
) -> Population:
    columns = list(table.columns)
    _, names = _organisation_names(table, url, settings)
    organisations, index = np.unique(names.to_numpy(dtype=str), return_inverse=True)
    _within_limit(len(organisations), url, settings)
    if weights is not None:
        check_totals(weights, index, organisations.tolist(), url, count_column)
    profiles = np.bincount(index, weights=weights, minlength=len(organisations)).astype(np.int64)
    employees = profiles.copy()
    employees_given = employees_column(columns, url, settings, required=False)
    if employees_given:
        given = whole_numbers(table, employees_given, url)
        largest = np.zeros(len(organisations), np.int64)
        np.maximum.at(largest, index, given)
        smallest = largest.copy()
        np.minimum.at(smallest, index, given)
        for o in np.flatnonzero((largest != smallest) | (largest < profiles))[:1]:
            raise InputError(
                f"{url}: column {employees_given!r}: organisation {str(organisations[o])!r} has {profiles[o]} "
                f"profiles and employees values {sorted(set(given[index == o].tolist()))}; it needs one value >= its "
                "number of profiles"
            )
        employees = largest
    mode = "population" if weights is None else "patterns"
    types = _organisation_types(table, url, settings, index, len(organisations))
    return Population(url, mode, organisations.tolist(), employees, profiles, table, index, weights, types=types)


def read_counts(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> Population:
    """One row per organisation: employees, optionally profiles searched and, per annotator, profiles matching it
    (ml_headcount.headcount.counts: denominators per annotator, combinations, the repair rule)."""
    columns = list(table.columns)
    org_column, names = _organisation_names(table, url, settings)
    employees_name = employees_column(columns, url, settings, required=True)
    profiles_column = column_by_alias(columns, settings.profiles_aliases)
    organisations = names.tolist()
    _within_limit(len(organisations), url, settings)
    duplicated = names.duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        raise InputError(
            f"{url}: row {row}, column {org_column!r}: organisation {organisations[row - 1]!r} appears twice"
        )
    data = read_count_data(table, url, organisations, employees_name, profiles_column, [], settings.repair_counts)
    return Population(
        url,
        "counts",
        organisations,
        data.employees,
        data.profiles,
        table,
        count_columns=(employees_name, profiles_column),
        types=_organisation_types(table, url, settings, np.arange(len(organisations)), len(organisations)),
    )


def _within_limit(organisations: int, url: str, settings: HeadcountSettings) -> None:
    if organisations > settings.max_organisations:
        raise InputError(
            f"{url}: {organisations:,} organisations, more than the estimate takes at once "
            f"(headcount.max_organisations, {settings.max_organisations:,}); split the table by organisation"
        )


def _organisation_types(
    table: pd.DataFrame, url: str, settings: HeadcountSettings, index: np.ndarray, n_organisations: int
) -> np.ndarray | None:
    """Each organisation's type from the optional type column (`index`: each row's organisation), or None without
    one; an InputError naming the row when a type is empty or an organisation's rows disagree."""
    column = column_by_alias(list(table.columns), settings.type_aliases)
    if column is None:
        return None
    values = table[column].map(_name)
    values = values.to_numpy(dtype=str)
    if (values == "").any():
        row = int(np.flatnonzero(values == "")[0]) + 1
        raise InputError(f"{url}: row {row}, column {column!r}: empty organisation type")
    first_row = np.full(n_organisations, len(values))
    np.minimum.at(first_row, index, np.arange(len(values)))
    types = values[first_row]  # every organisation has a row: its names come from the rows
    disagree = values != types[index]
    if disagree.any():
        row = int(np.flatnonzero(disagree)[0]) + 1
        raise InputError(
            f"{url}: row {row}, column {column!r}: type {str(values[row - 1])!r}, but the organisation's first row "
            f"says {str(types[index[row - 1]])!r}; give each organisation one type"
        )
    return types


def estimate(
    validation: Validation,
    population: Population,
    settings: HeadcountSettings,
    ingest: IngestSettings,
    keyword_values: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
    rate_priors: RunRatePriors | None = None,
) -> Estimate:
    """Choose the annotators, draw every organisation's headcount, and build the result tables. `rate_priors`: the
    keyword run's lists' rates as a new sample sees them (new_sample_rates), for the population error rates."""
    validation_given, population_given = keyword_values or ({}, {})
    names = annotator_names(validation, population, list(validation_given), ingest, settings)
    validation_values, validation_other = values_of(validation.table, names, validation_given)
    check_validation_values(validation, names, validation_values)
    labels = validation.labels
    population_values = _population_values(population, names, population_given, settings)
    apart = (
        population_values.shown_apart if isinstance(population_values, CountData) else shown_apart(population_values)
    )
    displaced = displaced_by(labels, validation_values, apart)
    chosen = choose_annotators(labels, validation_values, settings.max_joint_annotators, settings.smoothing, displaced)
    observed = _evidence(population, population_values, chosen, PatternSpace(len(chosen)))
    options = model_options(settings)
    prior_shift = rate_priors.shift([names[j] for j in chosen]) if rate_priors else None
    if prior_shift is not None:
        options["rates"] = replace(options["rates"], prior_shift=prior_shift)
    posterior = headcount_draws(
        labels,
        validation_values[:, chosen],
        observed.evidence,
        observed.employees,
        draws=settings.draws,
        rng=np.random.default_rng(settings.seed),
        types=population.types,
        rated=observed.rated[:, chosen],
        **options,
    )
    chosen_names = [names[j] for j in chosen]
    checks = predictive_checks(
        posterior.predicted, posterior.held_out, observed.matches[:, chosen], observed.rated[:, chosen], chosen_names
    )
    flags = organisation_flags(
        posterior, observed.matches[:, chosen], observed.rated[:, chosen], labels, validation_values[:, chosen], checks
    )
    estimates = estimate_table(population.organisations, observed, posterior, flags, names, population.types, checks)
    confusion = confusion_with_population_rates(
        names, chosen, labels, validation_values, validation_other, posterior, settings.max_joint_annotators, displaced
    )
    annotators = with_correlations(confusion, class_correlations(names, labels, validation_values))
    summary = estimate_summary(population, validation, observed, posterior, flags, confusion, chosen_names, settings)
    summary["predictive_checks"] = {**checks.summary(), "message": checks.contradiction_line()}
    summary["population_fitted_on"] = {"organisations": posterior.fitted, "of": len(population.organisations)}
    summary["validation_columns_not_in_population"] = validation_only_columns(validation, population, ingest, settings)
    summary["keyword_rates"] = {
        "new_sample_prior": prior_shift is not None,
        "few_experts": rate_priors.few_experts_line() if rate_priors else None,
    }
    return Estimate(estimates, posterior.counts, summary, annotators, chosen_names, observed.repairs)


def _population_values(
    population: Population, names: list[str], population_given: dict[str, np.ndarray], settings: HeadcountSettings
) -> CountData | np.ndarray:
    """The population's values of every annotator in `names`: a counts table's repaired counts, or each profile's
    values (profiles, annotators)."""
    if population.mode == "counts":
        return read_count_data(
            population.table,
            population.url,
            population.organisations,
            *population.count_columns,
            names,
            settings.repair_counts,
        )
    return values_of(population.table, names, population_given)[0]


def _evidence(
    population: Population, values: CountData | np.ndarray, chosen: list[int], space: PatternSpace
) -> ObservedPopulation:
    """What the population table says, for the model's annotators `chosen` (and the matches of every annotator)."""
    n_org = len(population.organisations)
    if isinstance(values, CountData):
        evidence = count_evidence(values, chosen, space, n_org)
        return ObservedPopulation(
            values.matches, values.denominators, evidence, values.employees, values.profiles, values.repairs
        )
    weights = np.ones(len(population.table)) if population.weights is None else population.weights
    matches, observed = (
        np.stack(
            [
                np.bincount(population.profile_organisation, weights=weights * mask[:, j], minlength=n_org)
                for j in range(values.shape[1])
            ],
            axis=1,
        ).astype(np.int64)
        for mask in (values == 1, values != MISSING)
    )
    groups = group_profiles(population.profile_organisation, values[:, chosen], space, n_org, population.weights)
    evidence = PatternEvidence(groups, space, n_org)
    return ObservedPopulation(
        matches, observed, evidence, population.employees, population.profiles, pd.DataFrame(columns=REPAIR_COLUMNS)
    )
