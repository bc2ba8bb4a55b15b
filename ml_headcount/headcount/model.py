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

Error rates that differ between organisations (`spread`, rate_spread): each
organisation's rates are the population's shifted by a random effect, integrated
out in the likelihood (a Dirichlet-multinomial), and its experts are realised
from its prevalence alone.

Organisation types (`types`): each type's population rates are learned from its own organisations, their prior
the validation's widened by the type's share of the organisations' spread (_rates_by_type, TYPE_SHARE): a keyword
list's false-positive rate in analytics consultancies is not its rate in outsourcing firms, and one rate for both
read the first's false matches as experts.

Posterior predictive checks (`rated`): per draw, each organisation's matches of
every model annotator among the profiles it rated, from the draw's prevalence and
rates (with a fresh random effect): what the fitted model says the inputs
should look like. And for the whole-table check (`held_out`), on the fitted
organisations, each annotator's matches drawn from the prevalence that the
organisation's other evidence gives: a count does not pull its own interval.

Error rates that do not transfer (`RateModel("population")`, the default of
`estimate`): the validation table is prior information about each annotator's
rates, not their value in the population. The population's per-class rates are
learned jointly with the prevalences, and so is a shift of each pair of annotators'
within-class log odds ratio from the validation's (population_rates); each draw's
joint pattern model is the bootstrap's, tilted to that draw's dependence shift and
population rates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import logsumexp

from ml_headcount.config import HeadcountSettings
from ml_headcount.headcount.annotator_evidence import AnnotatorEvidence, single_codes
from ml_headcount.headcount.annotators import PatternSpace, code_likelihoods, fit_joint, nested_annotators
from ml_headcount.headcount.population_rates import (
    PopulationRates,
    RateModel,
    population_rates,
    with_dependence,
    with_marginals,
)
from ml_headcount.headcount.prevalence_batches import OrganisationBatches
from ml_headcount.headcount.prevalence_prior import HierarchicalPrior, PerTypePrior, PrevalenceGrid, Prior
from ml_headcount.headcount.rate_spread import LearnedSpread, RateSpread, learned_spread

DRAWS_PER_BATCH = 16
# (organisations, draws, points) elements per batch of organisations: 8 MB arrays, which stay near the processor
# (arrays of hundreds of MB ran many times slower per element, besides the memory they took), and large enough that
# the threads' numpy loops outweigh the interpreter's work between them (20,000 organisations x 200 draws: 22.5 s of
# prevalences, against 31 s in 2 MB batches)
_BATCH_ELEMENTS = 2**20
FIT_ORGANISATIONS = 2_000  # population-level quantities are fitted on at most this many organisations
_FIT_POINTS = 1024  # the prevalence grid on which the population error rates are fitted from marginal counts
_RATE_REPLICATES = 8  # bootstrap replicates whose refitted population rates add the dependence's uncertainty
# of the organisations' rate variance (the spread), the share a type's shift takes where types are given; each
# organisation's own effect takes the rest. Both whole, an organisation's rate varied twice as much as the settings
# say, and a count far above its type's rate was read as experts (docs/calibration.md, f)
TYPE_SHARE = 0.5
EDGE_MASS = 0.01  # an estimate with more posterior mass than this in a grid's edge cell is flagged


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


@dataclass(frozen=True)
class Posterior:
    """The draws and what they rest on."""

    counts: np.ndarray  # (draws, organisations) expert counts
    edge_mass: np.ndarray  # (organisations,) mean posterior mass of pi in the grid's edge cells, where they matter
    rates: PopulationRates | None  # the population error rates, when learned
    predicted: np.ndarray | None = None  # (draws, organisations, k) posterior predictive matches, given `rated`
    spread: LearnedSpread | None = None  # how far the organisations' rates spread around the population's
    fitted: int | None = None  # the organisations population-level quantities were fitted on (fitted_organisations)
    # the fitted organisations and (draws, those organisations, k) each model annotator's matches drawn from the
    # prevalence the other annotators' evidence gives (the prior alone where there is none): the whole-table check
    held_out: tuple[np.ndarray, np.ndarray] | None = None


def model_options(settings: HeadcountSettings) -> dict:
    """`headcount_draws`' model options as the settings give them: its prior, smoothing, transfer, grid and rates."""
    return {
        "prior": Prior(settings.prior, settings.prior_alpha, settings.prior_beta),
        "smoothing": settings.smoothing,
        "transfer": settings.transfer,
        "grid_points": settings.grid_points,
        "rates": RateModel(settings.error_rates, settings.rate_shift_sd),
        "spread": RateSpread(settings.rate_spread_sd, settings.sensitivity_spread_sd),
    }


def headcount_draws(
    labels: np.ndarray,
    validation_values: np.ndarray,
    evidence: AnnotatorEvidence,
    employees: np.ndarray,
    *,
    draws: int,
    prior: Prior,
    smoothing: float,
    transfer: float,
    grid_points: int,
    rng: np.random.Generator,
    rates: RateModel = RateModel("validation"),
    spread: RateSpread = RateSpread(),
    types: np.ndarray | None = None,
    rated: np.ndarray | None = None,
    organisations_per_batch: int | None = None,
) -> Posterior:
    """Posterior predictive expert counts per draw and organisation; see the module docstring. With `types` (one per
    organisation) the hierarchical prior and the population rates are learned per type; with `rated` (organisations,
    k), the profiles each model annotator rated, the predictive draws of its matches too. Organisations are taken in
    batches of `organisations_per_batch` (default: as many as _BATCH_ELEMENTS hold), which bound the memory and leave
    the draws as they are; population-level quantities are fitted on `fitted_organisations`."""
    space = PatternSpace(validation_values.shape[1])
    codes = space.codes(validation_values)
    grid = PrevalenceGrid(grid_points)
    fit = fitted_organisations(employees)
    point = bootstrap_joints(space, labels, codes, smoothing, transfer, 1, None)
    replicates = None
    if rates.kind == "population":
        replicates = bootstrap_joints(space, labels, codes, smoothing, transfer, _RATE_REPLICATES, rng)
    fitting = (space, point, replicates, validation_values, labels, rates)
    learned, spreads, groups, spread = _rate_groups(fitting, evidence, len(employees), fit, spread, grid, types)
    batches = _batches(groups, evidence, employees, fit, grid, prior, types, organisations_per_batch)
    result = np.empty((draws, len(employees)), dtype=np.int32)
    predicted = None if rated is None else np.empty((draws, *rated.shape), dtype=np.int32)
    held_out, held_out_parts = (None, None) if rated is None else _held_out_parts(batches, fit, space.k, draws)
    held_out_rng = rng.spawn(1)[0]  # its own stream: the main draws are the same with the check or without it
    edge_mass = np.zeros(len(employees))
    for start in range(0, draws, DRAWS_PER_BATCH):
        batch = min(DRAWS_PER_BATCH, draws - start)
        joints = bootstrap_joints(space, labels, codes, smoothing, transfer, batch, rng)
        likelihoods = [_code_likelihoods(space, joints, group.rates, rng) for group in groups]
        prevalence, edge, hyperparameters = batches.prevalences(likelihoods, spread, rng)  # (organisations, batch)
        edge_mass += edge.sum(axis=1)
        for group, (positive, negative) in zip(groups, likelihoods):
            members, drawn = group.members, slice(start, start + batch)
            result[drawn, members] = group.evidence.realise(
                positive, negative, prevalence[members], employees[members], rng, spread
            )
            if predicted is not None:
                predicted[drawn, members] = _predicted_matches(
                    space, positive, negative, prevalence[members], rated[members], spread, rng
                )
        if held_out is not None:
            held_out[start : start + batch] = _held_out_matches(
                space, batches, held_out_parts, likelihoods, spread, hyperparameters, rated, held_out_rng
            )
    edge = np.where(grid.edge_matters(employees), edge_mass / draws, 0.0)
    return Posterior(result, edge, learned, predicted, spreads, len(fit), None if rated is None else (fit, held_out))


def fitted_organisations(employees: np.ndarray) -> np.ndarray:
    """The organisations that population-level quantities (the population rates, the rate spread, the hierarchical
    prior's hyperparameters) are fitted on: all of them, or in a table of more than FIT_ORGANISATIONS, that many
    spread evenly over the organisations ordered by size (deterministic, every size represented): beyond a few
    thousand organisations more of them narrow those fits no further than their assumptions hold, and cost time."""
    if len(employees) <= FIT_ORGANISATIONS:
        return np.arange(len(employees))
    order = np.argsort(employees, kind="stable")
    return np.sort(order[np.linspace(0, len(order) - 1, FIT_ORGANISATIONS).round().astype(np.int64)])


def _batches(groups, evidence, employees, fit, grid, prior, types, organisations_per_batch) -> OrganisationBatches:
    """The batches of organisations, each inside one rate group and default as many as _BATCH_ELEMENTS hold, and
    their prior."""
    size = organisations_per_batch or max(1, _BATCH_ELEMENTS // (DRAWS_PER_BATCH * grid.points))
    every, fitted = [], []
    for index, group in enumerate(groups):
        every += [(*batch, index) for batch in _organisation_batches(evidence, group.members, size, len(employees))]
        if len(fit) < len(employees):
            in_fit = group.members[np.isin(group.members, fit)]
            fitted += [(*batch, index) for batch in _organisation_batches(evidence, in_fit, size, len(employees))]
    hierarchical = None
    if prior.kind == "hierarchical":
        hierarchical = HierarchicalPrior(grid, employees) if types is None else PerTypePrior(grid, employees, types)
    return OrganisationBatches(
        every,
        every if len(fit) == len(employees) else fitted,
        grid,
        hierarchical,
        grid.beta_log_mass(np.array([prior.alpha]), np.array([prior.beta]))[None],
    )


def _organisation_batches(evidence: AnnotatorEvidence, rows: np.ndarray, size: int, organisations: int) -> list:
    """(rows, their evidence) per batch of at most `size` of the `organisations`."""
    if len(rows) <= size and len(rows) == organisations:
        return [(rows, evidence)]
    return [
        (rows[start : start + size], evidence.subset(rows[start : start + size])) for start in range(0, len(rows), size)
    ]


@dataclass(frozen=True)
class _RateGroup:
    """Organisations that share population rates: all of them, or one type's."""

    members: np.ndarray
    evidence: AnnotatorEvidence
    rates: PopulationRates | None  # None: the validation's


def _code_likelihoods(space, joints, rates, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per class (batch, 3^k) pattern likelihoods of a batch of bootstrap joints, tilted to the rates' draws."""
    if rates is not None:
        drawn, shift = rates.sample(len(joints[0]), rng)  # (batch, 2, k) rates, (batch, 2, pairs) dependence
        joints = tuple(
            with_marginals(space, with_dependence(space, joint, shift[:, c]), drawn[:, c])
            for c, joint in enumerate(joints)
        )
    positive, negative = (code_likelihoods(space, joint) for joint in joints)
    return positive, negative


def _rate_groups(fitting: tuple, evidence, organisations: int, fit, spread, grid, types) -> tuple:
    """The population rates (None: the validation's, `fitting`'s replicates None), the organisations' learned
    spread, the _RateGroups that share rates (all organisations, or one per type), and the spread of each
    organisation's own rates around its group's. `fitting`: _population_rates' arguments before the evidence."""
    space, point, replicates, validation_values = fitting[:4]
    fit_evidence = evidence if len(fit) == organisations else evidence.subset(fit)
    learned = None if replicates is None else _population_rates(*fitting, fit_evidence, spread)
    spreads = _learned_spread(space, point, learned, evidence, fit_evidence, fit, spread, grid, validation_values)
    if learned is not None and not learned.identified and spreads.learned:
        # the bounds allow each organisation's own rates the spread: the learned one, where the organisations show it
        learned = _population_rates(*fitting, fit_evidence, spreads.spread)
    if learned is None or types is None or len(np.unique(types)) < 2:
        return learned, spreads, [_RateGroup(np.arange(organisations), evidence, learned)], spreads.spread
    k = fitting[0].k
    own, by_type = (spreads.spread.scaled(np.full((2, k), np.sqrt(share))) for share in (1 - TYPE_SHARE, TYPE_SHARE))
    return learned, spreads, _rates_by_type(fitting, evidence, fit, own, by_type, types), own


def _rates_by_type(fitting: tuple, evidence, fit, spread, by_type: RateSpread, types) -> list[_RateGroup]:
    """One _RateGroup per organisation type, its rates learned from its own (fitted) organisations, their prior
    around the validation's widened by `by_type`, a type's share of the organisations' spread (an analytics
    consultancy's keyword false-positive rate is not an outsourcing firm's); `spread`: each organisation's own, the
    rest. Around the validation's, not the pooled rates': where types differ, the pooled fit is a compromise that
    fits neither (a test's pooled LLM sensitivity 0.23, the truth 0.7). Where nothing identifies the rates, each
    type's are drawn apart from the others', so the intervals carry that a type's rates may be off together."""
    shift_sd = np.stack([np.broadcast_to(sd, (fitting[0].k,)) for sd in (by_type.sensitivity, by_type.false_positive)])
    groups = []
    for kind in np.unique(types):
        members = np.flatnonzero(types == kind)
        part = evidence.subset(members)
        fitted_on = part if len(fit) == len(types) else evidence.subset(members[np.isin(members, fit)])
        groups.append(_RateGroup(members, part, _population_rates(*fitting, fitted_on, spread, shift_sd)))
    return groups


def _population_rates(
    space, point, replicates, validation_values, labels, rates, evidence, spread, part_shift_sd=0.0
) -> PopulationRates:
    """The population rates' posterior, fitted on the point fit and the bootstrap replicates of the joints."""
    joints = tuple(np.concatenate(pair) for pair in zip(point, replicates))
    fine = PrevalenceGrid(_FIT_POINTS)
    return population_rates(
        space, joints, validation_values, labels, evidence, rates, fine.centres, fine.log_widths, spread, part_shift_sd
    )


def _learned_spread(
    space, point, learned, evidence, fit_evidence, fit, spread, grid, validation_values
) -> LearnedSpread:
    """How far the organisations' rates spread, weighed at the validation's joint fit tilted to the population's
    rates (when learned), each organisation's prevalence integrated over a Jeffreys prior, where organisations carry
    two sources (of the `fit` organisations, whose evidence is `fit_evidence`). Two annotators are two sources only
    if one is not a copy of the other: a strict list's matches inside a broad list's are one (with nested lists
    alone, the organisations' rates spread as the settings say)."""
    informative = (evidence.annotators_seen() & ~nested_annotators(validation_values)).sum(axis=1) >= 2
    if learned is not None:
        point = tuple(
            with_marginals(
                space, with_dependence(space, joint, learned.dependence[c][None]), learned.population[c][None]
            )
            for c, joint in enumerate(point)
        )
    positive, negative = (code_likelihoods(space, joint) for joint in point)
    log_prior = grid.beta_log_mass(np.array([0.5]), np.array([0.5]))[0]

    def log_marginal(candidate: RateSpread) -> np.ndarray:
        log_likelihood = fit_evidence.log_likelihood(positive, negative, grid.centres, candidate)[:, 0, :]
        return logsumexp(log_likelihood + log_prior, axis=1)

    return replace(learned_spread(spread, space.k, log_marginal, informative[fit]), two_sources=informative)


def _held_out_parts(batches: OrganisationBatches, fit: np.ndarray, k: int, draws: int) -> tuple[np.ndarray, list]:
    """The whole-table check's (draws, fitted organisations, k) matches to fill, and per model annotator the fitted
    organisations' batches as (rows, their evidence without the annotator, rate group, their places among the
    fitted organisations)."""
    parts = [
        [(rows, part.without(j), group, np.searchsorted(fit, rows)) for rows, part, group in batches.fit_batches]
        for j in range(k)
    ]
    return np.empty((draws, len(fit), k), dtype=np.int32), parts


def _held_out_matches(space, batches, parts, likelihoods, spread, hyperparameters, rated, rng) -> np.ndarray:
    """(batch, fitted organisations, k) each annotator's matches drawn from the prevalence that the other
    annotators' evidence and the hierarchical prior give: a count that agrees with them falls outside its 80 %
    interval one time in five where the model holds, whatever its own weight in the fit."""
    out = np.empty((likelihoods[0][0].shape[0], sum(len(rows) for rows, *_ in parts[0]), space.k), dtype=np.int32)
    for j, batches_without in enumerate(parts):
        for rows, evidence, group, places in batches_without:
            pi = batches.held_out_prevalence(rows, evidence, likelihoods[group], spread, hyperparameters, rng)
            predicted = _predicted_matches(space, *likelihoods[group], pi, rated[rows], spread, rng)
            out[:, places, j] = predicted[..., j]
    return out


def _predicted_matches(space, positive, negative, prevalence, rated, spread, rng) -> np.ndarray:
    """(batch, organisations, k) each model annotator's matches among the profiles it rated, drawn from the batch's
    prevalences and rates."""
    codes = single_codes(space)
    pi = prevalence.T[:, :, None]  # (batch, organisations, 1)
    return spread.matches(rated[None], positive[:, None, codes], negative[:, None, codes], pi, rng)


def summarise(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and the 10/50/90 % quantiles per column of (draws, n) counts (quantiles are observed counts)."""
    q10, q50, q90 = column_quantiles(draws, [0.1, 0.5, 0.9])
    return {"mean": draws.mean(axis=0), "q10": q10, "q50": q50, "q90": q90}


def column_quantiles(draws: np.ndarray, levels: list[float]) -> np.ndarray:
    """(levels, ...) quantiles along the first axis of draws that are observed values, a few columns at a time
    (np.quantile copies its input: a whole table's draws twice over)."""
    columns = max(1, _BATCH_ELEMENTS // (len(draws) * (draws[0].size // max(1, draws.shape[1]))))
    parts = [
        np.quantile(draws[:, start : start + columns], levels, axis=0, method="inverted_cdf")
        for start in range(0, draws.shape[1], columns)
    ]
    return np.concatenate(parts, axis=1)
