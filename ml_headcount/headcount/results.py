"""The result tables of an estimate: per-organisation estimates with their diagnostics, annotators, summary.

Diagnostics (docs/headcount.md, "Diagnostics"): an organisation is flagged where its match rates are incompatible
with the validation error rates, where the fitted model contradicts one of its counts (predictive_checks), or where
its posterior leans on an edge of the prevalence grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ml_headcount.config import HeadcountSettings
from ml_headcount.headcount.annotator_evidence import AnnotatorEvidence
from ml_headcount.headcount.annotators import MISSING, confusion_table
from ml_headcount.headcount.model import EDGE_MASS, Posterior, summarise
from ml_headcount.headcount.population_rates import INCOMPATIBLE
from ml_headcount.headcount.predictive_checks import PredictiveChecks

MATCHES_PREFIX = "matches:"
TYPE_COLUMN = "organisation_type"  # the type whose prior an organisation's estimate was drawn under


@dataclass(frozen=True)
class ObservedPopulation:
    """What a population table says: per organisation and annotator the matches and profiles rated, the model's
    evidence, employees, profiles, and the repairs made to a counts table."""

    matches: np.ndarray  # (organisations, annotators)
    rated: np.ndarray  # (organisations, annotators)
    evidence: AnnotatorEvidence
    employees: np.ndarray
    profiles: np.ndarray
    repairs: pd.DataFrame


def estimate_table(
    organisations: list[str],
    observed: ObservedPopulation,
    posterior: Posterior,
    flags: list[str],
    names: list[str],
    types: np.ndarray | None,
    checks: PredictiveChecks,
) -> pd.DataFrame:
    """estimates.csv: per organisation (and its type, given one) its summary, diagnostics, every annotator's
    matches, and the model annotators' predictive intervals of them (-1 where it rated none of its profiles)."""
    per_org = summarise(posterior.counts)
    columns = {"organisation": organisations} | ({} if types is None else {TYPE_COLUMN: types})
    columns |= {"employees": observed.employees, "profiles": observed.profiles}
    columns |= {"mean": per_org["mean"].round(2), "q10": per_org["q10"], "q50": per_org["q50"], "q90": per_org["q90"]}
    columns |= {"edge_mass": posterior.edge_mass.round(4), "flags": flags}
    columns |= {f"{MATCHES_PREFIX}{name}": observed.matches[:, j] for j, name in enumerate(names)}
    return pd.DataFrame(columns | checks.columns())


def estimate_summary(
    population,
    validation,
    observed: ObservedPopulation,
    posterior: Posterior,
    flags: list[str],
    confusion: pd.DataFrame,
    chosen_names: list[str],
    settings: HeadcountSettings,
) -> dict:
    """summary.json: the total, what it rests on, the repairs and flags counted, the annotators and the settings."""
    total = summarise(posterior.counts.sum(axis=1, keepdims=True))
    labels = validation.labels
    return {
        "mode": population.mode,
        "total": {k: float(v[0]) if k == "mean" else int(v[0]) for k, v in total.items()},
        "organisations": len(population.organisations),
        "employees": int(observed.employees.sum()),
        "profiles": int(observed.profiles.sum()),
        "error_rates": settings.error_rates,
        "population_rates_learned": posterior.rates is not None and posterior.rates.identified,
        "rate_spread": _spread_summary(posterior, chosen_names),
        "rates_not_identified": _rates_not_identified(posterior, population.organisations, observed.profiles),
        "repairs": {str(rule): int(n) for rule, n in observed.repairs["rule"].value_counts().sort_index().items()},
        "flags": {reason: int(sum(reason in f.split(";") for f in flags)) for reason in FLAG_REASONS},
        "validation": {
            "url": validation.url,
            "rows": len(labels),
            "positives": int(labels.sum()),
            "rows_without_label": validation.unlabelled_rows,
        },
        "population": {"url": population.url},
        "annotators": [_annotator_summary(r) for r in confusion.itertuples()],
        "model_annotators": chosen_names,
        "settings": settings.model_dump(mode="json"),
        "seed": settings.seed,
    }


def _spread_summary(posterior: Posterior, chosen_names: list[str]) -> dict:
    """How far the organisations' error rates spread around the population's, per model annotator."""
    learned = posterior.spread
    spread = learned.spread
    return {
        "learned": learned.learned,
        "false_positive_sd": dict(
            zip(chosen_names, np.broadcast_to(spread.false_positive, len(chosen_names)).round(3).tolist())
        ),
        "sensitivity_sd": dict(
            zip(chosen_names, np.broadcast_to(spread.sensitivity, len(chosen_names)).round(3).tolist())
        ),
    }


def _rates_not_identified(posterior: Posterior, organisations: list[str], profiles: np.ndarray) -> list[str]:
    """The organisations whose estimate rests on error rates nothing in the data identifies: the population's rates
    were not learned from jointly rated profiles, and the organisation's own evidence is one source (a keyword count,
    or nested lists), so its interval spans what the rates' prior allows, not what the data show."""
    identified = posterior.rates is not None and posterior.rates.identified
    if identified or posterior.spread is None:
        return []
    alone = ~posterior.spread.two_sources & (profiles > 0)
    return [organisations[i] for i in np.flatnonzero(alone)]


def _annotator_summary(row) -> dict:
    return {
        "name": row.annotator,
        "in_model": bool(row.in_model),
        "why": row.why,
        "sensitivity": row.sensitivity,
        "specificity": row.specificity,
        "population_sensitivity": _or_none(row.population_sensitivity),
        "population_specificity": _or_none(row.population_specificity),
        "validation_values": int(row.true_positive + row.false_negative + row.true_negative + row.false_positive),
    }


FLAG_REASONS = ("below_false_positive_rates", "above_sensitivities", "contradicts_inputs", "grid_edge")


def organisation_flags(
    posterior: Posterior,
    matches: np.ndarray,
    observed: np.ndarray,
    labels: np.ndarray,
    validation_values: np.ndarray,
    checks: PredictiveChecks,
) -> list[str]:
    """Per organisation, `;`-joined reasons its estimate deserves a look (docs/headcount.md, Diagnostics).

    below_false_positive_rates / above_sensitivities: every model annotator with data matches it less often than
    its validation false-positive rate (more often than its validation sensitivity) would allow (binomial
    p < INCOMPATIBLE): the validation rates do not hold there. contradicts_inputs: a model annotator's count lies
    outside its 99 % posterior predictive interval. grid_edge: more than EDGE_MASS of its posterior lies in an edge
    cell of the prevalence grid.
    """

    def rate(cls: bool) -> np.ndarray:
        rows = validation_values[labels == cls]
        return (rows == 1).sum(axis=0) / np.maximum((rows != MISSING).sum(axis=0), 1)

    has_data = observed > 0
    below = np.where(has_data, stats.binom.cdf(matches, observed, rate(False)) < INCOMPATIBLE, True)
    above = np.where(has_data, stats.binom.sf(matches - 1, observed, rate(True)) < INCOMPATIBLE, True)
    any_data = has_data.any(axis=1)
    reasons = np.stack(
        [
            below.all(axis=1) & any_data,
            above.all(axis=1) & any_data,
            checks.contradicted,
            posterior.edge_mass > EDGE_MASS,
        ],
        1,
    )
    return [";".join(r for r, on in zip(FLAG_REASONS, row) if on) for row in reasons]


def confusion_with_population_rates(
    names: list[str],
    chosen: list[int],
    labels: np.ndarray,
    validation_values: np.ndarray,
    other_values: list[int],
    posterior: Posterior,
    max_joint: int,
    displaced: list,
) -> pd.DataFrame:
    """Validation and population rates side by side: the population's for the model's annotators, when learned; and
    why each annotator is in the model or not (`displaced`: annotators.displaced_by's answer the choice used)."""
    confusion = confusion_table(names, labels, validation_values, other_values)
    confusion.insert(1, "in_model", [j in chosen for j in range(len(names))])
    why = [
        _why(j in chosen, len(chosen) == max_joint, max_joint, None if c is None else names[c])
        for j, c in enumerate(displaced)
    ]
    confusion.insert(2, "why", why)
    sensitivity, specificity = [None] * len(confusion), [None] * len(confusion)
    if posterior.rates is not None:
        for position, j in enumerate(chosen):
            sensitivity[j] = round(float(posterior.rates.population[0, position]), 4)
            specificity[j] = round(1 - float(posterior.rates.population[1, position]), 4)
    at = list(confusion.columns).index("specificity") + 1
    confusion.insert(at, "population_sensitivity", sensitivity)
    confusion.insert(at + 1, "population_specificity", specificity)
    return confusion


def _why(in_model: bool, full: bool, max_joint: int, nested_with: str | None) -> str:
    """Why an annotator is in the joint model or not (annotators.choose_annotators' greedy leave-one-out choice, among
    the annotators no nested one displaced)."""
    if in_model:
        return "chosen: it improved the leave-one-out prediction of the validation labels"
    if nested_with is not None:
        return (
            f"left out: nested with {nested_with} (on the validation rows one says 1 only where the other does), "
            "whose prevalence a shift of its false-positive rate moves less; their false matches are the same people's"
        )
    if full:
        return f"left out: the model holds {max_joint} (max_joint_annotators), and those chosen predicted better"
    return "left out: adding it did not improve the leave-one-out prediction of the validation labels"


def _or_none(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def with_correlations(confusion: pd.DataFrame, correlations: pd.DataFrame) -> pd.DataFrame:
    """One row per annotator: its confusion, then its phi correlation with every other annotator in each class."""
    wide = confusion.copy()
    for cls in ("positive", "negative"):
        part = correlations[correlations["class"] == cls]
        both = pd.concat([part, part.rename(columns={"annotator_a": "annotator_b", "annotator_b": "annotator_a"})])
        for other in confusion["annotator"]:
            lookup = both[both["annotator_b"] == other].set_index("annotator_a")["phi"]
            wide[f"phi_{cls}:{other}"] = wide["annotator"].map(lookup)
    return wide
