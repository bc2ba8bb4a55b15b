"""What the observed profiles say about each organisation's prevalence: the annotator evidence.

Profiles are grouped by (organisation, ternary pattern code); an AnnotatorEvidence turns per-draw code likelihoods
of each class into a log likelihood over the prevalence grid, and realises the experts among the employees. Pattern
tables have the exact likelihood (PatternEvidence); marginal match counts of several annotators over the same
profiles a normal approximation (MarginalCountEvidence); separate counts add up (CombinedEvidence).

With a RateSpread (rate_spread), each organisation's rates differ from the population's by a random effect: the
likelihood of a group of profiles rated by the same annotators is then a Dirichlet-multinomial (its variance, for
marginal counts), and the experts are realised from the prevalence alone, since which profiles matched says less
about who is an expert where the organisation's own rates are uncertain.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ml_headcount.headcount.annotators import PatternSpace
from ml_headcount.headcount.rate_spread import RateSpread, dirichlet_multinomial

_ELEMENTS_PER_CHUNK = 2**16  # the normal approximation's (organisations, draws, points, k) arrays: kept in the caches
_ORGANISATIONS_PER_SPREAD_CHUNK = 256  # bounds the (organisations, draws, points) arrays of the Dirichlet-multinomial
NO_SPREAD = RateSpread()
ALL_CELLS = slice(None)


@dataclass(frozen=True)
class ProfileGroups:
    """Observed profiles grouped by (organisation, ternary pattern code)."""

    organisation: np.ndarray  # (groups,) int index into the organisations
    code: np.ndarray  # (groups,) ternary code
    count: np.ndarray  # (groups,) number of profiles


def group_profiles(
    organisation: np.ndarray,
    values: np.ndarray,
    space: PatternSpace,
    n_organisations: int,
    weights: np.ndarray | None = None,
) -> ProfileGroups:
    """Group profile rows (each `weights` profiles, default 1) by (organisation, pattern); rows without any
    annotation are left out (no evidence)."""
    codes = space.codes(values)
    informative = codes != space.all_missing
    key = organisation[informative].astype(np.int64) * 3**space.k + codes[informative]
    counts = np.bincount(
        key, weights=None if weights is None else weights[informative], minlength=n_organisations * 3**space.k
    ).astype(np.int64)
    keys = np.flatnonzero(counts)
    return ProfileGroups(keys // 3**space.k, keys % 3**space.k, counts[keys])


class AnnotatorEvidence(Protocol):
    """What the observed profiles say about each organisation's pi, and how their experts are realised."""

    def log_likelihood(
        self,
        positive: np.ndarray,
        negative: np.ndarray,
        pi: np.ndarray,
        spread: RateSpread = NO_SPREAD,
        cells: slice = ALL_CELLS,
    ) -> np.ndarray:
        """(organisations, draws, len(pi[cells])) for per-draw code likelihoods (draws, 3^k) of each class, at the
        prevalences `pi[cells]`: `pi` is the whole grid, so that what depends on it alone is shared by every batch
        of organisations whatever part of it they need."""

    def realise(
        self,
        positive: np.ndarray,
        negative: np.ndarray,
        prevalence: np.ndarray,
        employees: np.ndarray,
        rng: np.random.Generator,
        spread: RateSpread = NO_SPREAD,
    ) -> np.ndarray:
        """(draws, organisations) integer expert counts given each draw's pi per organisation (organisations, draws)."""

    def annotators_seen(self) -> np.ndarray:
        """(organisations, k) whether each model annotator rated any of the organisation's profiles."""

    def subset(self, rows: np.ndarray) -> AnnotatorEvidence:
        """The evidence of the organisations `rows` alone, in that order (a batch of organisations)."""

    def without(self, j: int) -> AnnotatorEvidence | None:
        """The evidence with model annotator j's ratings left out (None: nothing else is left), for the
        predictive check of j's counts against what the other sources say (predictive_checks)."""


def single_codes(space: PatternSpace) -> np.ndarray:
    """(k,) the ternary code of annotator j saying 1 with the others missing: its likelihood is j's rate."""
    digits = 3 ** np.arange(space.k)
    return 2 * digits.sum() - digits


def _concentration(positive, negative, pi, spread: RateSpread, space: PatternSpace, annotators) -> np.ndarray:
    """(draws, points) the Dirichlet-multinomial's kappa for profiles rated by `annotators`: the most variable one's
    (their random effects move together where they rated the same profiles)."""
    codes = single_codes(space)[list(annotators)]
    kappas = [
        spread.annotator(j).concentration(positive[:, c, None], negative[:, c, None], pi[None, :])
        for j, c in zip(annotators, codes)
    ]
    return np.min(kappas, axis=0)


class _DrawBatchValues:
    """Values of the last draw batch that depend on the draws' rates, the grid and the spread alone, not on the
    organisations (the Dirichlet-multinomial concentrations, the matches' moments): computed once per draw batch and
    shared by an evidence's batches of organisations (a 100,000-organisation table has 1,563 of them)."""

    def __init__(self):
        self.key, self.values = (), {}
        self.lock = threading.RLock()  # batches of organisations are computed by several threads; values nest

    def get(self, positive, negative, pi, spread: RateSpread, name: tuple, compute):
        key = (positive, negative, pi, spread)  # held, so identity cannot be a freed object's
        with self.lock:
            if len(self.key) != len(key) or any(a is not b for a, b in zip(key, self.key)):
                self.key, self.values = key, {}
            if name not in self.values:
                self.values[name] = compute()
            return self.values[name]

    def concentration(self, positive, negative, pi, spread: RateSpread, space: PatternSpace, annotators) -> np.ndarray:
        annotators = tuple(int(j) for j in annotators)
        return self.get(
            positive,
            negative,
            pi,
            spread,
            ("concentration", annotators),
            lambda: _concentration(positive, negative, pi, spread, space, annotators),
        )


class PatternEvidence:
    """Per-profile patterns (partly missing): the exact likelihood of each (organisation, pattern) group."""

    def __init__(
        self,
        groups: ProfileGroups,
        space: PatternSpace,
        n_organisations: int,
        evidence_only: ProfileGroups | None = None,
    ):
        """`evidence_only`: further groups (e.g. an LLM's sample of profiles also counted in `groups`) that inform
        the prevalence but are not realised again."""
        self.groups, self.space = groups, space
        self.counts = np.zeros((n_organisations, 3**space.k))
        self.counts[groups.organisation, groups.code] = groups.count
        if evidence_only is not None:
            np.add.at(self.counts, (evidence_only.organisation, evidence_only.code), evidence_only.count)
        self.used_codes = np.flatnonzero(self.counts.sum(axis=0))
        self.shared = _DrawBatchValues()
        self.profiles = np.bincount(groups.organisation, weights=groups.count, minlength=n_organisations).astype(
            np.int64
        )

    def log_likelihood(self, positive, negative, pi, spread=NO_SPREAD, cells=ALL_CELLS):
        codes, p = self.used_codes, pi[cells]
        l1, l0 = positive[:, codes].T[:, :, None], negative[:, codes].T[:, :, None]  # (codes, draws, 1)
        if not spread.none:
            return self._spread_log_likelihood(p * l1 + (1 - p) * l0, positive, negative, pi, spread, cells)
        per_code = np.log(p * l1 + (1 - p) * l0)  # (codes, draws, points)
        flat = self.counts[:, codes] @ per_code.reshape(len(codes), -1)
        return flat.reshape(len(self.counts), positive.shape[0], len(p))

    def annotators_seen(self):
        return (self.counts > 0) @ (self.space.digits != 2) > 0

    def subset(self, rows):
        part = copy.copy(self)  # the used codes stay the whole table's, so a batch's likelihood is the table's rows
        position = np.full(len(self.counts), -1)
        position[rows] = np.arange(len(rows))
        kept = position[self.groups.organisation] >= 0
        g = self.groups
        part.groups = ProfileGroups(position[g.organisation[kept]], g.code[kept], g.count[kept])
        part.counts, part.profiles = self.counts[rows], self.profiles[rows]
        return part

    def without(self, j):
        place = 3**j
        digit = self.space.digits[:, j]
        moved = np.arange(3**self.space.k) + (2 - digit) * place  # each code with j's digit missing
        part = copy.copy(self)
        part.counts = np.zeros_like(self.counts)
        np.add.at(part.counts.T, moved, self.counts.T)
        part.counts[:, self.space.all_missing] = 0  # profiles that only j rated carry no evidence left
        part.used_codes = np.flatnonzero(part.counts.sum(axis=0))
        part.groups = ProfileGroups(self.groups.organisation, moved[self.groups.code], self.groups.count)
        return part if part.used_codes.size else None

    def _spread_log_likelihood(self, probabilities, positive, negative, pi, spread, cells):
        """A Dirichlet-multinomial per organisation and set of annotators that rated its profiles (the codes that
        share a missingness)."""
        observed = self.space.digits[self.used_codes] != 2  # (used codes, k)
        out = np.zeros((len(self.counts), *probabilities.shape[1:]))
        for mask in np.unique(observed, axis=0):
            same = np.flatnonzero((observed == mask).all(axis=1))
            kappa = self.shared.concentration(positive, negative, pi, spread, self.space, np.flatnonzero(mask))
            kappa = kappa[:, cells]
            counts = self.counts[:, self.used_codes[same]]
            rows = np.flatnonzero(counts.sum(axis=1))
            for start in range(0, len(rows), _ORGANISATIONS_PER_SPREAD_CHUNK):
                chunk = rows[start : start + _ORGANISATIONS_PER_SPREAD_CHUNK]
                out[chunk] += dirichlet_multinomial(counts[chunk], probabilities[same], kappa)
        return out

    def realise(self, positive, negative, prevalence, employees, rng, spread=NO_SPREAD):
        if not spread.none:
            return rng.binomial(employees[None, :], prevalence.T)
        g = self.groups
        draws = prevalence.shape[1]
        pi = prevalence[g.organisation].T  # (draws, groups)
        l1, l0 = positive[:, g.code], negative[:, g.code]
        expert = pi * l1 / (pi * l1 + (1 - pi) * l0)
        observed = rng.binomial(g.count[None, :], expert)
        n_org = len(employees)
        index = (np.arange(draws)[:, None] * n_org + g.organisation[None, :]).ravel()
        counts = np.bincount(index, weights=observed.ravel(), minlength=draws * n_org).reshape(draws, n_org)
        unobserved = rng.binomial((employees - self.profiles)[None, :], prevalence.T)
        return counts.astype(np.int64) + unobserved


class MarginalCountEvidence:
    """Counts mode with several annotators: only each annotator's number of matches per organisation.

    The vector of match counts of n profiles is a sum of n pattern vectors, so
    it is approximately normal with mean n * mu(pi) and covariance
    n * Sigma(pi) (+ 1/12 per count for discreteness), where mu and Sigma come
    from the joint pattern model and so carry the annotators' correlations.
    Which profiles matched together is unknown, so the realisation of every
    employee, observed or not, is Binomial(employees, pi).
    """

    def __init__(
        self, matches: np.ndarray, profiles: np.ndarray, space: PatternSpace, columns: list[int] | None = None
    ):
        """`matches` (organisations, len(columns)) of the model's annotators `columns` (default all) over `profiles`."""
        self.matches, self.profiles, self.space = matches.astype(np.float64), profiles.astype(np.float64), space
        self.shared = _DrawBatchValues()
        self.columns = list(range(space.k)) if columns is None else columns

    def log_likelihood(self, positive, negative, pi, spread=NO_SPREAD, cells=ALL_CELLS):
        mean_projected, vectors, variances, kappa = (
            None if value is None else value[..., cells]
            for value in self.shared.get(
                positive,
                negative,
                pi,
                spread,
                ("eigenbasis", tuple(self.columns)),
                lambda: self._eigenbasis(positive, negative, pi, spread),
            )
        )
        projection = vectors.reshape(len(self.columns), -1)
        out = np.zeros((len(self.profiles), *variances.shape[1:]))
        rows_per_chunk = max(1, _ELEMENTS_PER_CHUNK // variances.size)
        for start in range(0, len(self.profiles), rows_per_chunk):
            rows = slice(start, start + rows_per_chunk)
            n = self.profiles[rows][:, None, None].astype(np.float32)
            # the random effects' extra variance: a Dirichlet-multinomial's, n * cov * (1 + (n - 1) / (kappa + 1))
            scale = n if kappa is None else n * (1 + (n - 1).clip(0) / (kappa[None] + 1))
            matches = (self.matches[rows].astype(np.float32) @ projection).reshape(-1, *variances.shape)
            chunk = np.zeros((len(n), *variances.shape[1:]), np.float32)
            for j in range(len(variances)):  # in the eigenbasis: a sum over independent directions
                variance = scale * variances[j] + np.float32(1.0 / 12.0)
                residual = matches[:, j] - n * mean_projected[j]
                chunk += residual * residual / variance + np.log(variance)
            out[rows] = np.where(n > 0, np.float32(-0.5) * chunk, 0.0)
        return out

    def _eigenbasis(self, positive, negative, pi, spread):
        """One profile's matches' mean and covariance per (draw, point), in the covariance's eigenbasis, and the
        random effects' concentrations: what log_likelihood needs of the draws, whatever the organisations."""
        mean, cov = self._moments(positive, negative, pi)
        kappa = (
            None if spread.none else self.shared.concentration(positive, negative, pi, spread, self.space, self.columns)
        )
        # n * cov * inflation + I / 12 is diagonal in cov's eigenbasis, whatever the organisation: one
        # eigendecomposition per (draw, point) replaces a solve and a determinant per organisation
        variances, vectors = np.linalg.eigh(cov)  # (draws, points, k), (draws, points, k, k)
        # float32, eigen-directions first: the residuals' rounding (~0.1 match at 600,000 profiles) moves a log
        # likelihood by less than 1e-3 near its mode, and contiguous (organisations, draws, points) slices per
        # direction run ten times faster than reductions over a short last axis
        mean_projected = np.einsum("dgk,dgkj->jdg", mean, vectors).astype(np.float32)
        vectors = np.ascontiguousarray(np.moveaxis(vectors, (2, 3), (0, 1)), np.float32)  # (k, k, draws, points)
        variances = np.moveaxis(variances, 2, 0).astype(np.float32)  # (k, draws, points)
        return mean_projected, vectors, variances, None if kappa is None else kappa.astype(np.float32)

    def log_likelihood_at(self, positive, negative, pi):
        """(organisations, nodes) log likelihood at each organisation's own prevalences `pi` (organisations, nodes),
        under one set of (3^k,) code likelihoods and no spread; in float64 and exact per point, so that a sum over
        organisations moves smoothly with the rates (the population rates' fit)."""
        mean, cov = self._moments(positive[None], negative[None], pi.ravel())
        n = np.repeat(self.profiles, pi.shape[1])[:, None]
        variance = n[..., None] * cov[0] + np.eye(len(self.columns)) / 12.0  # (organisations * nodes, k, k)
        residual = np.repeat(self.matches, pi.shape[1], axis=0) - n * mean[0]
        quadratic = (residual * np.linalg.solve(variance, residual[..., None])[..., 0]).sum(axis=1)
        out = -0.5 * (quadratic + np.linalg.slogdet(variance)[1])
        return np.where(n[:, 0] > 0, out, 0.0).reshape(pi.shape)

    def _moments(self, positive, negative, pi) -> tuple[np.ndarray, np.ndarray]:
        """(draws, points, k) mean and (draws, points, k, k) covariance of one profile's matches at each pi."""
        sub = PatternSpace(len(self.columns))
        bits = sub.full.astype(np.float64)
        embedded = np.full((2**sub.k, self.space.k), -1, np.int8)  # the other annotators missing
        embedded[:, self.columns] = sub.full
        full_codes = self.space.codes(embedded)
        moments = []
        for likelihood in (positive, negative):
            theta = likelihood[:, full_codes]  # full patterns' probabilities (draws, 2^k)
            moments.append((theta @ bits, np.einsum("dp,pj,pk->djk", theta, bits, bits)))
        (mu1, m1), (mu0, m0) = moments
        w = pi[None, :, None]
        mean = w * mu1[:, None, :] + (1 - w) * mu0[:, None, :]  # (draws, points, k)
        second = w[..., None] * m1[:, None] + (1 - w[..., None]) * m0[:, None]
        return mean, second - mean[..., :, None] * mean[..., None, :]

    def realise(self, positive, negative, prevalence, employees, rng, spread=NO_SPREAD):
        return rng.binomial(employees[None, :], prevalence.T)

    def annotators_seen(self):
        seen = np.zeros((len(self.profiles), self.space.k), bool)
        seen[:, self.columns] = (self.profiles > 0)[:, None]
        return seen

    def subset(self, rows):
        part = MarginalCountEvidence(self.matches[rows], self.profiles[rows], self.space, self.columns)
        part.shared = self.shared
        return part

    def without(self, j):
        kept = [index for index, column in enumerate(self.columns) if column != j]
        if not kept:
            return None
        part = MarginalCountEvidence(
            self.matches[:, kept], self.profiles, self.space, [self.columns[index] for index in kept]
        )
        part.shared = self.shared  # its values are keyed by the columns
        return part


class CombinedEvidence:
    """Evidence from separate counts (e.g. keyword counts over everyone, an LLM's count on a sample): their log
    likelihoods add up as if the profiles were different ones; the experts are realised by the `primary` part."""

    def __init__(self, parts: list, primary: int):
        self.parts, self.primary = parts, primary

    def log_likelihood(self, positive, negative, pi, spread=NO_SPREAD, cells=ALL_CELLS):
        return sum(part.log_likelihood(positive, negative, pi, spread, cells) for part in self.parts)

    def realise(self, positive, negative, prevalence, employees, rng, spread=NO_SPREAD):
        return self.parts[self.primary].realise(positive, negative, prevalence, employees, rng, spread)

    def annotators_seen(self):
        return np.logical_or.reduce([part.annotators_seen() for part in self.parts])

    def subset(self, rows):
        return CombinedEvidence([part.subset(rows) for part in self.parts], self.primary)

    def without(self, j):
        parts = [kept for kept in (part.without(j) for part in self.parts) if kept is not None]
        return CombinedEvidence(parts, 0) if parts else None
