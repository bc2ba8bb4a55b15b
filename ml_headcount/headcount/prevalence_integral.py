"""The marginal likelihood of organisations' evidence, each organisation's prevalence integrated out under a
Beta(a, b): what the population rates' fit (population_rates) maximises over the rates, evaluated hundreds of times
per fit, on up to FIT_ORGANISATIONS organisations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import betaln, expit, logit, logsumexp

if TYPE_CHECKING:
    from ml_headcount.headcount.annotator_evidence import AnnotatorEvidence

_LOGIT_LIMIT = 30.0
_MODE_STEPS = 10  # Newton steps, at most, towards each organisation's mode
_HERMITE = np.polynomial.hermite.hermgauss(24)
_COARSE_LOGITS = np.linspace(-_LOGIT_LIMIT, _LOGIT_LIMIT, 129)  # where each organisation's mode is first looked for
_DERIVATIVE_STEP = 1e-3  # logit(pi): finite differences of a marginal-count likelihood (its sd: 0.003 and up)
_MODE_TOLERANCE = 1e-6  # logit(pi): a Newton step this small ends the search for the organisations' modes


def log_marginal(
    evidence: AnnotatorEvidence,
    positive: np.ndarray,
    negative: np.ndarray,
    a: float,
    b: float,
    pi: np.ndarray,
    log_widths: np.ndarray,
) -> float:
    """Sum over organisations of log integral of Beta(pi; a, b) * likelihood(pi): by Gauss-Hermite around each
    organisation's own mode in logit where its likelihood has one (its patterns, or its marginal counts), else on
    the grid `pi` (evidence from separate counts, which may disagree and leave several modes).

    Around each organisation's mode, not on a grid shared by all: a large organisation's likelihood is narrower
    than a grid's step (sd ~0.003 in logit at 300,000 profiles, the 1,024-point grid's step 0.03), so on a grid the
    sum jumped as the rates moved, its finite-difference gradients were noise, and the optimiser spent thousands of
    evaluations (a 300-organisation counts table's fit took 106 s of CPU, now 8 s)."""
    counts = getattr(evidence, "counts", None)
    if counts is not None:
        used = np.flatnonzero(counts.sum(axis=0))
        return _pattern_log_marginal(counts[:, used], positive[used], negative[used], a, b)
    if hasattr(evidence, "log_likelihood_at"):
        return _count_log_marginal(evidence, positive, negative, a, b)
    log_prior = (a - 1) * np.log(pi) + (b - 1) * np.log1p(-pi) + log_widths
    log_likelihood = evidence.log_likelihood(positive[None], negative[None], pi)[:, 0, :]
    return float(logsumexp(log_likelihood + log_prior - logsumexp(log_prior), axis=1).sum())


def _pattern_log_marginal(counts: np.ndarray, l1: np.ndarray, l0: np.ndarray, a: float, b: float) -> float:
    """log_marginal of organisations with pattern counts (organisations, used codes): Newton steps in closed form."""
    d = l1 - l0

    def log_posterior(x: np.ndarray) -> np.ndarray:  # in logit(pi), where Beta(a, b) has density pi^a (1 - pi)^b / B
        p = expit(x)
        return (np.log(l0 + p[..., None] * d) * counts[:, None, :]).sum(axis=2) + a * np.log(p) + b * np.log1p(-p)

    coarse = expit(_COARSE_LOGITS)
    on_coarse = counts @ np.log(l0[:, None] + coarse[None, :] * d[:, None]) + a * np.log(coarse) + b * np.log1p(-coarse)
    x = logit(coarse)[np.argmax(on_coarse, axis=1)]
    for _ in range(_MODE_STEPS):
        p = expit(x)
        g = l0 + p[:, None] * d
        s1, s2 = (counts * d / g).sum(axis=1), (counts * (d / g) ** 2).sum(axis=1)
        w = p * (1 - p)
        first = w * s1 + a - (a + b) * p
        second = np.minimum(-(w**2) * s2 + w * (1 - 2 * p) * s1 - (a + b) * w, -1e-6)
        x = np.clip(x - np.clip(first / second, -2.0, 2.0), -_LOGIT_LIMIT, _LOGIT_LIMIT)
    return _gauss_hermite(log_posterior, x, second, betaln(a, b))


def _count_log_marginal(evidence, positive: np.ndarray, negative: np.ndarray, a: float, b: float) -> float:
    """log_marginal of organisations with marginal match counts: Newton steps on finite differences of each
    organisation's likelihood at its own prevalences, from the best point of a coarse grid."""

    def log_posterior(x: np.ndarray) -> np.ndarray:  # (organisations, nodes) logits; Beta(a, b) in logit measure
        p = expit(x)
        return evidence.log_likelihood_at(positive, negative, p) + a * np.log(p) + b * np.log1p(-p)

    coarse = expit(_COARSE_LOGITS)
    on_coarse = evidence.log_likelihood(positive[None], negative[None], coarse)[:, 0, :]
    x = _COARSE_LOGITS[np.argmax(on_coarse + a * np.log(coarse) + b * np.log1p(-coarse), axis=1)]
    offsets = np.array([-_DERIVATIVE_STEP, 0.0, _DERIVATIVE_STEP])
    for _ in range(_MODE_STEPS):
        below, centre, above = log_posterior(x[:, None] + offsets).T
        second = np.minimum((above - 2 * centre + below) / _DERIVATIVE_STEP**2, -1e-6)
        step = np.clip((above - below) / (2 * _DERIVATIVE_STEP) / second, -2.0, 2.0)
        x = np.clip(x - step, -_LOGIT_LIMIT, _LOGIT_LIMIT)
        if np.abs(step).max() < _MODE_TOLERANCE:
            break
    return _gauss_hermite(log_posterior, x, second, betaln(a, b))


def _gauss_hermite(log_posterior, x: np.ndarray, second: np.ndarray, log_beta: float) -> float:
    """Sum over organisations of log integral exp(log_posterior) (a Beta(a, b) kernel in logit, `log_beta` its
    normaliser), by Gauss-Hermite around x with curvature `second`."""
    scale = np.sqrt(2.0) / np.sqrt(-second)
    nodes = np.clip(x[:, None] + scale[:, None] * _HERMITE[0][None, :], -_LOGIT_LIMIT, _LOGIT_LIMIT)
    values = log_posterior(nodes) + _HERMITE[0][None, :] ** 2 + np.log(_HERMITE[1])[None, :]
    return float((logsumexp(values, axis=1) + np.log(scale) - log_beta).sum())
