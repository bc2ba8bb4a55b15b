"""Which columns of an estimate's tables are annotators, and their values: the validation's and the population's
columns that are no text, label, organisation, type, employees or count column, or the ones configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.headcount.annotators import MISSING, annotator_values
from ml_headcount.headcount.columns import check_configured_annotators, reserved_columns, shared_annotators

if TYPE_CHECKING:
    from ml_headcount.headcount.estimate import Population, Validation


def annotator_names(
    validation: Validation,
    population: Population,
    extra: list[str],
    ingest: IngestSettings,
    settings: HeadcountSettings,
) -> list[str]:
    """The annotators: as configured, else every column in both tables that is no text/label/organisation column."""
    if settings.annotators:
        tables = ((list(validation.table.columns), validation.url), (list(population.table.columns), population.url))
        check_configured_annotators([n for n in settings.annotators if n not in extra], tables)
        return list(settings.annotators)
    shared = shared_annotators(
        (list(validation.table.columns), validation.url),
        (list(population.table.columns), population.url),
        ingest,
        settings,
        required=not extra,
    )
    return shared + [e for e in extra if e not in shared]


def validation_only_columns(
    validation: Validation, population: Population, ingest: IngestSettings, settings: HeadcountSettings
) -> list[str]:
    """The validation table's would-be annotator columns that the population lacks (none when annotators are
    configured): they cannot be annotators, and the user is told which."""
    if settings.annotators:
        return []
    reserved = reserved_columns(list(validation.table.columns), ingest, settings)
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
