"""Each draw batch's prevalences, a batch of organisations at a time: on the grid cells that carry each batch's
posterior mass, a thread per core.

Organisations are independent given the draw's rates and the hierarchical
prior's hyperparameters, so their batches can be computed in any order and at
once; the random numbers are drawn for the whole table first, so the batches
change no draw.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ml_headcount.headcount.annotator_evidence import ALL_CELLS
from ml_headcount.headcount.prevalence_prior import HierarchicalPrior, PerTypePrior, PrevalenceGrid

_COARSE_STEP = 16  # where an organisation's posterior lies is found on every 16th cell of the prevalence grid
_NEGLIGIBLE = 40.0  # cells whose log posterior is this far below the maximum carry no mass (e^-40) and are left out


@dataclass(frozen=True)
class OrganisationBatches:
    """Each draw batch's prevalences, computed a batch of organisations at a time."""

    batches: list  # (rows, evidence, rate group) covering every organisation
    fit_batches: list  # (rows, evidence, rate group) covering the organisations the hierarchical prior is learned from
    grid: PrevalenceGrid
    hierarchical: HierarchicalPrior | PerTypePrior | None
    fixed_prior: np.ndarray

    def prevalences(self, likelihoods, spread, rng) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """(organisations, draws) prevalences and their posterior mass in the grid's edge cells, given each rate
        group's (positive, negative) code likelihoods: the hierarchical prior's hyperparameters drawn from the sum
        over the fitted organisations' batches, then each batch's; and the hyperparameters drawn (None: the fixed
        prior)."""
        pi, draws = self.grid.centres, likelihoods[0][0].shape[0]
        drawn, kept = None, []
        if self.hierarchical is not None:
            totals = self.hierarchical.log_marginals(draws)
            for rows, part, group in self.fit_batches:
                log_likelihood = part.log_likelihood(*likelihoods[group], pi, spread)
                self.hierarchical.accumulate(totals, log_likelihood, rows)
                if self.fit_batches is self.batches:  # fitted on every organisation: at most FIT_ORGANISATIONS' kept
                    kept.append(log_likelihood)
            drawn = self.hierarchical.draw(totals, rng)
        organisations = sum(len(rows) for rows, _, _ in self.batches)
        uniforms = rng.random((organisations, draws)), rng.random((organisations, draws))
        prevalence, edge = np.empty((organisations, draws)), np.empty((organisations, draws))

        def sample(index: int) -> None:
            rows, part, group = self.batches[index]
            if kept:
                log_posterior, first = kept[index] + self._log_prior(drawn, rows, ALL_CELLS), 0
            else:
                log_posterior, first = self._where_it_lies(part, likelihoods[group], spread, drawn, rows)
            prevalence[rows], edge[rows] = self.grid.sample(
                log_posterior, (uniforms[0][rows], uniforms[1][rows]), first
            )

        # a thread per core: the batches write their own rows, draw no random numbers, and spend their time in
        # numpy's elementwise loops, which let go of the interpreter (one core was busy while the other idled)
        with ThreadPoolExecutor(os.cpu_count()) as threads:
            list(threads.map(sample, range(len(self.batches))))
        return prevalence, edge, drawn

    def held_out_prevalence(self, rows, evidence, likelihoods, spread, drawn, rng) -> np.ndarray:
        """(rows, draws) prevalences of the organisations `rows` given `evidence` (None: none, the prior alone) under
        the hierarchical prior's `drawn` hyperparameters, as `prevalences` drew them from the whole table."""
        draws = likelihoods[0].shape[0]
        log_prior = np.broadcast_to(self._log_prior(drawn, rows, ALL_CELLS), (len(rows), draws, self.grid.points))
        if evidence is not None:
            log_prior = log_prior + evidence.log_likelihood(*likelihoods, self.grid.centres, spread)
        uniforms = rng.random((len(rows), draws)), rng.random((len(rows), draws))
        return self.grid.sample(log_prior, uniforms)[0]

    def _log_prior(self, drawn, rows: np.ndarray, cells: slice) -> np.ndarray:
        return self.fixed_prior[..., cells] if drawn is None else self.hierarchical.log_prior(drawn, rows, cells)

    def _log_posterior(self, part, likelihoods, spread, drawn, rows: np.ndarray, cells: slice) -> np.ndarray:
        log_likelihood = part.log_likelihood(*likelihoods, self.grid.centres, spread, cells)
        return log_likelihood + self._log_prior(drawn, rows, cells)

    def _where_it_lies(self, part, likelihoods, spread, drawn, rows: np.ndarray) -> tuple[np.ndarray, int]:
        """A batch's log posterior on the run of cells that carries its mass, and the first of those cells.

        Within _NEGLIGIBLE of its maximum, an organisation's posterior spans about 140 of the default grid's 256
        cells and a batch's about 170, so a third of a large table's work went to cells with no mass. The run is
        found on every _COARSE_STEP-th cell, a sixteenth of the work: from the coarse cell before the first within
        _NEGLIGIBLE of its row's maximum to the coarse cell after the last. A posterior with one mode falls further
        beyond them, and the posteriors here have one: log-concave in pi where the rates are the population's (a
        log-concave likelihood of a mixture, a Beta prior, a cell's width pi (1 - pi) in pi), and smooth over many
        cells where they spread. So the draws are the whole grid's (tests/headcount/test_headcount_scale.py)."""
        step, points = _COARSE_STEP, self.grid.points
        coarse = self._log_posterior(part, likelihoods, spread, drawn, rows, slice(step // 2, None, step))
        near = np.flatnonzero((coarse >= coarse.max(axis=-1, keepdims=True) - _NEGLIGIBLE).any(axis=(0, 1)))
        first = max(0, step // 2 + step * (near[0] - 1))
        last = min(points - 1, step // 2 + step * (near[-1] + 1))
        return self._log_posterior(part, likelihoods, spread, drawn, rows, slice(first, last + 1)), first
