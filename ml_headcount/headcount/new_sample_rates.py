"""A keyword run's lists as annotators whose error rates the estimate can trust: their rates' prior carries what a
new sample of CVs sees, not only the out-of-fold figures.

A list's out-of-fold matches on the CVs it was learned from are honest about the learning, not about the learner's
design, which was chosen on the same CVs: the run's `new_sample` interval (docs/lists.md) says what CVs it never
saw will show. For each keyword-list annotator the population rates' prior (population_rates) is therefore

- moved by the design optimism: the logit of the interval's centre minus that of the cross-validated rate by the
  same matcher (the broad list's sensitivity 0.74 cross-validated, 0.55 the new-sample centre, on the rated CVs);
- widened by the interval's variance (its logit half-width / z, squared) less the binomial noise it holds that the
  prior already has or that is no part of the rate: the cross-validation's own (the validation sampling variance)
  and the new sample's. What remains is the rate's own uncertainty: the design optimism's sd and the fold seeds'.

Both apply in proportion to the validation CVs whose values are out-of-fold: the run's lists matched on CVs it
never saw are a new sample already.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm

from ml_headcount.io.artifacts import read_artifact
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists.documents import CrossValidatedRates, KeywordLists, ListEntry, RunManifest
from ml_headcount.runs.layout import RunLayout
from ml_headcount.scoring.keyword_list import list_column

# Fewer ML experts than this among the CVs the lists were learned from and the new-sample interval of a list's
# sensitivity is wider than +-0.15 (80 %): 1.2816 * sqrt(2 p (1 - p) / n + 0.05^2) with p = 0.55 (the broad list's
# new-sample sensitivity on the rated CVs) and the design optimism's sd 0.05 passes 0.15 below n = 45 experts
# (docs/lists.md: 119 experts give +-0.10).
FEW_EXPERTS = 45


@dataclass(frozen=True)
class RatePriorShift:
    """Per class (0 = expert, 1 = not) and annotator, in logit: how far its rate's prior centre moves from the
    validation rate, and the variance its prior gains."""

    centre_shift: np.ndarray  # (2, k)
    extra_var: np.ndarray  # (2, k)


@dataclass(frozen=True)
class RunRatePriors:
    """Per list column (`<category>/<list>`): its (2,) logit centre shift and extra variance; the ML experts the
    lists were learned from (None where the run does not say)."""

    by_list: dict[str, tuple[np.ndarray, np.ndarray]]
    experts: int | None

    def shift(self, names: list[str]) -> RatePriorShift | None:
        """The prior shift of the annotators `names` (none for those not a list of the run; `@phrase` counts of a
        list are that list); None when no annotator has one."""
        found = [self.by_list.get(name.removesuffix("@phrase")) for name in names]
        if all(f is None for f in found):
            return None
        zero = (np.zeros(2), np.zeros(2))
        centre, extra = (np.stack(parts, axis=1) for parts in zip(*[f or zero for f in found]))
        return RatePriorShift(centre, extra)

    def few_experts_line(self) -> str | None:
        """One line when the lists were learned from fewer than FEW_EXPERTS ML experts, else None."""
        if self.experts is None or self.experts >= FEW_EXPERTS:
            return None
        return (
            f"the keyword lists were learned from {self.experts} ML experts, fewer than {FEW_EXPERTS}: on new CVs "
            "their sensitivity is uncertain by more than +-0.15 (80 %), and so is every count estimated from them"
        )


def run_rate_priors(store: ArtifactStore, run: RunLayout, positive: str, out_of_fold_share: float) -> RunRatePriors:
    """The prior shifts of the run's lists of category `positive` from their `new_sample` intervals (none for a list
    without one), applied in proportion `out_of_fold_share` (the validation CVs valued out-of-fold)."""
    matcher = read_artifact(store, run.manifest, RunManifest).parameters.lists.matcher
    entries = read_artifact(store, run.keyword_lists, KeywordLists).root.get(positive, {})
    priors, experts = {}, None  # list name -> (measured logit rates, their targets, extra variance), each (2,)
    for name, entry in entries.items():
        figures = entry.cross_validated if matcher == "product" else entry.cross_validated_phrase
        if figures is None or figures.cvs is None:  # a run older than the figures' CV counts
            continue
        experts = max(experts or 0, figures.cvs[0])
        if entry.new_sample is not None and None not in (figures.sensitivity, figures.specificity):
            priors[name] = _list_prior(entry, figures)
    by_list = {}
    for name, (measured, target, extra) in priors.items():
        # a list inside another (its keywords a subset) matches no more CVs in either class: its targets stay at or
        # below the other's (the demo's strict and broad lists, one keyword each, are the same list, with the
        # broad list's optimism and none for the strict one: 0.975 against 0.785, which no count could reconcile)
        for other, (_, other_target, _) in priors.items():
            if other != name and _nested(entries[name], entries[other]):
                target = np.minimum(target, other_target)
        by_list[list_column(positive, name)] = (out_of_fold_share * (target - measured), out_of_fold_share * extra)
    return RunRatePriors(by_list, experts)


def _nested(inner: ListEntry, outer: ListEntry) -> bool:
    """Whether `inner` matches only CVs that `outer` matches: its keywords among the other's, and every exclusion of
    the other's among its own."""
    return set(inner.keywords) <= set(outer.keywords) and set(outer.exclusions) <= set(inner.exclusions)


def _list_prior(entry: ListEntry, figures: CrossValidatedRates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2,) logits of P(match | expert) and P(match | not) as cross-validated (`figures`, by the matcher the interval
    measured) and as a new sample sees them, and the extra variance, from the list's new-sample interval."""
    sample, n_experts, n_others = entry.new_sample, *figures.cvs
    new_experts = min(max(round(sample.cvs * n_experts / max(n_experts + n_others, 1)), 1), sample.cvs - 1)
    optimism = sample.design_optimism
    classes = (  # interval, measured rate, how much lower a new CV's is (None: unrecorded), CVs learned from, new CVs
        (sample.sensitivity, figures.sensitivity, optimism and optimism.sensitivity, n_experts, new_experts),
        (
            [1 - sample.specificity[1], 1 - sample.specificity[0]],
            1 - figures.specificity,
            optimism and -optimism.specificity,
            n_others,
            sample.cvs - new_experts,
        ),
    )
    z = norm.ppf(0.5 + sample.level / 2)
    measured_logit, target, extra_var = np.zeros(2), np.zeros(2), np.zeros(2)
    for c, (interval, measured, lower_by, learned, new) in enumerate(classes):
        low, high = _logit(np.array(interval), max(new, 1))
        measured_logit[c] = _logit(measured, max(learned, 1))
        # the recorded optimism where the run gives it: an interval's centre is skewed where it meets 0 or 1
        target[c] = (low + high) / 2 if lower_by is None else _logit(measured - lower_by, max(learned, 1))
        p = expit(target[c])
        binomial = (1 / max(learned, 1) + 1 / max(new, 1)) / (p * (1 - p))
        extra_var[c] = max(((high - low) / (2 * z)) ** 2 - binomial, 0.0)
    return measured_logit, target, extra_var


def _logit(rate, cvs: int):
    """The logit of a rate measured on `cvs` CVs, 0 and 1 read half a CV inside (as a rate's sampling variance is)."""
    edge = 0.5 / cvs
    return logit(np.clip(rate, edge, 1 - edge))
