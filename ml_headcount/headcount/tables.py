"""From tables to headcount estimates and back: reading, checking, choosing annotators, the result tables.

Tables are read with the product's reader (CSV, TSV, XLSX, JSONL, Parquet, local
or s3://). Problems with the input are `InputError`s naming the file, column
and (where it applies) row.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.corpus.cleaning import normalise_labels
from ml_headcount.errors import InputError
from ml_headcount.headcount.annotators import (
    MISSING,
    PatternSpace,
    annotator_values,
    choose_annotators,
    class_correlations,
    confusion_table,
)
from ml_headcount.headcount.count_tables import LARGEST_COUNT, REPAIR_COLUMNS, count_evidence, read_count_data
from ml_headcount.headcount.model import (
    EDGE_MASS,
    PatternEvidence,
    Posterior,
    Prior,
    group_profiles,
    headcount_draws,
    summarise,
)
from ml_headcount.headcount.population_rates import RateModel
from ml_headcount.io.tables import column_by_alias, find_column

ESTIMATE_COLUMNS = ["organisation", "employees", "profiles", "mean", "q10", "q50", "q90"]
MATCHES_PREFIX = "matches:"
INCOMPATIBLE = 0.01  # a match rate this improbable under every model annotator's validation rates is flagged


@dataclass
class Validation:
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


@dataclass
class Estimate:
    estimates: pd.DataFrame
    draws: np.ndarray
    summary: dict
    annotators: pd.DataFrame
    chosen: list[str] = field(default_factory=list)
    repairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPAIR_COLUMNS))


def read_validation(
    table: pd.DataFrame, url: str, positive: str, ingest: IngestSettings, label_column: str | None = None
) -> Validation:
    """The labelled rows; `label_column` (headcount.validation_label_column) wins over ingest.label_column."""
    label_column = find_column(
        list(table.columns), label_column or ingest.label_column, ingest.label_aliases, "label", url
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


def _whole_numbers(table: pd.DataFrame, column: str, url: str) -> np.ndarray:
    numbers = pd.to_numeric(table[column], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0) | (numbers > LARGEST_COUNT)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        value = table[column].iloc[row - 1]
        value = value.item() if isinstance(value, np.generic) else value
        reason = (
            f"is larger than any headcount ({LARGEST_COUNT:g})"
            if numbers.iloc[row - 1] > LARGEST_COUNT
            else "is not a whole number >= 0"
        )
        raise InputError(f"{url}: row {row}, column {column!r}: {value!r} {reason}")
    return numbers.to_numpy().astype(np.int64)


def _organisation_names(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> tuple[str, pd.Series]:
    """The organisation column and its names, stripped and NFC-normalised (`Café` is one name however written)."""
    if table.empty:
        raise InputError(f"{url}: row 1: the table has a header but no rows")
    org_column = find_column(list(table.columns), settings.org_column, settings.org_aliases, "organisation", url)
    names = table[org_column].map(
        lambda v: "" if v is None or (isinstance(v, float) and v != v) else unicodedata.normalize("NFC", str(v).strip())
    )
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
    count_column_name = find_column(list(table.columns), None, settings.count_aliases, "count", url)
    return _read_profiles(table, url, settings, _whole_numbers(table, count_column_name, url))


def _read_profiles(
    table: pd.DataFrame, url: str, settings: HeadcountSettings, weights: np.ndarray | None
) -> Population:
    columns = list(table.columns)
    _, names = _organisation_names(table, url, settings)
    organisations, index = np.unique(names.to_numpy(dtype=str), return_inverse=True)
    profiles = np.bincount(index, weights=weights, minlength=len(organisations)).astype(np.int64)
    employees = profiles.copy()
    employees_column = column_by_alias(columns, settings.employees_aliases)
    if employees_column:
        given = _whole_numbers(table, employees_column, url)
        largest = np.zeros(len(organisations), np.int64)
        np.maximum.at(largest, index, given)
        smallest = largest.copy()
        np.minimum.at(smallest, index, given)
        for o in np.flatnonzero((largest != smallest) | (largest < profiles))[:1]:
            raise InputError(
                f"{url}: column {employees_column!r}: organisation {str(organisations[o])!r} has {profiles[o]} profiles and "
                f"employees values {sorted(set(given[index == o].tolist()))}; it needs one value >= its number of profiles"
            )
        employees = largest
    mode = "population" if weights is None else "patterns"
    return Population(url, mode, organisations.tolist(), employees, profiles, table, index, weights)


def read_counts(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> Population:
    """One row per organisation: employees, optionally profiles searched and, per annotator, profiles matching it
    (ml_headcount.headcount.count_tables: denominators per annotator, combinations, the repair rule)."""
    columns = list(table.columns)
    org_column, names = _organisation_names(table, url, settings)
    employees_column = find_column(columns, None, settings.employees_aliases, "employees", url)
    profiles_column = column_by_alias(columns, settings.profiles_aliases)
    organisations = names.tolist()
    duplicated = names.duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        raise InputError(
            f"{url}: row {row}, column {org_column!r}: organisation {organisations[row - 1]!r} appears twice"
        )
    data = read_count_data(table, url, organisations, employees_column, profiles_column, [], settings.repair_counts)
    return Population(
        url,
        "counts",
        organisations,
        data.employees,
        data.profiles,
        table,
        count_columns=(employees_column, profiles_column),
    )


def _reserved_columns(table: pd.DataFrame, url: str, ingest: IngestSettings, settings: HeadcountSettings) -> set[str]:
    columns = list(table.columns)
    reserved = {
        column_by_alias(columns, aliases)
        for aliases in (
            ingest.text_aliases,
            ingest.label_aliases,
            settings.org_aliases,
            settings.employees_aliases,
            settings.profiles_aliases,
            settings.count_aliases,
            ["cv_id"],
        )
    }
    configured = (
        ingest.text_column,
        ingest.label_column,
        settings.org_column,
        settings.validation_label_column,
        settings.validation_text_column,
        settings.population_text_column,
    )
    reserved |= {c for c in configured if c}
    return {c for c in reserved if c}


def annotator_names(
    validation: Validation,
    population: Population,
    extra: list[str],
    ingest: IngestSettings,
    settings: HeadcountSettings,
) -> list[str]:
    """The annotators: as configured, else every column in both tables that is no text/label/organisation column."""
    if settings.annotators:
        for name in (n for n in settings.annotators if n not in extra):
            for table, url in ((validation.table, validation.url), (population.table, population.url)):
                if name not in table.columns:
                    raise InputError(
                        f"{url}: annotator column {name!r} not found; columns found: {list(table.columns)}"
                    )
        return list(settings.annotators)
    reserved = _reserved_columns(validation.table, validation.url, ingest, settings) | _reserved_columns(
        population.table, population.url, ingest, settings
    )
    shared = [c for c in validation.table.columns if c in set(population.table.columns) and c not in reserved]
    names = shared + [e for e in extra if e not in shared]
    if not names:
        raise InputError(
            f"{validation.url} and {population.url} share no annotator column (and no --keywords run was given); "
            f"validation columns: {list(validation.table.columns)}, population columns: {list(population.table.columns)}"
        )
    return names


def check_validation_values(validation: Validation, names: list[str], values: np.ndarray) -> None:
    """The refusal rule: an annotator with no 0/1 value, or a single value, on the validation table is unusable."""
    for j, name in enumerate(names):
        seen = set(values[values[:, j] != MISSING, j].tolist())
        if not seen:
            raise InputError(
                f"{validation.url}: annotator {name!r} has no 0/1 value on the validation table; "
                "leave it out with --annotators"
            )
        if len(seen) == 1:
            raise InputError(
                f"{validation.url}: annotator {name!r} is {seen.pop()} on every validation row where it has a value; "
                "its error rates cannot be estimated, leave it out with --annotators"
            )


def _values(table: pd.DataFrame, names: list[str], given: dict[str, np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """(rows, annotators) int8 values (MISSING where not 0/1) and per annotator the number of non-0/1, non-blank values."""
    columns, other = [], []
    for name in names:
        if name in given:
            columns.append(given[name])
            other.append(0)
            continue
        values = annotator_values(table[name])
        raw = table[name].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v).strip())
        other.append(int(((values == MISSING) & (raw != "").to_numpy()).sum()))
        columns.append(values)
    return np.stack(columns, axis=1) if columns else np.zeros((len(table), 0), np.int8), other


def estimate(
    validation: Validation,
    population: Population,
    settings: HeadcountSettings,
    ingest: IngestSettings,
    keyword_values: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
) -> Estimate:
    """Choose the annotators, draw every organisation's headcount, and build the result tables."""
    validation_given, population_given = keyword_values or ({}, {})
    names = annotator_names(validation, population, list(validation_given), ingest, settings)
    validation_values, validation_other = _values(validation.table, names, validation_given)
    check_validation_values(validation, names, validation_values)
    labels = validation.labels
    chosen = choose_annotators(labels, validation_values, settings.max_joint_annotators, settings.smoothing)
    space = PatternSpace(len(chosen))
    n_org = len(population.organisations)

    matches, observed, evidence, employees, profiles, repairs = _evidence(
        population, names, chosen, space, population_given, settings
    )
    posterior = headcount_draws(
        labels,
        validation_values[:, chosen],
        evidence,
        employees,
        draws=settings.draws,
        prior=Prior(settings.prior, settings.prior_alpha, settings.prior_beta),
        smoothing=settings.smoothing,
        transfer=settings.transfer,
        grid_points=settings.grid_points,
        rng=np.random.default_rng(settings.seed),
        rates=RateModel(settings.error_rates, settings.rate_shift_sd),
    )
    draws = posterior.counts
    flags = organisation_flags(posterior, matches[:, chosen], observed[:, chosen], labels, validation_values[:, chosen])
    per_org, total = summarise(draws), summarise(draws.sum(axis=1, keepdims=True))
    estimates = pd.DataFrame(
        {
            "organisation": population.organisations,
            "employees": employees,
            "profiles": profiles,
            "mean": per_org["mean"].round(2),
            "q10": per_org["q10"],
            "q50": per_org["q50"],
            "q90": per_org["q90"],
            "edge_mass": posterior.edge_mass.round(4),
            "flags": flags,
            **{f"{MATCHES_PREFIX}{name}": matches[:, j] for j, name in enumerate(names)},
        }
    )
    confusion = confusion_table(names, labels, validation_values, validation_other)
    confusion.insert(1, "in_model", [j in chosen for j in range(len(names))])
    _add_population_rates(confusion, chosen, posterior)
    annotators = _with_correlations(confusion, class_correlations(names, labels, validation_values))
    chosen_names = [names[j] for j in chosen]
    summary = {
        "mode": population.mode,
        "total": {k: float(v[0]) if k == "mean" else int(v[0]) for k, v in total.items()},
        "organisations": n_org,
        "employees": int(employees.sum()),
        "profiles": int(profiles.sum()),
        "error_rates": settings.error_rates,
        "sensitivities_learned": posterior.rates is not None and posterior.rates.sensitivities_learned,
        "repairs": {str(rule): int(n) for rule, n in repairs["rule"].value_counts().sort_index().items()},
        "flags": {reason: int(sum(reason in f.split(";") for f in flags)) for reason in FLAG_REASONS},
        "validation": {
            "url": validation.url,
            "rows": len(labels),
            "positives": int(labels.sum()),
            "rows_without_label": validation.unlabelled_rows,
        },
        "population": {"url": population.url},
        "annotators": [
            {
                "name": r.annotator,
                "in_model": bool(r.in_model),
                "sensitivity": r.sensitivity,
                "specificity": r.specificity,
                "population_sensitivity": _or_none(r.population_sensitivity),
                "population_specificity": _or_none(r.population_specificity),
                "validation_values": int(r.true_positive + r.false_negative + r.true_negative + r.false_positive),
            }
            for r in confusion.itertuples()
        ],
        "model_annotators": chosen_names,
        "settings": settings.model_dump(mode="json"),
        "seed": settings.seed,
    }
    return Estimate(estimates, draws, summary, annotators, chosen_names, repairs)


def _evidence(
    population: Population,
    names: list[str],
    chosen: list[int],
    space: PatternSpace,
    population_given: dict[str, np.ndarray],
    settings: HeadcountSettings,
) -> tuple:
    """Per organisation and annotator the matches and profiles rated, the model's evidence, employees, profiles and
    the repairs made to a counts table."""
    n_org = len(population.organisations)
    if population.mode == "counts":
        data = read_count_data(
            population.table,
            population.url,
            population.organisations,
            *population.count_columns,
            names,
            settings.repair_counts,
        )
        matches, observed, repairs = data.matches, data.denominators, data.repairs
        employees, profiles = data.employees, data.profiles
        evidence = count_evidence(data, chosen, space, n_org)
    else:
        population_values, _ = _values(population.table, names, population_given)
        weights = np.ones(len(population.table)) if population.weights is None else population.weights
        matches, observed = (
            np.stack(
                [
                    np.bincount(population.profile_organisation, weights=weights * mask[:, j], minlength=n_org)
                    for j in range(len(names))
                ],
                axis=1,
            ).astype(np.int64)
            for mask in (population_values == 1, population_values != MISSING)
        )
        groups = group_profiles(
            population.profile_organisation, population_values[:, chosen], space, n_org, population.weights
        )
        evidence = PatternEvidence(groups, space, n_org)
        employees, profiles, repairs = population.employees, population.profiles, pd.DataFrame(columns=REPAIR_COLUMNS)
    return matches, observed, evidence, employees, profiles, repairs


FLAG_REASONS = ("below_false_positive_rates", "above_sensitivities", "grid_edge")


def organisation_flags(
    posterior: Posterior, matches: np.ndarray, observed: np.ndarray, labels: np.ndarray, validation_values: np.ndarray
) -> list[str]:
    """Per organisation, `;`-joined reasons its estimate deserves a look (docs/headcount.md, Diagnostics).

    below_false_positive_rates / above_sensitivities: every model annotator with data matches it less often than
    its validation false-positive rate (more often than its validation sensitivity) would allow (binomial
    p < INCOMPATIBLE): the validation rates do not hold there. grid_edge: more than EDGE_MASS of its posterior
    lies in an edge cell of the prevalence grid.
    """

    def rate(cls: bool) -> np.ndarray:
        rows = validation_values[labels == cls]
        return (rows == 1).sum(axis=0) / np.maximum((rows != MISSING).sum(axis=0), 1)

    has_data = observed > 0
    below = np.where(has_data, stats.binom.cdf(matches, observed, rate(False)) < INCOMPATIBLE, True)
    above = np.where(has_data, stats.binom.sf(matches - 1, observed, rate(True)) < INCOMPATIBLE, True)
    any_data = has_data.any(axis=1)
    reasons = np.stack([below.all(axis=1) & any_data, above.all(axis=1) & any_data, posterior.edge_mass > EDGE_MASS], 1)
    return [";".join(r for r, on in zip(FLAG_REASONS, row) if on) for row in reasons]


def _add_population_rates(confusion: pd.DataFrame, chosen: list[int], posterior: Posterior) -> None:
    """Validation and population rates side by side: the population's for the model's annotators, when learned."""
    sensitivity, specificity = [None] * len(confusion), [None] * len(confusion)
    if posterior.rates is not None:
        for position, j in enumerate(chosen):
            sensitivity[j] = round(float(posterior.rates.population[0, position]), 4)
            specificity[j] = round(1 - float(posterior.rates.population[1, position]), 4)
    at = list(confusion.columns).index("specificity") + 1
    confusion.insert(at, "population_sensitivity", sensitivity)
    confusion.insert(at + 1, "population_specificity", specificity)


def _or_none(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _with_correlations(confusion: pd.DataFrame, correlations: pd.DataFrame) -> pd.DataFrame:
    """One row per annotator: its confusion, then its phi correlation with every other annotator in each class."""
    wide = confusion.copy()
    for cls in ("positive", "negative"):
        part = correlations[correlations["class"] == cls]
        both = pd.concat([part, part.rename(columns={"annotator_a": "annotator_b", "annotator_b": "annotator_a"})])
        for other in confusion["annotator"]:
            lookup = both[both["annotator_b"] == other].set_index("annotator_a")["phi"]
            wide[f"phi_{cls}:{other}"] = wide["annotator"].map(lookup)
    return wide
