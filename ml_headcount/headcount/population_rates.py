"""The annotators' error rates in the population: the validation table as prior information, not as the truth.

Validation negatives are often hard cases chosen near the boundary, and a
people-search tool is not the product's text matcher, so the rates measured on
the validation table need not hold in the population. Here each annotator's
rate P(1 | class) in the population has a normal prior in logit centred on its
validation rate, with the validation sampling variance plus `shift_sd`^2. The
population's rates are then learned jointly with the prevalences: the
likelihood of every organisation's patterns, integrated over its own prevalence
under a Jeffreys Beta(1/2, 1/2), is maximised over the 2k rates, and the
posterior is approximated by a normal at the mode (Laplace). With two or more
annotators and organisations that differ in prevalence the rates are
identified by the data (Hui and Walter 1980); with one annotator, or one
organisation, they stay close to the prior, and the intervals widen by its
uncertainty. A keyword list's prior moves and widens by what new CVs see of it (RateModel.prior_shift).

The within-class dependence need not transfer either: each pair's log odds ratio
per class is shifted by a parameter learned with the rates (prior N(0, 1) around
the validation's; with_dependence), and a joint pattern distribution is then given
the population's marginal rates by exponential tilting, theta'(p) proportional to
theta(p) * exp(lambda . bits(p)), which keeps every log odds ratio (with_marginals).
Where no profile was rated by two of the annotators nothing identifies the rates;
then only the bounds that the organisations' match rates put on them, whatever the
prevalences, move them (_bounded_rates), the rates are drawn from that gridded posterior
(RateGrid), and the dependence stays the validation's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

from ml_headcount.config import HeadcountSettings
from ml_headcount.headcount.annotators import MISSING, PatternSpace, code_likelihoods, nested_annotators
from ml_headcount.headcount.prevalence_integral import log_marginal
from ml_headcount.headcount.rate_spread import RateSpread

if TYPE_CHECKING:
    from ml_headcount.headcount.annotator_evidence import AnnotatorEvidence
    from ml_headcount.headcount.new_sample_rates import RatePriorShift

_NEWTON_STEPS = 30
_HESSIAN_STEP = 0.02  # logit
_SEARCH_RANGE = 6.0  # the mode is looked for within this many logits of the validation rate
JOINT_SHARE = 0.01
_DEPENDENCE_SD = 1.0  # prior sd of the shift of a pair's log odds ratio in the population from the validation's
INCOMPATIBLE = 0.01  # a match count this improbable (one-sided) contradicts a validation rate (the diagnostics)
_BOUND_OFFSETS = np.linspace(-_SEARCH_RANGE, _SEARCH_RANGE, 481)  # logit grid around the validation rate


@dataclass(frozen=True)
class RateModel:
    """`population`: rates learned from the population with the validation rates as prior; `validation`: as measured."""

    kind: str
    # prior sd (logit) of a population rate around its validation rate
    shift_sd: float = HeadcountSettings.model_fields["rate_shift_sd"].default
    prior_shift: RatePriorShift | None = None  # keyword lists' rates as a new sample sees them (new_sample_rates)


@dataclass(frozen=True)
class RateGrid:
    """Per (class, annotator) logit rate, in class-major order: its posterior on a grid, independent of the others."""

    logits: np.ndarray  # (2k, points), evenly spaced per row
    weights: np.ndarray  # (2k, points), each row summing to 1

    def sample(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """(draws, 2k) logit rates: a grid point per draw by its weight, then uniform within its cell."""
        step = self.logits[:, 1] - self.logits[:, 0]
        cdf = np.cumsum(self.weights, axis=1)
        picked = np.stack([np.searchsorted(row, rng.random(draws)) for row in cdf], axis=1)
        picked = np.minimum(picked, self.logits.shape[1] - 1)
        return np.take_along_axis(self.logits.T, picked, axis=0) + (rng.random(picked.shape) - 0.5) * step

    @property
    def mode(self) -> np.ndarray:
        """(2k,) each rate's most probable grid point."""
        return np.take_along_axis(self.logits, self.weights.argmax(axis=1)[:, None], axis=1)[:, 0]

    @property
    def variance(self) -> np.ndarray:
        """(2k,) each rate's posterior variance."""
        mean = (self.weights * self.logits).sum(axis=1, keepdims=True)
        return (self.weights * (self.logits - mean) ** 2).sum(axis=1)


@dataclass(frozen=True)
class PopulationRates:
    """Per class (0 = expert, 1 = not) and annotator: the validation rate of saying 1 and the population's posterior."""

    validation: np.ndarray  # (2, k) rates in the validation table (the joint model's marginals)
    mode: np.ndarray  # (2, k) logit posterior mode in the population
    dependence: np.ndarray  # (2, pairs) posterior mode of each pair's log odds ratio shift from the validation's
    covariance: np.ndarray  # (2k + 2 pairs,) ^ 2: the normal approximation's covariance of (mode, dependence)
    # the rates' posterior where too few profiles were rated by two or more annotators to identify them (None: the
    # normal approximation holds); their dependence is then the validation's
    grid: RateGrid | None = None

    @property
    def identified(self) -> bool:
        """Whether the population's joint ratings identified the rates (else only bounds moved them)."""
        return self.grid is None

    @property
    def population(self) -> np.ndarray:
        """(2, k) population rates at the posterior mode."""
        return expit(self.mode)

    @property
    def sd(self) -> np.ndarray:
        """(2, k) posterior sd of each logit rate."""
        return np.sqrt(np.diag(self.covariance))[: self.mode.size].reshape(self.mode.shape)

    def sample(self, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(draws, 2, k) population rates and (draws, 2, pairs) log odds ratio shifts drawn from the posterior."""
        if self.grid is not None:
            rates = expit(self.grid.sample(draws, rng)).reshape(draws, *self.mode.shape)
            return rates, np.zeros((draws, *self.dependence.shape))
        centre = np.concatenate([self.mode.ravel(), self.dependence.ravel()])
        drawn = rng.multivariate_normal(centre, self.covariance, size=draws, method="eigh")
        rates = expit(drawn[:, : self.mode.size]).reshape(draws, *self.mode.shape)
        return rates, drawn[:, self.mode.size :].reshape(draws, *self.dependence.shape)


def pair_bits(space: PatternSpace) -> np.ndarray:
    """(2^k, pairs) whether both annotators of each pair say 1 in each full pattern."""
    bits = space.full.astype(np.float64)
    pairs = list(itertools.combinations(range(space.k), 2))
    return np.stack([bits[:, i] * bits[:, j] for i, j in pairs], axis=1) if pairs else np.zeros((len(bits), 0))


def with_dependence(space: PatternSpace, theta: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(d, 2^k) joints whose pairs' log odds ratios are moved by `shift` (d, pairs); the rates then move too, so
    with_marginals follows."""
    return _normalised(np.log(np.maximum(theta, 1e-300)) + shift @ pair_bits(space).T)


def with_marginals(space: PatternSpace, theta: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(d, 2^k) joints tilted by exp(lambda . bits) so that annotator j says 1 with probability target[:, j].

    Newton's method on the convex dual (log partition minus lambda . target); steps are capped so that a far target
    cannot overshoot. Every log odds ratio of theta is kept.
    """
    bits = space.full.astype(np.float64)
    log_theta = np.log(np.maximum(theta, 1e-300))
    tilt = np.zeros(target.shape)
    for _ in range(_NEWTON_STEPS):
        tilted = _normalised(log_theta + tilt @ bits.T)
        mean = tilted @ bits
        cov = np.einsum("dp,pj,pk->djk", tilted, bits, bits) - mean[:, :, None] * mean[:, None, :]
        if np.abs(target - mean).max() < 1e-10:
            break
        step = np.linalg.solve(cov + 1e-9 * np.eye(space.k), (target - mean)[..., None])[..., 0]
        tilt += np.clip(step, -2.0, 2.0)
    return _normalised(log_theta + tilt @ bits.T)


def _normalised(log_weights: np.ndarray) -> np.ndarray:
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def population_rates(
    space: PatternSpace,
    joints: tuple[np.ndarray, np.ndarray],
    validation_values: np.ndarray,
    labels: np.ndarray,
    evidence: AnnotatorEvidence,
    model: RateModel,
    pi: np.ndarray,
    log_widths: np.ndarray,
    spread: RateSpread,
    part_shift_sd: np.ndarray | float = 0.0,
) -> PopulationRates:
    """The population rates' posterior given every organisation's evidence.

    The prevalences follow a Beta(a, b) whose parameters are fitted with the rates (empirical Bayes): a fixed
    prior on each prevalence would decide where on the likelihood's ridge (lower sensitivity, more experts) the
    rates land wherever the data do not identify them. `joints` are per class (replicates, 2^k) joint pattern fits
    of the validation table, the point fit first and then bootstrap replicates. The mode and Laplace covariance are
    found for the point fit; the modes refitted with each replicate's within-class dependence add their spread,
    since a dependence that differs from the validation's moves the rates the population implies. `pi` and
    `log_widths` are a prevalence grid for evidence that cannot be integrated per organisation (marginal counts).
    `part_shift_sd` (2, k) widens the prior for a part of the population whose rates may differ from the rest's (an
    organisation type's). Where fewer than JOINT_SHARE of the profiles were rated by two or more of the model's
    annotators, the rates are not identified by the data: only the bounds that the organisations' match shares put
    on them move them (_bounded_rates; `identified` False).
    """
    bits = space.full.astype(np.float64)
    validation = np.stack([joint[0] @ bits for joint in joints])  # (2, k)
    observed = np.stack([(validation_values[labels == cls] != MISSING).sum(axis=0) for cls in (True, False)])
    rate_centre, rate_var = _rate_prior(validation, observed, model, part_shift_sd)
    pairs = space.k * (space.k - 1) // 2
    # the population's within-class dependence may differ from the validation's as its rates do: each pair's log
    # odds ratio per class is shifted, the shift's prior centred on 0
    centre = np.concatenate([rate_centre.ravel(), np.zeros(2 * pairs)])
    prior_var = np.concatenate([rate_var.ravel(), np.full(2 * pairs, _DEPENDENCE_SD**2)])
    n_rates, n_shifts = 2 * space.k, len(centre)
    start = np.concatenate([centre, [0.0, np.log(4.0)]])  # log a, log b: Beta(1, 4) to start
    bounds = [(c - _SEARCH_RANGE, c + _SEARCH_RANGE) for c in centre] + [(-5.0, 6.0)] * 2
    if not _jointly_observed(evidence, space, nested_annotators(validation_values)):
        # not identified (Hui-Walter needs annotators that rated the same profiles): with one annotator per profile
        # a fit would move the rates by the assumed shape of the prevalences; only what holds for any prevalences is
        # learned: the bounds the organisations' match rates put on the rates
        grid = _bounded_rates(evidence.counts, space, centre[:n_rates], prior_var[:n_rates], spread)
        covariance = np.diag(np.concatenate([grid.variance, np.zeros(2 * pairs)]))  # the dependence: the validation's
        return PopulationRates(validation, grid.mode.reshape(2, space.k), np.zeros((2, pairs)), covariance, grid)
    objective = partial(_negative_log_posterior, space, joints, evidence, centre, prior_var, pi, log_widths)
    point = objective(0)
    mode = minimize(point, start, method="L-BFGS-B", bounds=bounds).x
    hessian = _hessian(point, mode)
    values, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    values = np.maximum(values, 1.0 / prior_var.max())  # never wider than the prior, never degenerate
    covariance = ((vectors / values) @ vectors.T)[:n_shifts, :n_shifts]
    replicates = [
        minimize(objective(r), mode, method="L-BFGS-B", bounds=bounds).x[:n_shifts] for r in range(1, len(joints[0]))
    ]
    if len(replicates) > 1:
        covariance = covariance + np.cov(np.array(replicates), rowvar=False)
    dependence = mode[n_rates:n_shifts].reshape(2, pairs)
    return PopulationRates(validation, mode[:n_rates].reshape(2, space.k), dependence, covariance)


def _rate_prior(validation, observed, model: RateModel, part_shift_sd) -> tuple[np.ndarray, np.ndarray]:
    """(2, k) logit centre and variance of each rate's prior: the validation rate, its sampling variance plus the
    shift's; a keyword list's moved and widened by what a new sample sees of it (model.prior_shift)."""
    rate_var = 1.0 / ((observed + 1.0) * validation * (1 - validation)) + model.shift_sd**2 + np.square(part_shift_sd)
    if model.prior_shift is None:
        return logit(validation), rate_var
    return logit(validation) + model.prior_shift.centre_shift, rate_var + model.prior_shift.extra_var


def _negative_log_posterior(
    space: PatternSpace,
    joints: tuple[np.ndarray, np.ndarray],
    evidence: AnnotatorEvidence,
    centre: np.ndarray,
    prior_var: np.ndarray,
    pi: np.ndarray,
    log_widths: np.ndarray,
    replicate: int,
):
    """x = (2k logit rates, 2 pairs log odds ratio shifts, log a, log b) -> minus the log posterior, with replicate
    `replicate`'s dependence."""
    n_rates, n_shifts = 2 * space.k, len(centre)

    def negative_log_posterior(x: np.ndarray) -> float:
        rates = expit(x[:n_rates].reshape(2, space.k))
        shifts = x[n_rates:n_shifts].reshape(2, -1)
        positive, negative = (
            code_likelihoods(
                space,
                with_marginals(
                    space, with_dependence(space, joint[replicate : replicate + 1], shifts[c][None]), rates[c][None]
                ),
            )[0]
            for c, joint in enumerate(joints)
        )
        a, b = np.exp(x[n_shifts:])
        marginal = log_marginal(evidence, positive, negative, a, b, pi, log_widths)
        return float(-marginal + 0.5 * ((x[:n_shifts] - centre) ** 2 / prior_var).sum())

    return negative_log_posterior


def _bounded_rates(
    counts: np.ndarray, space: PatternSpace, centre: np.ndarray, prior_var: np.ndarray, spread: RateSpread
) -> RateGrid:
    """Per (class, annotator) logit rate: its posterior on a grid under the profile likelihood that holds whatever
    the prevalences are.

    An organisation whose annotator matches a share r of the profiles it rated fits any rates with
    false-positive rate <= r <= sensitivity exactly (some prevalence does); below the false-positive rate its best
    prevalence is 0, above the sensitivity 1. So an organisation with r below a candidate false-positive rate
    weighs it by how far its own rate would have to fall below the population's: its match share's logit is normal
    around its own rate (the binomial's variance, 1 / (n r (1 - r))), and its own rate around the population's
    (the organisations' spread, rate_spread). Above a candidate sensitivity likewise, unless its own
    false-positive rate explains r better (r below both is no contradiction). Without the binomial's variance
    the many small organisations that matched nobody pulled the false-positive rates below the validation's where
    the population's equalled it (calibration d); without the spread, the organisations whose own rates are low
    pulled the population's down to theirs (calibration f).
    The posterior stays the prior unless match rates contradict it, and moves no further than they require.
    """
    ones = counts @ (space.digits == 1)  # (organisations, k) matches
    rated = counts @ (space.digits != 2)
    share = (ones + 0.5) / (rated + 1.0)
    observed, binomial_var = logit(share), 1.0 / ((rated + 1.0) * share * (1 - share))
    own_sd = np.stack([np.broadcast_to(sd, (space.k,)) for sd in (spread.sensitivity, spread.false_positive)])
    logits, weights = centre[:, None] + _BOUND_OFFSETS[None, :], np.empty((len(centre), len(_BOUND_OFFSETS)))
    for index, v in enumerate(prior_var):
        cls, j = divmod(index, space.k)
        seen = rated[:, j] > 0
        gap = observed[seen, j][:, None] - logits[index][None, :]  # (organisations, points)
        if cls == 1:  # a false-positive rate: contradicted by shares below it
            loss = _contradiction(np.minimum(gap, 0.0), binomial_var[seen, j], own_sd[1, j])
        else:  # a sensitivity: by shares above it that the organisation's own false-positive rate does not explain
            loss = _contradiction(np.maximum(gap, 0.0), binomial_var[seen, j], own_sd[0, j])
            above_fp = np.maximum(observed[seen, j] - centre[space.k + j], 0.0)[:, None]
            loss = np.maximum(loss, _contradiction(above_fp, binomial_var[seen, j], own_sd[1, j]))
        log_post = loss.sum(axis=0) - 0.5 * _BOUND_OFFSETS**2 / v
        weights[index] = np.exp(log_post - log_post.max())
    return RateGrid(logits, weights / weights.sum(axis=1, keepdims=True))


def _contradiction(gap: np.ndarray, binomial_var: np.ndarray, own_sd: float) -> np.ndarray:
    """(organisations, points) log likelihood (<= 0) of logit gaps between match shares and the rates they
    contradict: normal, with the binomial's variance and the organisation's own rate's."""
    return -0.5 * gap**2 / (binomial_var[:, None] + own_sd**2)


def _jointly_observed(evidence: AnnotatorEvidence, space: PatternSpace, nested: np.ndarray) -> bool:
    """Whether at least JOINT_SHARE of the profiles have two or more of the model's annotators observed, not counting
    one nested in another (nested lists alone fix only a line of rates, calibration f)."""
    counts = getattr(evidence, "counts", None)
    if counts is None:  # marginal counts of several annotators over the same profiles: no pattern counts to bound
        return space.k > 1
    several = ((space.digits != 2) & ~nested[None, :]).sum(axis=1) >= 2
    return bool(counts[:, several].sum() >= JOINT_SHARE * counts.sum()) if counts.sum() else False


def _hessian(f, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of f at x."""
    n, h = len(x), _HESSIAN_STEP
    unit = np.eye(n) * h
    centre = f(x)
    hessian = np.empty((n, n))
    for i in range(n):
        hessian[i, i] = (f(x + unit[i]) - 2 * centre + f(x - unit[i])) / h**2
        for j in range(i):
            hessian[i, j] = hessian[j, i] = (
                f(x + unit[i] + unit[j])
                - f(x + unit[i] - unit[j])
                - f(x - unit[i] + unit[j])
                + f(x - unit[i] - unit[j])
            ) / (4 * h**2)
    return hessian
