"""Error rates that differ between organisations: a random effect of each organisation on the annotators' rates.

A keyword list's false-positive rate in an analytics consultancy (many PhDs,
"research scientist" titles) is many times its rate in an outsourcing firm, and
an LLM's sensitivity differs with how profiles are written. So each
organisation's rates are the population's shifted in logit by a normal random
effect: sd `false_positive` for the false-positive rate, `sensitivity` for the
sensitivity.

Integrated out, the effect turns an organisation's multinomial pattern counts
into a Dirichlet-multinomial with the same mean, whose concentration kappa makes
an annotator's match probability q = pi * s + (1 - pi) * f vary between
organisations as much, in logit, as the random effects make it vary:
trigamma(kappa q) + trigamma(kappa (1 - q)) = Var(logit q), the delta method's
variance. Where the rate is small a Beta's logit is skewed to the left, which a
logit-normal's is not: a count far above what the population rate predicts stays
possible (most of its matches false) but is less likely than the random effect
makes it (a 5 % rate, sd 0.9: 0.019 above 15 % against the logit-normal's 0.089;
docs/calibration.md, f). What follows for a user: a large count pins down its own
organisation's rate more than the prevalence, and two sources that disagree
widen an interval instead of being averaged at the confidence of the larger one.

How far rates spread is learned where organisations carry two or more
annotators' evidence (learned_spread): each of an annotator's configured sds
is scaled by a factor on a grid (SCALES), at the mode of its posterior, which
weighs how well the organisations' sources agree at each scale against a
half-normal prior (sd 1: no spread unless the organisations show one). Where no
organisation has two sources, nothing shows it, and the settings' sds hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

_LARGEST_CONCENTRATION = 1e10  # beyond it the Dirichlet-multinomial is the multinomial to float precision
_CONCENTRATION_NODES = 1024  # a predictive draw's kappa is interpolated between this many prevalences
_NEWTON_STEPS = 25
SCALES = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0])  # multiples of the configured sds weighed
_SCALE_PRIOR_SD = 1.0  # the factor's prior: half-normal (no spread unless the organisations show one)
_SWEEPS = 2


@dataclass(frozen=True)
class RateSpread:
    """The sd (logit) of an organisation's false-positive rate and sensitivity around the population's: one for every
    annotator, or (k,) arrays, one per annotator (broadcast along an annotator axis)."""

    false_positive: float | np.ndarray = 0.0
    sensitivity: float | np.ndarray = 0.0

    @property
    def none(self) -> bool:
        """Whether every organisation has the population's rates."""
        return not (np.any(self.false_positive) or np.any(self.sensitivity))

    def annotator(self, j: int) -> RateSpread:
        """The spread of annotator j alone."""
        return RateSpread(
            *(float(np.asarray(sd)[j]) if np.ndim(sd) else sd for sd in (self.false_positive, self.sensitivity))
        )

    def scaled(self, scales: np.ndarray) -> RateSpread:
        """Each annotator's sds times its factors in `scales` (2, k): the false-positive rate's, the sensitivity's."""
        return RateSpread(scales[0] * self.false_positive, scales[1] * self.sensitivity)

    def concentration(self, s: np.ndarray, f: np.ndarray, p: np.ndarray) -> np.ndarray:
        """kappa of annotators with sensitivity `s` and false-positive rate `f` at prevalence `p` (broadcast)."""
        q = np.clip(p * s + (1 - p) * f, 1e-12, 1 - 1e-12)
        spread = ((1 - p) * f * (1 - f) * self.false_positive) ** 2 + (p * s * (1 - s) * self.sensitivity) ** 2
        return _matching_concentration(q, spread / (q * (1 - q)) ** 2)

    def matches(
        self, profiles: np.ndarray, s: np.ndarray, f: np.ndarray, p: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Matches of annotators among `profiles` of an organisation with prevalence `p`, their rates drawn around
        `s` and `f` (broadcast, annotators last): a posterior predictive draw."""
        q = np.clip(p * s + (1 - p) * f, 1e-12, 1 - 1e-12)
        if not self.none:
            kappa = self._interpolated_concentration(s, f, p)
            q = rng.beta(kappa * q, kappa * (1 - q))
        return rng.binomial(profiles, q)

    def _interpolated_concentration(self, s: np.ndarray, f: np.ndarray, p: np.ndarray) -> np.ndarray:
        """`concentration` at prevalences `p` in (0, 1) (p, s and f of one number of dimensions, annotators last),
        interpolated linearly in logit p and log kappa between _CONCENTRATION_NODES prevalences spanning p (relative
        error ~1e-4, more only where kappa reaches _LARGEST_CONCENTRATION and the Beta is a point anyway): a Newton
        solve per rate and node instead of one per organisation, draw and annotator, which took a third of a
        100,000-organisation estimate's time and most of its memory."""
        x = np.log(p) - np.log1p(-p)
        nodes = np.linspace(x.min(), x.max(), _CONCENTRATION_NODES)
        # nodes on an axis before the annotators' (last, as the sds broadcast): (..., nodes, annotators)
        table = np.log(self.concentration(s[..., None, :], f[..., None, :], 1 / (1 + np.exp(-nodes[:, None]))))
        position = (x - nodes[0]) / max(nodes[1] - nodes[0], 1e-12)
        below = np.clip(np.floor(position), 0, _CONCENTRATION_NODES - 2).astype(np.int64)
        low, high = (np.take_along_axis(table, node[..., None], axis=-2)[..., 0, :] for node in (below, below + 1))
        return np.exp(low + (position - below) * (high - low))


def _matching_concentration(q: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """kappa with trigamma(kappa q) + trigamma(kappa (1 - q)) = variance: Newton's method in log kappa, from the
    large-kappa solution (trigamma(x) ~ 1/x)."""
    small = variance < 1.0 / (_LARGEST_CONCENTRATION * q * (1 - q))
    target = np.where(small, 1.0, variance)
    u = np.log(1.0 / (target * q * (1 - q)))
    for _ in range(_NEWTON_STEPS):
        kappa = np.exp(u)
        a, b = kappa * q, kappa * (1 - q)
        (trigamma_a, tetragamma_a), (trigamma_b, tetragamma_b) = _polygammas(a), _polygammas(b)
        gap = trigamma_a + trigamma_b - target
        slope = a * tetragamma_a + b * tetragamma_b  # d gap / d log kappa, < 0
        step = np.clip(gap / slope, -3.0, 3.0)
        u = np.clip(u - step, -30.0, np.log(_LARGEST_CONCENTRATION))
        if np.abs(step).max(initial=0.0) < 1e-8:
            break
    return np.where(small, _LARGEST_CONCENTRATION, np.exp(u))


def _polygammas(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trigamma and tetragamma of x > 0: the recurrence up to x >= 6, then their asymptotic series (error below
    1e-10; scipy's polygamma is a hundred times slower, and this runs in every draw batch)."""
    trigamma, tetragamma = np.zeros_like(x), np.zeros_like(x)
    for _ in range(6):
        small = x < 6
        trigamma += np.where(small, 1 / x**2, 0.0)
        tetragamma -= np.where(small, 2 / x**3, 0.0)
        x = np.where(small, x + 1, x)
    r = 1 / x
    r2 = r * r
    trigamma += r + r2 / 2 + r * r2 * (1 / 6 - r2 * (1 / 30 - r2 * (1 / 42 - r2 / 30)))
    tetragamma -= r2 + r * r2 + r2 * r2 * (1 / 2 - r2 * (1 / 6 - r2 * (1 / 6 - r2 * 3 / 10)))
    return trigamma, tetragamma


def dirichlet_multinomial(counts: np.ndarray, probabilities: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """(organisations, draws, points) log likelihood of each organisation's counts (organisations, codes) of codes
    with `probabilities` (codes, draws, points) summing to 1, under a Dirichlet with concentration `kappa`
    (draws, points); without the multinomial coefficient, as the multinomial's likelihood elsewhere."""
    n = counts.sum(axis=1)[:, None, None]
    result = gammaln(kappa)[None] - gammaln(n + kappa[None])
    for c in range(counts.shape[1]):
        alpha = kappa * probabilities[c]
        result += gammaln(counts[:, c][:, None, None] + alpha[None]) - gammaln(alpha)[None]
    return result


@dataclass(frozen=True)
class LearnedSpread:
    """The rate spread the model uses: the configured sds, each annotator's scaled by its factor."""

    configured: RateSpread
    scales: np.ndarray  # (2, k) each annotator's factors of its false-positive rate's and sensitivity's sd
    two_sources: np.ndarray  # (organisations,) whether each carried two or more annotators' evidence

    @property
    def learned(self) -> bool:
        """Whether the factors were learned (some organisation carried two sources), not the settings' sds."""
        return bool(self.two_sources.any()) and not self.configured.none

    @property
    def spread(self) -> RateSpread:
        return self.configured.scaled(self.scales)


def learned_spread(
    configured: RateSpread, k: int, log_marginal: Callable[[RateSpread], np.ndarray], informative: np.ndarray
) -> LearnedSpread:
    """Each annotator's factors at the posterior mode given `log_marginal(spread)`, each organisation's log marginal
    likelihood under a spread, of which the `informative` organisations (two or more annotators' evidence) count;
    the factors are found one at a time, in a few sweeps. Without informative organisations, the settings' sds
    (factors 1)."""
    scales = np.ones((2, k))
    if configured.none or not informative.any():
        return LearnedSpread(configured, scales, informative)
    log_prior = -0.5 * (SCALES / _SCALE_PRIOR_SD) ** 2
    for _ in range(_SWEEPS):
        for rate, j in np.ndindex(2, k):
            trial = np.repeat(scales[None], len(SCALES), axis=0)
            trial[:, rate, j] = SCALES
            fit = [log_marginal(configured.scaled(factors))[informative].sum() for factors in trial]
            scales[rate, j] = SCALES[int(np.argmax(log_prior + np.array(fit)))]
    return LearnedSpread(configured, scales, informative)
