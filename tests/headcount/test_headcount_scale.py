"""The estimate at scale: organisations are taken in batches, which bound the memory and change no draw."""

from __future__ import annotations

import tracemalloc

import numpy as np
from scipy.special import expit, logit

from ml_headcount.headcount import model, prevalence_batches
from ml_headcount.headcount.annotator_evidence import MarginalCountEvidence, PatternEvidence, group_profiles
from ml_headcount.headcount.annotators import PatternSpace, code_likelihoods
from ml_headcount.headcount.model import bootstrap_joints, headcount_draws
from ml_headcount.headcount.population_rates import RateModel, with_marginals
from ml_headcount.headcount.prevalence_integral import log_marginal
from ml_headcount.headcount.prevalence_prior import PrevalenceGrid, Prior
from ml_headcount.headcount.rate_spread import RateSpread


def _validation(rng, n=400):
    """Labels and a broad and a strict keyword list's values on them (the strict list's matches inside the broad's)."""
    labels = rng.random(n) < 0.3
    score = rng.normal(size=n) + np.where(labels, 1.8, -0.6)
    return labels, np.stack([score > 0.3, score > 1.2], axis=1).astype(np.int8)


def _counts(rng, organisations):
    """Employees, profiles and both lists' matches per organisation, sizes 20 to 600,000."""
    employees = np.exp(rng.uniform(np.log(20), np.log(600_000), organisations)).astype(np.int64)
    profiles = rng.binomial(employees, 0.5)
    experts = rng.binomial(profiles, rng.beta(0.5, 6.0, organisations))
    broad = rng.binomial(experts, 0.9) + rng.binomial(profiles - experts, 0.2)
    strict = np.minimum(broad, rng.binomial(experts, 0.6) + rng.binomial(profiles - experts, 0.03))
    return employees, profiles, np.stack([broad, strict], axis=1)


def _draws(evidence, employees, labels, validation, per_batch, grid_points=64, **options):
    return headcount_draws(
        labels,
        validation,
        evidence,
        employees,
        draws=40,
        prior=Prior("hierarchical"),
        smoothing=4.0,
        transfer=1.0,
        grid_points=grid_points,
        rng=np.random.default_rng(3),
        organisations_per_batch=per_batch,
        **options,
    )


def test_batches_of_organisations_give_the_draws_of_the_whole_table():
    rng = np.random.default_rng(1)
    labels, validation = _validation(rng)
    employees, profiles, matches = _counts(rng, 45)
    types = np.array(["lab", "consultancy", "bank"])[rng.integers(0, 3, 45)]
    counts = MarginalCountEvidence(matches, profiles, PatternSpace(2))
    options = {"spread": RateSpread(0.9, 0.4), "types": types, "rated": matches}
    whole = _draws(counts, employees, labels, validation, None, **options)
    batched = _draws(counts, employees, labels, validation, 7, **options)
    np.testing.assert_array_equal(batched.counts, whole.counts)
    np.testing.assert_array_equal(batched.predicted, whole.predicted)
    np.testing.assert_allclose(batched.edge_mass, whole.edge_mass)

    organisation = np.repeat(np.arange(45), 30)
    values = validation[rng.integers(0, len(validation), len(organisation))]
    space = PatternSpace(2)
    patterns = PatternEvidence(group_profiles(organisation, values, space, 45), space, 45)
    employees = np.full(45, 100)
    whole = _draws(patterns, employees, labels, validation, None, spread=RateSpread(0.9, 0.4))
    batched = _draws(patterns, employees, labels, validation, 4, spread=RateSpread(0.9, 0.4))
    np.testing.assert_array_equal(batched.counts, whole.counts)


def test_posteriors_computed_on_the_cells_that_carry_their_mass_draw_what_the_whole_grid_draws(monkeypatch):
    """Beyond the organisations the population is fitted on, each batch's posterior is computed only on the run of
    cells within _NEGLIGIBLE of its maximum (found on a coarse grid): the draws are the whole grid's."""
    rng = np.random.default_rng(4)
    labels, validation = _validation(rng)
    employees, profiles, matches = _counts(rng, 45)
    types = np.array(["lab", "consultancy"])[rng.integers(0, 2, 45)]
    organisation = np.repeat(np.arange(45), 30)
    space = PatternSpace(2)
    values = validation[rng.integers(0, len(validation), len(organisation))]
    patterns = PatternEvidence(group_profiles(organisation, values, space, 45), space, 45)
    monkeypatch.setattr(model, "FIT_ORGANISATIONS", 20)  # the other 25 drawn as a large table's are
    widths = []
    whole_posterior = prevalence_batches.OrganisationBatches._log_posterior

    def recorded(self, *args):
        posterior = whole_posterior(self, *args)
        widths.append(posterior.shape[-1])
        return posterior

    monkeypatch.setattr(prevalence_batches.OrganisationBatches, "_log_posterior", recorded)
    cases = [
        (MarginalCountEvidence(matches, profiles, space), employees, {"types": types, "rated": matches}),
        (patterns, np.full(45, 100), {}),
    ]
    for evidence, sizes, options in cases:
        run = {"spread": RateSpread(0.9, 0.4), "grid_points": 256, **options}
        widths.clear()
        windowed = _draws(evidence, sizes, labels, validation, 5, **run)
        assert min(widths) < 256 / 2  # most cells were left out
        with monkeypatch.context() as every_cell:
            every_cell.setattr(prevalence_batches, "_NEGLIGIBLE", np.inf)
            whole = _draws(evidence, sizes, labels, validation, 5, **run)
        np.testing.assert_array_equal(windowed.counts, whole.counts)
        if "rated" in options:
            np.testing.assert_array_equal(windowed.predicted, whole.predicted)


def test_a_predictive_draws_interpolated_concentration_is_the_solved_one():
    """The concentration of an organisation's predictive draw is interpolated between prevalences, not solved for
    each organisation, draw and annotator: the solution's within 1e-3 wherever the Beta is not a point."""
    rng = np.random.default_rng(5)
    s, f = rng.uniform(0.3, 0.99, (16, 1, 2)), np.exp(rng.uniform(-9, -1, (16, 1, 2)))
    p = expit(rng.uniform(-16, 16, (16, 3000, 1)))
    for spread in (RateSpread(0.9, 0.5), RateSpread(np.array([0.9, 0.3]), np.array([0.2, 0.6]))):
        solved = spread.concentration(s, f, p)
        interpolated = spread._interpolated_concentration(s, f, p)
        error = np.abs(interpolated / solved - 1)[solved < 1e8]
        assert error.max() < 1e-3, error.max()


def test_the_memory_of_a_draw_batch_is_bounded_by_the_batches_of_organisations():
    """20,000 organisations' (organisations, draws, grid) arrays of one draw batch took several GB at once; a batch of
    organisations at a time holds them within a few hundred MB."""
    rng = np.random.default_rng(2)
    labels, validation = _validation(rng)
    employees, profiles, matches = _counts(rng, 20_000)
    counts = MarginalCountEvidence(matches, profiles, PatternSpace(2))
    tracemalloc.start()
    try:
        posterior = headcount_draws(
            labels,
            validation,
            counts,
            employees,
            draws=16,
            prior=Prior("hierarchical"),
            smoothing=4.0,
            transfer=1.0,
            grid_points=256,
            rng=np.random.default_rng(0),
            rated=matches,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 400 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    share = posterior.counts.mean(axis=0) / employees
    assert ((share >= 0) & (share <= 1)).all()


def test_population_rates_fitted_from_marginal_counts_are_the_rates_that_generated_them():
    """The fit integrates each organisation's prevalence around its own mode (the shared 1,024-point grid it
    replaced wiggled, next test, and took ~100 s of CPU for these 300 organisations): it lands on the generating
    rates, not the validation's."""
    rng = np.random.default_rng(4)
    labels, validation = _validation(rng)
    employees, profiles, matches = _counts(rng, 300)
    evidence = MarginalCountEvidence(matches, profiles, PatternSpace(2))
    posterior = _draws(evidence, employees, labels, validation, None, rates=RateModel("population"))
    false_positive = posterior.rates.mode[1]  # the broad list's, the strict list's, in logit
    generating = logit(np.array([0.2, 0.03]))  # _counts' rates, which the validation's (0.18, 0.036) are not
    assert np.all(np.abs(false_positive - generating) < 3 * posterior.rates.sd[1] + 0.02), (
        false_positive,
        generating,
        posterior.rates.sd[1],
    )


def test_the_population_rates_objective_on_marginal_counts_is_smooth_in_the_rates():
    """The cause of the fit's noise above: on a shared grid, the marginal likelihood of 300 organisations' counts
    wiggled by ~0.08 around any smooth curve as a false-positive rate moved by steps of 5e-4 (the peaks of large
    organisations' likelihoods crossing grid points). Around each organisation's own mode it follows one."""
    rng = np.random.default_rng(4)
    labels, validation = _validation(rng)
    _, profiles, matches = _counts(rng, 300)
    space = PatternSpace(2)
    evidence = MarginalCountEvidence(matches, profiles, space)
    expert_joint, other_joint = bootstrap_joints(space, labels, space.codes(validation), 4.0, 1.0, 1, None)
    positive = code_likelihoods(space, expert_joint)[0]
    false_positive = other_joint[0] @ space.full.astype(np.float64)
    grid = PrevalenceGrid(1024)

    def at_shift(shift: float) -> float:
        rates = false_positive + np.array([shift, 0.0])
        negative = code_likelihoods(space, with_marginals(space, other_joint, rates[None]))[0]
        return log_marginal(evidence, positive, negative, 1.0, 4.0, grid.centres, grid.log_widths)

    shifts = np.linspace(-0.004, 0.004, 17)
    values = np.array([at_shift(shift) for shift in shifts])
    wiggle = values - np.polyval(np.polyfit(shifts, values, 4), shifts)
    assert np.abs(wiggle).max() < 0.01, wiggle
