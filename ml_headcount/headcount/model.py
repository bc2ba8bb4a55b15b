"""Posterior predictive draws of each organisation's number of ML experts.

Inputs are numpy arrays: the validation labels and the chosen annotators'
values (int8, MISSING = -1), and the population either as profile groups
(organisation, ternary pattern code, number of profiles) or as marginal match
counts per organisation and annotator. Output: (draws, organisations) integer
counts of experts among each organisation's employees.

Every draw combines the four sources of uncertainty (docs/headcount.md):

1. validation resampling: the validation rows are resampled with replacement
   within each class and the joint pattern model (ml_headcount.headcount.annotators) is
   refitted, so the annotators' error rates and correlations vary; `transfer`
   widens this for the population's annotators differing from the validation
   set's (see bootstrap_likelihoods);
2. the prior: each organisation's prevalence pi_c has a Beta prior. `fixed`
   uses the configured Beta(alpha, beta) (the study's Beta(2, 10)) for every
   organisation; `hierarchical` learns the Beta from all organisations
   (a grid of means and concentrations with a uniform hyperprior) and draws
   its parameters from their posterior in every draw (HierarchicalPrior);
3. which employees were observed: pi_c is drawn from its posterior given the
   organisation's observed profiles only (a grid over pi, exact up to the grid),
   and the employees without a profile (employees - profiles) are experts with
   probability pi_c: Binomial(employees - profiles, pi_c);
4. realisation: each observed profile is an expert with its posterior
   probability P(expert | pattern, pi_c), drawn as Binomial per
   (organisation, pattern) group, so counts are integers, not expectations.

Profiles with no annotation at all carry no evidence and are treated like
unobserved employees. An organisation with no profiles gets the prior.

Error rates that do not transfer (`RateModel("population")`, the default of
`estimate`): the validation table is prior information about each annotator's
rates, not their value in the population. The population's per-class rates are
learned jointly with the prevalences (population_rates); each draw's joint
pattern model is the bootstrap's, tilted to that draw's population rates, so the
within-class dependence stays the validation's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import betaln, expit, logsumexp

from ml_headcount.headcount.annotators import PatternSpace, code_likelihoods, fit_joint
from ml_headcount.headcount.population_rates import PopulationRates, RateModel, population_rates, with_marginals

DRAWS_PER_BATCH = 16
_ORGANISATIONS_PER_CHUNK = 32
_LOGIT_RANGE = 16.0  # the prevalence grid spans pi in [1.1e-7, 1 - 1.1e-7]: below one expert in a million employees
_FIT_POINTS = 1024  # the prevalence grid on which the population error rates are fitted from marginal counts
_RATE_REPLICATES = 8  # bootstrap replicates whose refitted population rates add the dependence's uncertainty
EDGE_MASS = 0.01  # an estimate with more posterior mass than this in a grid's edge cell is flagged
_MEAN_STEP = 0.4  # the hierarchical prior's means lie on a lattice in logit, this far apart
_MEAN_LATTICE = np.arange(-11.0, 3.0 + 1e-9, _MEAN_STEP)  # 1.7e-5 to 95 %
_SLOPES = np.arange(-3, 4)  # the mean's logit moves by slope * _MEAN_STEP per size class
_SIZE_CLASS = np.log(10.0) / 2  # size classes: half-decades of employees
_HYPER_CONCENTRATIONS = np.geomspace(0.5, 2000.0, 12)


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


@dataclass(frozen=True)
class PrevalenceGrid:
    """Grid over pi, uniform in logit space; cells carry their width for densities."""

    points: int

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-_LOGIT_RANGE, _LOGIT_RANGE, self.points + 1)

    @property
    def centres(self) -> np.ndarray:
        edges = self.edges
        return expit((edges[:-1] + edges[1:]) / 2)

    @property
    def log_widths(self) -> np.ndarray:
        return np.log(np.diff(expit(self.edges)))

    def beta_log_mass(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """(n, points) log prior mass per cell of Beta(alpha, beta) for (n,) parameters, normalised on the grid."""
        pi = self.centres[None, :]
        log_density = (
            (alpha[:, None] - 1) * np.log(pi) + (beta[:, None] - 1) * np.log1p(-pi) - betaln(alpha, beta)[:, None]
        )
        log_mass = log_density + self.log_widths[None, :]
        return log_mass - logsumexp(log_mass, axis=1, keepdims=True)

    def sample(self, log_posterior: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One pi per row of (..., points) unnormalised log posteriors, uniform in logit within the chosen cell,
        and each row's posterior mass in the two edge cells."""
        shifted = np.exp(log_posterior - log_posterior.max(axis=-1, keepdims=True))
        cumulative = np.cumsum(shifted, axis=-1)
        u = rng.random(log_posterior.shape[:-1])[..., None] * cumulative[..., -1:]
        cell = np.minimum((cumulative < u).sum(axis=-1), self.points - 1)
        edges = self.edges
        edge_mass = (shifted[..., 0] + shifted[..., -1]) / cumulative[..., -1]
        return expit(edges[cell] + rng.random(cell.shape) * (edges[1] - edges[0])), edge_mass


@dataclass(frozen=True)
class Prior:
    """`fixed`: Beta(alpha, beta) for every organisation; `hierarchical`: a Beta learned across organisations."""

    kind: str
    alpha: float = 2.0
    beta: float = 10.0


class Evidence(Protocol):
    """What the observed profiles say about each organisation's pi, and how their experts are realised."""

    def log_likelihood(self, positive: np.ndarray, negative: np.ndarray, pi: np.ndarray) -> np.ndarray:
        """(organisations, draws, points) for per-draw code likelihoods (draws, 3^k) of each class."""

    def realise(
        self,
        positive: np.ndarray,
        negative: np.ndarray,
        prevalence: np.ndarray,
        employees: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """(draws, organisations) integer expert counts given each draw's pi per organisation (organisations, draws)."""


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
        self.profiles = np.bincount(groups.organisation, weights=groups.count, minlength=n_organisations).astype(
            np.int64
        )

    def log_likelihood(self, positive, negative, pi):
        codes = self.used_codes
        l1, l0 = positive[:, codes].T[:, :, None], negative[:, codes].T[:, :, None]  # (codes, draws, 1)
        per_code = np.log(pi * l1 + (1 - pi) * l0)  # (codes, draws, points)
        flat = self.counts[:, codes] @ per_code.reshape(len(codes), -1)
        return flat.reshape(len(self.counts), positive.shape[0], len(pi))

    def realise(self, positive, negative, prevalence, employees, rng):
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
        self.columns = list(range(space.k)) if columns is None else columns

    def log_likelihood(self, positive, negative, pi):
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
        cov = second - mean[..., :, None] * mean[..., None, :]  # (draws, points, k, k)
        out = np.zeros((len(self.profiles), positive.shape[0], len(pi)))
        for start in range(
            0, len(self.profiles), _ORGANISATIONS_PER_CHUNK
        ):  # bounds the (orgs, draws, points, k, k) array
            rows = slice(start, start + _ORGANISATIONS_PER_CHUNK)
            n = self.profiles[rows]
            total_cov = n[:, None, None, None, None] * cov[None] + np.eye(sub.k) / 12.0
            residual = self.matches[rows, None, None, :] - n[:, None, None, None] * mean[None]
            solved = np.linalg.solve(total_cov, residual[..., None])[..., 0]
            _, log_det = np.linalg.slogdet(total_cov)
            chunk = -0.5 * (np.einsum("odgk,odgk->odg", residual, solved) + log_det)
            out[rows] = np.where(n[:, None, None] > 0, chunk, 0.0)
        return out

    def realise(self, positive, negative, prevalence, employees, rng):
        return rng.binomial(employees[None, :], prevalence.T)


class CombinedEvidence:
    """Evidence from separate counts (e.g. keyword counts over everyone, an LLM's count on a sample): their log
    likelihoods add up as if the profiles were different ones; the experts are realised by the `primary` part."""

    def __init__(self, parts: list, primary: int):
        self.parts, self.primary = parts, primary

    def log_likelihood(self, positive, negative, pi):
        return sum(part.log_likelihood(positive, negative, pi) for part in self.parts)

    def realise(self, positive, negative, prevalence, employees, rng):
        return self.parts[self.primary].realise(positive, negative, prevalence, employees, rng)


def bootstrap_joints(
    space: PatternSpace,
    labels: np.ndarray,
    codes: np.ndarray,
    smoothing: float,
    transfer: float,
    draws: int,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(draws, 2^k) joint pattern distributions per class, refitted on class-stratified resamples (rng None: the data).

    `transfer` > 0 resamples n / (1 + transfer) rows per class (weighted back to
    n), which multiplies the resampling variance of the error rates by
    (1 + transfer): the population's annotators differ from the validation
    set's as much as `transfer` further validation samples would.
    """
    fitted = []
    for cls in (True, False):
        class_codes = codes[labels == cls]
        n = len(class_codes)
        if rng is None:
            weights = np.ones((1, n))
        else:
            m = max(1, round(n / (1.0 + transfer)))
            weights = rng.multinomial(m, np.full(n, 1.0 / n), size=draws) * (n / m)
        counts = np.zeros((weights.shape[0], 3**space.k))
        np.add.at(counts.T, class_codes, weights.T)
        fitted.append(fit_joint(space, counts, smoothing))
    return fitted[0], fitted[1]


def _without_tiny(values: np.ndarray) -> np.ndarray:
    """Values below 1e-150 set to 0: their products would be subnormal floats, which slow matrix products ~100x."""
    values[values < 1e-150] = 0.0
    return values


class HierarchicalPrior:
    """A Beta over the organisations' prevalences whose mean depends on their size; drawn from its posterior per draw.

    logit(mean of organisation c) = intercept + slope * (size class of c - the middle class), size classes being
    half-decades of employees, so that giants with few experts do not set the prior of small specialist firms.
    Intercepts lie on a lattice in logit (1.7e-5 to 95 %), slopes move the mean by -3..3 lattice steps per size
    class, concentrations are log-uniform from 0.5 to 2000, under a uniform hyperprior; organisations are
    independent given it. Because every (intercept, slope) puts each size class on a lattice mean, one matrix
    product per (mean, concentration) cell serves all of them. The posterior is recomputed in every draw from that
    draw's error rates: a prior learned once from point estimates would hide the error rates' uncertainty.
    """

    def __init__(self, grid: PrevalenceGrid, employees: np.ndarray):
        mean, concentration = np.meshgrid(expit(_MEAN_LATTICE), _HYPER_CONCENTRATIONS, indexing="ij")
        self.log_mass = grid.beta_log_mass((mean * concentration).ravel(), ((1 - mean) * concentration).ravel())
        self.mass = _without_tiny(np.exp(self.log_mass))  # (means * concentrations, points)
        size_class = np.floor(np.log(np.maximum(employees, 1)) / _SIZE_CLASS).astype(int)
        classes, self.size_class = np.unique(size_class, return_inverse=True)
        offset = classes - (classes.min() + classes.max()) // 2
        # mean index of each (intercept, slope, size class); combinations leaving the lattice are not in the hyperprior
        index = np.arange(len(_MEAN_LATTICE))[:, None, None] + _SLOPES[None, :, None] * offset[None, None, :]
        self.valid = ((index >= 0) & (index < len(_MEAN_LATTICE))).all(axis=2)  # (intercepts, slopes)
        self.mean_index = np.clip(index, 0, len(_MEAN_LATTICE) - 1)

    def sample(self, log_likelihood: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(organisations, draws, points) log prior per organisation and draw for such log likelihoods."""
        organisations, draws, points = log_likelihood.shape
        n_means, n_conc = len(_MEAN_LATTICE), len(_HYPER_CONCENTRATIONS)
        shift = log_likelihood.max(axis=2, keepdims=True)
        relative = _without_tiny(np.exp(log_likelihood - shift)).reshape(-1, points)
        marginal = np.log(np.maximum(relative @ self.mass.T, 1e-300)).reshape(organisations, draws, -1) + shift
        n_classes = self.mean_index.shape[2]
        membership = (self.size_class[None, :] == np.arange(n_classes)[:, None]).astype(np.float64)
        per_class = (membership @ marginal.reshape(organisations, -1)).reshape(n_classes, draws, n_means, n_conc)
        # log posterior of (intercept, slope, concentration): each size class at its mean
        classes = np.arange(n_classes)[None, None, :]
        log_post = per_class[classes, :, self.mean_index].sum(axis=2)  # (intercepts, slopes, draws, concentrations)
        log_post = np.where(self.valid[:, :, None, None], log_post, -np.inf)
        log_post = np.moveaxis(log_post, 2, 0).reshape(draws, -1)
        probability = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
        cells = np.minimum((probability.cumsum(axis=1) < rng.random((draws, 1))).sum(axis=1), log_post.shape[1] - 1)
        intercept, slope, concentration = np.unravel_index(cells, (n_means, len(_SLOPES), n_conc))
        mean = self.mean_index[intercept[None, :], slope[None, :], self.size_class[:, None]]  # (organisations, draws)
        return self.log_mass[mean * n_conc + concentration[None, :]]


@dataclass(frozen=True)
class Posterior:
    """The draws and what they rest on."""

    counts: np.ndarray  # (draws, organisations) expert counts
    edge_mass: np.ndarray  # (organisations,) mean posterior mass of pi in the grid's edge cells
    rates: PopulationRates | None  # the population error rates, when learned


def headcount_draws(
    labels: np.ndarray,
    validation_values: np.ndarray,
    evidence: Evidence,
    employees: np.ndarray,
    *,
    draws: int,
    prior: Prior,
    smoothing: float,
    transfer: float,
    grid_points: int,
    rng: np.random.Generator,
    rates: RateModel = RateModel("validation"),
) -> Posterior:
    """Posterior predictive expert counts per draw and organisation; see the module docstring."""
    space = PatternSpace(validation_values.shape[1])
    codes = space.codes(validation_values)
    grid = PrevalenceGrid(grid_points)
    pi = grid.centres
    hierarchical = HierarchicalPrior(grid, employees) if prior.kind == "hierarchical" else None
    fixed_prior = grid.beta_log_mass(np.array([prior.alpha]), np.array([prior.beta]))[None]
    learned = None
    if rates.kind == "population":
        point = bootstrap_joints(space, labels, codes, smoothing, transfer, 1, None)
        replicates = bootstrap_joints(space, labels, codes, smoothing, transfer, _RATE_REPLICATES, rng)
        fine = PrevalenceGrid(_FIT_POINTS)
        learned = population_rates(
            space,
            tuple(np.concatenate(pair) for pair in zip(point, replicates)),
            validation_values,
            labels,
            evidence,
            rates,
            fine.centres,
            fine.log_widths,
        )

    result = np.empty((draws, len(employees)), dtype=np.int64)
    edge_mass = np.zeros(len(employees))
    for start in range(0, draws, DRAWS_PER_BATCH):
        batch = min(DRAWS_PER_BATCH, draws - start)
        joints = bootstrap_joints(space, labels, codes, smoothing, transfer, batch, rng)
        if learned is not None:
            drawn = learned.sample(batch, rng)  # (batch, 2, k) population rates
            joints = tuple(with_marginals(space, joint, drawn[:, c]) for c, joint in enumerate(joints))
        positive, negative = (code_likelihoods(space, joint) for joint in joints)
        log_likelihood = evidence.log_likelihood(positive, negative, pi)
        log_prior = hierarchical.sample(log_likelihood, rng) if hierarchical else fixed_prior
        prevalence, edge = grid.sample(log_likelihood + log_prior, rng)  # (organisations, batch)
        edge_mass += edge.sum(axis=1)
        result[start : start + batch] = evidence.realise(positive, negative, prevalence, employees, rng)
    return Posterior(result, edge_mass / draws, learned)


def summarise(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and the 10/50/90 % quantiles per column of (draws, n) counts (quantiles are observed counts)."""
    q10, q50, q90 = np.quantile(draws, [0.1, 0.5, 0.9], axis=0, method="inverted_cdf")
    return {"mean": draws.mean(axis=0), "q10": q10, "q50": q50, "q90": q90}
