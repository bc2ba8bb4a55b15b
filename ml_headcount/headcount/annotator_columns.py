"""Which columns of an estimate's tables are annotators, and their values: the validation's and the population's
columns that are no text, label, organisation, type, employees or count column, or the ones configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.headcount.annotators import MISSING, annotator_values
from ml_headcount.io.tables import column_by_alias

if TYPE_CHECKING:
    from ml_headcount.headcount.tables import Population, Validation


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
            settings.type_aliases,
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
            f"validation columns: {list(validation.table.columns)}, "
            f"population columns: {list(population.table.columns)}"
        )
    return names


def validation_only_columns(
    validation: Validation, population: Population, ingest: IngestSettings, settings: HeadcountSettings
) -> list[str]:
    """The validation table's would-be annotator columns that the population lacks (none when annotators are
    configured): they cannot be annotators, and the user is told which."""
    if settings.annotators:
        return []
    reserved = _reserved_columns(validation.table, validation.url, ingest, settings)
    return [c for c in validation.table.columns if c not in reserved and c not in set(population.table.columns)]


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


def values_of(table: pd.DataFrame, names: list[str], given: dict[str, np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """(rows, annotators) int8 values (MISSING where not 0/1), and per annotator its number of non-0/1, non-blank
    values."""
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
