"""Posterior predictive checks: does the fitted model reproduce the counts it was given?

For every organisation and model annotator, the matches it observed are set
beside the posterior predictive distribution of those matches (model.py's
`rated` draws: the draw's prevalence and rates, a fresh organisation effect).
An observed count outside its 99 % predictive interval is one the model
contradicts: the estimate then rests on an assumption the data reject (most
often that the annotator errs there as in the rest of the population), and the
organisation is flagged `contradicts_inputs`.

Per annotator, the whole table is checked against what each count's *other*
evidence predicts: its 80 % interval drawn from the prevalence that the
organisation's other annotators and the hierarchical prior give (model.py's
`held_out`), on the organisations the population was fitted on. A count the
model also fitted pulls its own posterior predictive interval towards it (on
counts drawn from the model itself, 1-4 % fell outside their 80 %), so that
share said nothing of the nominal 20 %; the held-out share sits near 20 % where
the model holds. An annotator with more than a binomial's 99.9 % quantile at
20 % outside is said on the console too, though no single count lies outside
its 99 % interval: the model does not describe that annotator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from ml_headcount.headcount.model import column_quantiles

LEVELS = (0.80, 0.99)
CONTRADICTION_LEVEL = 0.99
TABLE_LEVEL = 0.80  # the whole-table check: the share of organisations outside this interval
_TABLE_FALSE_ALARM = 0.001  # a share outside TABLE_LEVEL's interval above Binomial(n, 1 - TABLE_LEVEL)'s 99.9 %


@dataclass(frozen=True)
class PredictiveChecks:
    """Per organisation and model annotator: observed matches and their predictive intervals."""

    names: list[str]  # the model annotators
    observed: np.ndarray  # (organisations, k) matches
    checked: np.ndarray  # (organisations, k) whether the annotator rated any of the organisation's profiles
    bounds: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (low, high), each (organisations, k)
    table_rows: np.ndarray  # the organisations of the whole-table check (those the population was fitted on)
    table_bounds: tuple[np.ndarray, np.ndarray]  # (low, high), each (table rows, k): TABLE_LEVEL, the others' evidence

    def outside(self, level: float) -> np.ndarray:
        """(organisations, k) whether the observed matches fall outside the `level` predictive interval."""
        low, high = self.bounds[level]
        return self.checked & ((self.observed < low) | (self.observed > high))

    def table_outside(self) -> np.ndarray:
        """(table rows, k) whether the observed matches fall outside the TABLE_LEVEL interval that the
        organisation's other evidence predicts."""
        low, high = self.table_bounds
        observed = self.observed[self.table_rows]
        return self.checked[self.table_rows] & ((observed < low) | (observed > high))

    def table_shares(self) -> tuple[np.ndarray, np.ndarray]:
        """(k,) per annotator the organisations of the whole-table check and the share of them outside."""
        checked = self.checked[self.table_rows].sum(axis=0)
        return checked, self.table_outside().sum(axis=0) / np.maximum(checked, 1)

    def table_misfit(self) -> np.ndarray:
        """(k,) whether more of an annotator's organisations fall outside their TABLE_LEVEL interval than a model
        that fits leaves there (a binomial's 1 - _TABLE_FALSE_ALARM quantile)."""
        checked = self.checked[self.table_rows].sum(axis=0)
        most = binom.ppf(1 - _TABLE_FALSE_ALARM, checked, 1 - TABLE_LEVEL)
        return (checked > 0) & (self.table_outside().sum(axis=0) > most)

    @property
    def contradicted(self) -> np.ndarray:
        """(organisations,) whether any annotator's count falls outside its 99 % predictive interval."""
        return self.outside(CONTRADICTION_LEVEL).any(axis=1)

    def columns(self) -> dict[str, np.ndarray]:
        """estimates.csv's columns: per annotator, the 80 % and 99 % predictive intervals of its matches."""
        result = {}
        for j, name in enumerate(self.names):
            for level, (low, high) in self.bounds.items():
                percent = f"{level:.0%}".rstrip("%")
                result[f"predicted{percent}_low:{name}"] = np.where(self.checked[:, j], low[:, j], -1)
                result[f"predicted{percent}_high:{name}"] = np.where(self.checked[:, j], high[:, j], -1)
        return result

    def summary(self) -> dict:
        """summary.json's `predictive_checks`: per annotator, the organisations checked, the number outside their 99 %
        interval, and the whole-table check: the share of its organisations outside the 80 % interval their other
        evidence predicts; and the organisations the model contradicts."""
        per_annotator = {}
        (table_checked, table_share), misfit = self.table_shares(), self.table_misfit()
        for j, name in enumerate(self.names):
            per_annotator[name] = {
                "organisations": int(self.checked[:, j].sum()),
                "outside_80": round(float(table_share[j]), 4) if table_checked[j] else None,
                "outside_80_of": int(table_checked[j]),
                "outside_99": int(self.outside(CONTRADICTION_LEVEL)[:, j].sum()),
                "table_misfit": bool(misfit[j]),
            }
        return {"annotators": per_annotator, "contradicted_organisations": int(self.contradicted.sum())}

    def contradiction_line(self) -> str | None:
        """One line for the console where the model contradicts its inputs, count by count or across the table;
        None where it does not."""
        outside, misfit = self.outside(CONTRADICTION_LEVEL), self.table_misfit()
        said = []
        if outside.any():
            which = ", ".join(
                f"{name} ({int(outside[:, j].sum())})" for j, name in enumerate(self.names) if outside[:, j].any()
            )
            said.append(
                f"{int(self.contradicted.sum())} organisation(s) have counts outside their 99 % predictive interval, "
                f"by annotator {which}; their estimates rest on what those counts reject (estimates.csv: flag "
                "contradicts_inputs)"
            )
        if misfit.any():
            share = self.table_shares()[1]
            which = ", ".join(f"{name}'s for {share[j]:.0%}" for j, name in enumerate(self.names) if misfit[j])
            said.append(
                f"across the table, counts fall outside the 80 % interval their other evidence predicts, {which} "
                "of the organisations, where a model that fits leaves about 20 %: the model does not describe those "
                "annotators there"
            )
        return "the model contradicts its inputs: " + "; and ".join(said) if said else None


def predictive_checks(
    predicted: np.ndarray,
    held_out: tuple[np.ndarray, np.ndarray],
    matches: np.ndarray,
    rated: np.ndarray,
    names: list[str],
) -> PredictiveChecks:
    """The checks of observed `matches` (organisations, k) against `predicted` draws (draws, organisations, k), and
    of the whole table against `held_out`'s (rows, (draws, rows, k) draws given each count's other evidence)."""
    bounds = {level: _interval(predicted, level) for level in LEVELS}
    rows, held_out_draws = held_out
    return PredictiveChecks(
        list(names), matches.astype(np.int64), rated > 0, bounds, rows, _interval(held_out_draws, TABLE_LEVEL)
    )


def _interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) the central `level` interval of (draws, organisations, k) draws per organisation and annotator."""
    tail = (1 - level) / 2
    low, high = column_quantiles(draws, [tail, 1 - tail])
    return low.astype(np.int64), high.astype(np.int64)
