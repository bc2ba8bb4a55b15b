"""The prevalence grid and the prevalence priors: a fixed Beta, or a Beta learned across organisations by size.

The grid is uniform in logit; the hierarchical prior's mean depends on log employees so that giants with few experts
do not set the prior of small specialist firms, and, given organisation types, it is learned per type
(docs/headcount.md, "The prior").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import betaln, expit, logsumexp

_LOGIT_RANGE = 16.0  # the prevalence grid spans pi in [1.1e-7, 1 - 1.1e-7]: below one expert in a million employees
_MEAN_STEP = 0.4  # the hierarchical prior's means lie on a lattice in logit, this far apart
_MEAN_LATTICE = np.arange(-11.0, 3.0 + 1e-9, _MEAN_STEP)  # 1.7e-5 to 95 %
_SLOPES = np.arange(-3, 4)  # the mean's logit moves by slope * _MEAN_STEP per size class
_SIZE_CLASS = np.log(10.0) / 2  # size classes: half-decades of employees
_HYPER_CONCENTRATIONS = np.geomspace(0.5, 2000.0, 12)


@dataclass(frozen=True)
class PrevalenceGrid:
    """Grid over pi, uniform in logit space; cells carry their width for densities."""

    points: int

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-_LOGIT_RANGE, _LOGIT_RANGE, self.points + 1)

    @cached_property  # one array, so that values cached on it (annotator_evidence's) are found again
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

    def edge_matters(self, employees: np.ndarray) -> np.ndarray:
        """Per organisation, whether the prevalences beyond the grid's edges are worth half an employee or more.

        Below that, whatever posterior mass lies beyond an edge cannot move a count (a 640,000-employee firm's
        floor is 0.07 experts), so mass in its edge cell says the data put it near 0 (or 1), not that the grid cut
        it off.
        """
        return employees * expit(-_LOGIT_RANGE) >= 0.5

    def sample(
        self, log_posterior: np.ndarray, uniforms: tuple[np.ndarray, np.ndarray], first: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """One pi per row of (..., cells) unnormalised log posteriors on the grid's cells from `first` on (the rest
        carrying no mass), uniform in logit within the chosen cell, and each row's posterior mass in the grid's two
        edge cells. `uniforms`: two arrays of uniform numbers, shaped as the rows, that choose the cell and the
        place in it (drawn for every organisation at once, so that a batch of organisations draws what the whole
        table would)."""
        shifted = np.exp(log_posterior - log_posterior.max(axis=-1, keepdims=True))
        cumulative = np.cumsum(shifted, axis=-1)
        u = uniforms[0][..., None] * cumulative[..., -1:]
        cells = shifted.shape[-1]
        cell = first + np.minimum((cumulative < u).sum(axis=-1), cells - 1)
        edges = self.edges
        in_edges = shifted[..., 0] * (first == 0) + shifted[..., -1] * (first + cells == self.points)
        return expit(edges[cell] + uniforms[1] * (edges[1] - edges[0])), in_edges / cumulative[..., -1]


@dataclass(frozen=True)
class Prior:
    """`fixed`: Beta(alpha, beta) for every organisation; `hierarchical`: a Beta learned across organisations."""

    kind: str
    alpha: float = 2.0
    beta: float = 10.0


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

    def log_marginals(self, draws: int) -> np.ndarray:
        """Zeros to add the organisations' log marginal likelihoods to: (size classes, draws, means, concentrations)."""
        return np.zeros((self.mean_index.shape[2], draws, len(_MEAN_LATTICE), len(_HYPER_CONCENTRATIONS)))

    def accumulate(self, totals: np.ndarray, log_likelihood: np.ndarray, rows: np.ndarray) -> None:
        """Add the log marginal likelihood of organisations `rows` (their log likelihood: (rows, draws, points))
        under each (mean, concentration) cell to their size classes' `totals`: organisations are independent given
        the hyperparameters, so a table's is the sum of its batches'."""
        organisations, draws, points = log_likelihood.shape
        shift = log_likelihood.max(axis=2, keepdims=True)
        relative = _without_tiny(np.exp(log_likelihood - shift)).reshape(-1, points)
        marginal = np.log(np.maximum(relative @ self.mass.T, 1e-300)).reshape(organisations, draws, -1) + shift
        n_classes = totals.shape[0]
        membership = (self.size_class[rows][None, :] == np.arange(n_classes)[:, None]).astype(np.float64)
        totals += (membership @ marginal.reshape(organisations, -1)).reshape(totals.shape)

    def draw(self, totals: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per draw, (intercept, slope, concentration) indices from their posterior given the `totals`."""
        n_classes, draws, n_means, n_conc = totals.shape
        # log posterior of (intercept, slope, concentration): each size class at its mean
        classes = np.arange(n_classes)[None, None, :]
        log_post = totals[classes, :, self.mean_index].sum(axis=2)  # (intercepts, slopes, draws, concentrations)
        log_post = np.where(self.valid[:, :, None, None], log_post, -np.inf)
        log_post = np.moveaxis(log_post, 2, 0).reshape(draws, -1)
        probability = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
        cells = np.minimum((probability.cumsum(axis=1) < rng.random((draws, 1))).sum(axis=1), log_post.shape[1] - 1)
        return np.unravel_index(cells, (n_means, len(_SLOPES), n_conc))

    def log_prior(
        self, drawn: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray, cells: slice = slice(None)
    ) -> np.ndarray:
        """(rows, draws, cells) the log prior of organisations `rows` on the grid's `cells` under each draw's `drawn`
        hyperparameters."""
        intercept, slope, concentration = drawn
        mean = self.mean_index[intercept[None, :], slope[None, :], self.size_class[rows][:, None]]
        return self.log_mass[:, cells][mean * len(_HYPER_CONCENTRATIONS) + concentration[None, :]]


class PerTypePrior:
    """One HierarchicalPrior per organisation type: organisations of one type share a prior, and no type speaks for
    another (a consultancy's few experts do not set a research lab's prior)."""

    def __init__(self, grid: PrevalenceGrid, employees: np.ndarray, types: np.ndarray):
        _, self.type_of = np.unique(types, return_inverse=True)
        self.members = [np.flatnonzero(self.type_of == kind) for kind in range(self.type_of.max() + 1)]
        self.position = np.empty(len(types), np.int64)  # each organisation's index among its type's
        for members in self.members:
            self.position[members] = np.arange(len(members))
        self.priors = [HierarchicalPrior(grid, employees[members]) for members in self.members]

    def log_marginals(self, draws: int) -> list[np.ndarray]:
        return [prior.log_marginals(draws) for prior in self.priors]

    def accumulate(self, totals: list[np.ndarray], log_likelihood: np.ndarray, rows: np.ndarray) -> None:
        for kind, (total, prior) in enumerate(zip(totals, self.priors)):
            mine = self.type_of[rows] == kind
            if mine.any():
                prior.accumulate(total, log_likelihood[mine], self.position[rows[mine]])

    def draw(self, totals: list[np.ndarray], rng: np.random.Generator) -> list:
        return [prior.draw(total, rng) for total, prior in zip(totals, self.priors)]

    def log_prior(self, drawn: list, rows: np.ndarray, cells: slice = slice(None)) -> np.ndarray:
        """(rows, draws, cells) log prior, each type's from its own hierarchical prior."""
        kinds = self.type_of[rows]
        out = np.empty((len(rows), len(drawn[0][0]), len(self.priors[0].log_mass[0, cells])))
        for kind, prior in enumerate(self.priors):
            mine = kinds == kind
            if mine.any():
                out[mine] = prior.log_prior(drawn[kind], self.position[rows[mine]], cells)
        return out
