"""From tables to headcount estimates and back: reading, checking, choosing annotators, the result tables.

Tables are read with the product's reader (CSV, TSV, XLSX, JSONL, Parquet, local
or s3://). Problems with the input are `InputError`s naming the file, column
and (where it applies) row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml_headcount.headcount.annotators import (
    MISSING, PatternSpace, annotator_values, choose_annotators, class_correlations, confusion_table,
)
from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.headcount.model import (
    MarginalCountEvidence, PatternEvidence, Prior, ProfileGroups, group_profiles, headcount_draws, summarise,
)
from ml_headcount.corpus.ingest import find_column, normalise_labels
from ml_headcount.errors import InputError

ESTIMATE_COLUMNS = ["organisation", "employees", "profiles", "mean", "q10", "q50", "q90"]
MATCHES_PREFIX = "matches:"


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
    mode: str  # "population" or "counts"
    organisations: list[str]
    employees: np.ndarray
    profiles: np.ndarray
    table: pd.DataFrame  # population: one row per profile; counts: one row per organisation
    profile_organisation: np.ndarray | None = None  # population: organisation index of each row


@dataclass
class Estimate:
    estimates: pd.DataFrame
    draws: np.ndarray
    summary: dict
    annotators: pd.DataFrame
    chosen: list[str] = field(default_factory=list)


def read_validation(table: pd.DataFrame, url: str, positive: str, ingest: IngestSettings) -> Validation:
    label_column = find_column(list(table.columns), ingest.label_column, ingest.label_aliases, "label", url)
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
    return Validation(url, (labels[labelled] == positive).to_numpy(), table[labelled].reset_index(drop=True),
                      int((~labelled).sum()))


def _optional_column(columns: list[str], aliases: list[str]) -> str | None:
    by_lower = {str(c).strip().lower(): c for c in columns}
    return next((by_lower[a.lower()] for a in aliases if a.lower() in by_lower), None)


def _whole_numbers(table: pd.DataFrame, column: str, url: str) -> np.ndarray:
    numbers = pd.to_numeric(table[column], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(f"{url}: row {row}, column {column!r}: {table[column].iloc[row - 1]!r} is not a whole number >= 0")
    return numbers.to_numpy().astype(np.int64)


def read_population(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> Population:
    """One row per employee profile; an optional employees column gives each organisation's headcount."""
    columns = list(table.columns)
    org_column = find_column(columns, settings.org_column, settings.org_aliases, "organisation", url)
    names = table[org_column].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v).strip())
    if (names == "").any():
        row = int(np.flatnonzero((names == "").to_numpy())[0]) + 1
        raise InputError(f"{url}: row {row}, column {org_column!r}: empty organisation")
    organisations, index = np.unique(names.to_numpy(dtype=str), return_inverse=True)
    profiles = np.bincount(index, minlength=len(organisations))
    employees = profiles.copy()
    employees_column = _optional_column(columns, settings.employees_aliases)
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
    return Population(url, "population", organisations.tolist(), employees, profiles, table, index)


def read_counts(table: pd.DataFrame, url: str, settings: HeadcountSettings) -> Population:
    """One row per organisation: employees, profiles searched and, per annotator, profiles matching it."""
    columns = list(table.columns)
    org_column = find_column(columns, settings.org_column, settings.org_aliases, "organisation", url)
    employees_column = find_column(columns, None, settings.employees_aliases, "employees", url)
    profiles_column = find_column(columns, None, settings.profiles_aliases, "profiles", url)
    organisations = table[org_column].astype(str).str.strip().tolist()
    duplicated = pd.Series(organisations).duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        raise InputError(f"{url}: row {row}, column {org_column!r}: organisation {organisations[row - 1]!r} appears twice")
    employees = _whole_numbers(table, employees_column, url)
    profiles = _whole_numbers(table, profiles_column, url)
    over = profiles > employees
    if over.any():
        row = int(np.flatnonzero(over)[0]) + 1
        raise InputError(f"{url}: row {row}, column {profiles_column!r}: more profiles than employees")
    return Population(url, "counts", organisations, employees, profiles, table)


def _reserved_columns(table: pd.DataFrame, url: str, ingest: IngestSettings, settings: HeadcountSettings) -> set[str]:
    columns = list(table.columns)
    reserved = {_optional_column(columns, aliases) for aliases in
                (ingest.text_aliases, ingest.label_aliases, settings.org_aliases, settings.employees_aliases,
                 settings.profiles_aliases, ["cv_id"])}
    reserved |= {c for c in (ingest.text_column, ingest.label_column, settings.org_column) if c}
    return {c for c in reserved if c}


def annotator_names(validation: Validation, population: Population, extra: list[str], ingest: IngestSettings,
                    settings: HeadcountSettings) -> list[str]:
    """The annotators: as configured, else every column in both tables that is no text/label/organisation column."""
    if settings.annotators:
        for name in (n for n in settings.annotators if n not in extra):
            for table, url in ((validation.table, validation.url), (population.table, population.url)):
                if name not in table.columns:
                    raise InputError(f"{url}: annotator column {name!r} not found; columns found: {list(table.columns)}")
        return list(settings.annotators)
    reserved = _reserved_columns(validation.table, validation.url, ingest, settings) | _reserved_columns(
        population.table, population.url, ingest, settings)
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
            raise InputError(f"{validation.url}: annotator {name!r} has no 0/1 value on the validation table; "
                             "leave it out with --annotators")
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


def estimate(validation: Validation, population: Population, settings: HeadcountSettings, ingest: IngestSettings,
             keyword_values: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None) -> Estimate:
    """Choose the annotators, draw every organisation's headcount, and build the result tables."""
    validation_given, population_given = keyword_values or ({}, {})
    names = annotator_names(validation, population, list(validation_given), ingest, settings)
    validation_values, validation_other = _values(validation.table, names, validation_given)
    check_validation_values(validation, names, validation_values)
    labels = validation.labels
    chosen = choose_annotators(labels, validation_values, settings.max_joint_annotators, settings.smoothing)
    space = PatternSpace(len(chosen))
    n_org = len(population.organisations)

    if population.mode == "population":
        population_values, _ = _values(population.table, names, population_given)
        matches = np.stack([np.bincount(population.profile_organisation, weights=population_values[:, j] == 1,
                                        minlength=n_org) for j in range(len(names))], axis=1).astype(np.int64)
        groups = group_profiles(population.profile_organisation, population_values[:, chosen], space, n_org)
        evidence = PatternEvidence(groups, space, n_org)
    else:
        matches = np.stack([_whole_numbers(population.table, name, population.url) for name in names], axis=1)
        too_many = matches > population.profiles[:, None]
        if too_many.any():
            row, column = (int(i) for i in np.argwhere(too_many)[0])
            raise InputError(f"{population.url}: row {row + 1}, column {names[column]!r}: more matches than profiles")
        if len(chosen) == 1:  # one annotator: the non-matching (code 0) and matching (code 1) profiles are exact patterns
            per_code = np.stack([population.profiles - matches[:, chosen[0]], matches[:, chosen[0]]], axis=1).ravel()
            organisation, code = np.repeat(np.arange(n_org), 2), np.tile([0, 1], n_org)
            kept = per_code > 0
            evidence = PatternEvidence(ProfileGroups(organisation[kept], code[kept], per_code[kept]), space, n_org)
        else:
            evidence = MarginalCountEvidence(matches[:, chosen], population.profiles, space)

    draws = headcount_draws(labels, validation_values[:, chosen], evidence, population.employees, draws=settings.draws,
                            prior=Prior(settings.prior, settings.prior_alpha, settings.prior_beta),
                            smoothing=settings.smoothing, transfer=settings.transfer,
                            grid_points=settings.grid_points, rng=np.random.default_rng(settings.seed))
    per_org, total = summarise(draws), summarise(draws.sum(axis=1, keepdims=True))
    estimates = pd.DataFrame({
        "organisation": population.organisations, "employees": population.employees, "profiles": population.profiles,
        "mean": per_org["mean"].round(2), "q10": per_org["q10"], "q50": per_org["q50"], "q90": per_org["q90"],
        **{f"{MATCHES_PREFIX}{name}": matches[:, j] for j, name in enumerate(names)},
    })
    confusion = confusion_table(names, labels, validation_values, validation_other)
    confusion.insert(1, "in_model", [j in chosen for j in range(len(names))])
    annotators = _with_correlations(confusion, class_correlations(names, labels, validation_values))
    chosen_names = [names[j] for j in chosen]
    summary = {
        "mode": population.mode,
        "total": {k: float(v[0]) if k == "mean" else int(v[0]) for k, v in total.items()},
        "organisations": n_org,
        "employees": int(population.employees.sum()),
        "profiles": int(population.profiles.sum()),
        "validation": {"url": validation.url, "rows": len(labels), "positives": int(labels.sum()),
                       "rows_without_label": validation.unlabelled_rows},
        "population": {"url": population.url},
        "annotators": [
            {"name": r.annotator, "in_model": bool(r.in_model), "sensitivity": r.sensitivity, "specificity": r.specificity,
             "validation_values": int(r.true_positive + r.false_negative + r.true_negative + r.false_positive)}
            for r in confusion.itertuples()
        ],
        "model_annotators": chosen_names,
        "settings": settings.model_dump(mode="json"),
        "seed": settings.seed,
    }
    return Estimate(estimates, draws, summary, annotators, chosen_names)


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
