"""The headcount estimator on small simulated cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.headcount.annotator_evidence import PatternEvidence, group_profiles
from ml_headcount.headcount.annotators import MISSING, PatternSpace, annotator_values, displaced_by, shown_apart
from ml_headcount.headcount.estimate import estimate, read_counts, read_population, read_validation
from ml_headcount.headcount.model import headcount_draws, summarise
from ml_headcount.headcount.population_rates import RateModel
from ml_headcount.headcount.prevalence_prior import Prior


def draws_for(labels, validation, organisation, values, employees, prior=Prior("fixed"), draws=400, seed=0):
    space = PatternSpace(validation.shape[1])
    n_org = len(employees)
    evidence = PatternEvidence(group_profiles(organisation, values, space, n_org), space, n_org)
    return headcount_draws(
        labels,
        validation,
        evidence,
        np.asarray(employees),
        draws=draws,
        prior=prior,
        smoothing=4.0,
        transfer=1.0,
        grid_points=256,
        rng=np.random.default_rng(seed),
    ).counts


def noisy(labels, sensitivity, specificity, rng):
    return np.where(labels, rng.random(len(labels)) < sensitivity, rng.random(len(labels)) >= specificity).astype(
        np.int8
    )


def test_perfect_annotator_gives_the_exact_count():
    rng = np.random.default_rng(1)
    labels = rng.random(400) < 0.3
    organisation = np.repeat(np.arange(4), [50, 300, 1000, 80])
    expert = rng.random(len(organisation)) < np.array([0.0, 0.1, 0.35, 0.8])[organisation]
    draws = draws_for(
        labels,
        labels[:, None].astype(np.int8),
        organisation,
        expert[:, None].astype(np.int8),
        np.bincount(organisation),
    )
    truth = np.bincount(organisation, weights=expert).astype(int)
    summary = summarise(draws)
    assert (summary["q10"] == truth).all() and (summary["q90"] == truth).all()
    np.testing.assert_allclose(summary["mean"], truth, atol=0.05)


def test_useless_annotator_leaves_the_prior():
    labels = np.repeat([True, False], 1000)
    useless = np.tile(np.repeat([1, 0], [300, 700]), 2).astype(np.int8)[:, None]  # 30 % ones in both classes
    rng = np.random.default_rng(2)
    values = (rng.random(40) < 0.3).astype(np.int8)[:, None]
    employees = 20_000
    draws = draws_for(
        labels, useless, np.zeros(40, int), values, [employees], prior=Prior("fixed", 2.0, 10.0), draws=2000
    )
    share = draws[:, 0] / employees
    assert share.mean() == pytest.approx(2 / 12, abs=0.01)
    prior = stats.beta(2, 10)
    assert np.quantile(share, 0.1) == pytest.approx(prior.ppf(0.1), abs=0.01)
    assert np.quantile(share, 0.9) == pytest.approx(prior.ppf(0.9), abs=0.015)


def test_more_validation_data_narrows_the_interval():
    rng = np.random.default_rng(3)
    organisation = np.zeros(3000, int)
    values = noisy(rng.random(3000) < 0.2, 0.7, 0.9, rng)[:, None]
    widths = []
    for size in (100, 3000):
        labels = rng.random(size) < 0.3
        summary = summarise(draws_for(labels, noisy(labels, 0.7, 0.9, rng)[:, None], organisation, values, [3000]))
        widths.append(int(summary["q90"][0] - summary["q10"][0]))
    assert widths[1] < 0.6 * widths[0], widths


def test_an_annotator_missing_everywhere_in_the_population_changes_nothing():
    rng = np.random.default_rng(4)
    labels = rng.random(300) < 0.3
    validation = np.stack([noisy(labels, 0.8, 0.9, rng), noisy(labels, 0.6, 0.95, rng)], axis=1)
    organisation = rng.integers(0, 5, 2000)
    first = noisy(rng.random(2000) < 0.2, 0.8, 0.9, rng)
    both = np.stack([first, np.full(2000, MISSING, np.int8)], axis=1)
    with_missing = draws_for(labels, validation, organisation, both, np.full(5, 600))
    dropped = draws_for(labels, validation[:, :1], organisation, first[:, None], np.full(5, 600))
    np.testing.assert_array_equal(with_missing, dropped)


def test_partly_missing_annotations_are_marginalised_not_imputed():
    """Hiding one annotator on half the profiles keeps the estimate near the truth (imputing 0 would halve it)."""
    rng = np.random.default_rng(5)
    labels = rng.random(2000) < 0.3
    validation = np.stack([noisy(labels, 0.9, 0.95, rng), noisy(labels, 0.9, 0.95, rng)], axis=1)
    expert = rng.random(4000) < 0.25
    values = np.stack([noisy(expert, 0.9, 0.95, rng), noisy(expert, 0.9, 0.95, rng)], axis=1)
    values[:2000, 0] = MISSING
    summary = summarise(draws_for(labels, validation, np.zeros(4000, int), values, [4000]))
    assert summary["q10"][0] <= expert.sum() <= summary["q90"][0]


def test_rates_no_joint_rating_identifies_are_drawn_where_the_counts_allow_them():
    """One annotator, so nothing identifies its population rates; a firm without experts whose 4,000 rated profiles
    match 3 % of the time bounds its false-positive rate (validation: 10 %) from above. The draws follow that
    posterior: before, a normal around its mode put 13 % of them where the firm's count is improbable (p < 0.001)."""
    rng = np.random.default_rng(12)
    labels = rng.random(600) < 0.3
    validation = noisy(labels, 0.8, 0.9, rng)[:, None]
    organisation = np.repeat([0, 1, 2], [4000, 1000, 2000])
    expert = rng.random(len(organisation)) < np.array([0.0, 0.3, 0.1])[organisation]
    values = np.where(expert, rng.random(len(expert)) < 0.8, rng.random(len(expert)) < 0.03).astype(np.int8)
    evidence = PatternEvidence(group_profiles(organisation, values[:, None], PatternSpace(1), 3), PatternSpace(1), 3)
    posterior = headcount_draws(
        labels,
        validation,
        evidence,
        np.array([4000, 1000, 2000]),
        draws=50,
        prior=Prior("fixed"),
        smoothing=4.0,
        transfer=1.0,
        grid_points=256,
        rng=rng,
        rates=RateModel("population"),
    )
    assert not posterior.rates.identified
    false_positive = posterior.rates.sample(4000, rng)[0][:, 1, 0]
    matches = int(values[organisation == 0].sum())
    improbable = stats.binom.cdf(matches, 4000, false_positive) < 0.001
    assert improbable.mean() < 0.02, improbable.mean()


def test_value_rule_keeps_only_zero_and_one():
    raw = pd.Series(["1", "0", "REJECT", "", None, "1.0", 1, 0.0, "ERROR", True, " 0 ", float("nan")], dtype=object)
    assert annotator_values(raw).tolist() == [1, 0, -1, -1, -1, 1, 1, 0, -1, 1, 0, -1]


def _tables(validation_annotator, population_annotator=("1", "0", "1", "0")):
    validation = pd.DataFrame({"category": ["1", "1", "0", "0", "0", "1"], "llm": validation_annotator})
    population = pd.DataFrame({"organisation": ["a", "a", "b", "b"], "llm": list(population_annotator)})
    return (
        read_validation(validation, "v.csv", HeadcountSettings(), IngestSettings()),
        read_population(population, "p.csv", HeadcountSettings()),
    )


@pytest.mark.parametrize(
    "values, message",
    [
        (["1", "1", "1", "REJECT", "1", "1"], "'llm' is 1 on every validation row"),
        (["", "REJECT", "", "ERROR", "", ""], "'llm' has no 0/1 value"),
    ],
)
def test_constant_or_missing_annotator_is_refused(values, message):
    validation, population = _tables(values)
    with pytest.raises(InputError, match=message):
        estimate(validation, population, HeadcountSettings(draws=20), IngestSettings())


def test_unknown_annotator_is_refused_naming_the_file():
    validation, population = _tables(["1", "0", "0", "0", "1", "1"])
    with pytest.raises(InputError, match="v.csv: annotator column 'gpt' not found"):
        estimate(validation, population, HeadcountSettings(annotators=["gpt"], draws=20), IngestSettings())


def test_non_binary_values_are_counted_as_missing_in_the_annotator_table():
    validation, population = _tables(["1", "0", "REJECT", "0", "1", "maybe"])
    result = estimate(validation, population, HeadcountSettings(draws=20), IngestSettings())
    row = result.annotators.iloc[0]
    assert (row["missing"], row["other_values"], row["true_positive"], row["true_negative"]) == (2, 2, 1, 1)


def _counts_table(rows):
    return pd.DataFrame(rows, columns=["organisation", "employees", "profiles", "filter"])


def test_counts_mode_reports_an_organisation_without_profiles_with_the_prior():
    rng = np.random.default_rng(6)
    labels = rng.random(300) < 0.3
    validation = pd.DataFrame(
        {"category": labels.astype(int).astype(str), "filter": noisy(labels, 0.8, 0.9, rng).astype(str)}
    )
    counts = _counts_table([["seen", 1000, 500, 120], ["unseen", 200, 0, 0]])
    settings = HeadcountSettings(prior="fixed", draws=2000)
    result = estimate(
        read_validation(validation, "v.csv", HeadcountSettings(), IngestSettings()),
        read_counts(counts, "c.csv", settings),
        settings,
        IngestSettings(),
    )
    unseen = result.estimates.set_index("organisation").loc["unseen"]
    assert unseen["profiles"] == 0
    assert unseen["mean"] == pytest.approx(200 * 2 / 12, rel=0.1)
    assert list(result.estimates.columns[:7]) == ["organisation", "employees", "profiles", "mean", "q10", "q50", "q90"]


def test_counts_mode_with_one_annotator_equals_the_same_profiles_given_one_by_one():
    rng = np.random.default_rng(7)
    labels = rng.random(300) < 0.3
    validation = read_validation(
        pd.DataFrame({"category": labels.astype(int).astype(str), "filter": noisy(labels, 0.8, 0.9, rng).astype(str)}),
        "v.csv",
        HeadcountSettings(),
        IngestSettings(),
    )
    settings = HeadcountSettings(draws=200)
    counts = _counts_table([["a", 900, 400, 90], ["b", 300, 300, 10]])
    profiles = pd.DataFrame(
        {
            "organisation": ["a"] * 400 + ["b"] * 300,
            "employees": [900] * 400 + [300] * 300,
            "filter": ["1"] * 90 + ["0"] * 310 + ["1"] * 10 + ["0"] * 290,
        }
    )
    by_counts = estimate(validation, read_counts(counts, "c.csv", settings), settings, IngestSettings())
    by_profiles = estimate(validation, read_population(profiles, "p.csv", settings), settings, IngestSettings())
    np.testing.assert_array_equal(by_counts.draws, by_profiles.draws)


def test_counts_mode_with_correlated_annotators_uses_their_joint_behaviour():
    rng = np.random.default_rng(8)

    def broad_and_strict(labels):
        # one score read twice with a little noise each: strongly correlated, but neither nested in the other (a
        # nested one would be left out, annotators.displaced_by)
        score = rng.normal(size=len(labels)) + np.where(labels, 1.5, -1.0)
        broad, strict = (score + rng.normal(0, 0.6, len(labels)) > cut for cut in (0.0, 1.0))
        return broad.astype(int), strict.astype(int)

    labels = rng.random(600) < 0.3
    broad, strict = broad_and_strict(labels)
    validation = read_validation(
        pd.DataFrame(
            {"category": labels.astype(int).astype(str), "broad": broad.astype(str), "strict": strict.astype(str)}
        ),
        "v.csv",
        HeadcountSettings(),
        IngestSettings(),
    )
    expert = rng.random(2000) < 0.15
    population_broad, population_strict = broad_and_strict(expert)
    counts = pd.DataFrame(
        {
            "organisation": ["x"],
            "employees": [2000],
            "profiles": [2000],
            "broad": [population_broad.sum()],
            "strict": [population_strict.sum()],
        }
    )
    settings = HeadcountSettings(draws=400, max_joint_annotators=2)
    result = estimate(validation, read_counts(counts, "c.csv", settings), settings, IngestSettings())
    row = result.estimates.iloc[0]
    assert result.chosen == ["broad", "strict"] or set(result.chosen) == {"broad", "strict"}
    assert row["q10"] <= expert.sum() <= row["q90"]


def test_two_llms_nested_on_the_validation_rows_by_chance_are_both_candidates_where_the_population_shows_otherwise():
    """A strict LLM that says 1 only where a liberal one does on 300 validation rows, but not on the population's
    profiles: nested by chance, not by construction, so neither displaces the other."""
    rng = np.random.default_rng(4)
    labels = rng.random(300) < 0.3
    liberal = np.where(labels, rng.random(300) < 0.9, rng.random(300) < 0.1)
    strict = liberal & np.where(labels, rng.random(300) < 0.7, rng.random(300) < 0.3)
    validation = np.stack([liberal, strict], axis=1).astype(np.int8)
    assert displaced_by(labels, validation) == [1, None]  # the liberal one moves more with a false-positive shift
    expert = rng.random(5000) < 0.2
    population = np.stack(
        [np.where(expert, rng.random(5000) < 0.9, rng.random(5000) < 0.1) for _ in range(2)], axis=1
    ).astype(np.int8)
    assert displaced_by(labels, validation, shown_apart(population)) == [None, None]


def test_bad_counts_are_refused_with_row_and_column():
    strict = HeadcountSettings(repair_counts=False)
    with pytest.raises(InputError, match=r"c.csv: row 2, column 'employees': 10 is below the profiles counted"):
        read_counts(_counts_table([["a", 10, 5, 1], ["b", 10, 11, 1]]), "c.csv", strict)
    with pytest.raises(InputError, match=r"c.csv: row 1, column 'employees': 'many' is not a number"):
        read_counts(_counts_table([["a", "many", 5, 1]]), "c.csv", HeadcountSettings())


def test_same_seed_same_estimate():
    validation, population = _tables(["1", "0", "0", "0", "1", "1"])
    first = estimate(validation, population, HeadcountSettings(draws=50, seed=3), IngestSettings())
    second = estimate(validation, population, HeadcountSettings(draws=50, seed=3), IngestSettings())
    pd.testing.assert_frame_equal(first.estimates, second.estimates)


def test_population_employees_column_must_be_one_value_per_organisation_covering_its_profiles():
    table = pd.DataFrame({"organisation": ["a", "a", "b"], "employees": ["10", "12", "5"], "llm": ["1", "0", "1"]})
    with pytest.raises(
        InputError, match=r"p.csv: column 'employees': organisation 'a' has 2 profiles and employees values \[10, 12\]"
    ):
        read_population(table, "p.csv", HeadcountSettings())
    population = read_population(table.assign(employees=["10", "10", "5"]), "p.csv", HeadcountSettings())
    assert population.employees.tolist() == [10, 5] and population.profiles.tolist() == [2, 1]


def test_positive_label_may_be_named_as_the_table_writes_it():
    table = pd.DataFrame({"label": ["yes", "no", "yes"], "llm": ["1", "0", "0"]})
    named_yes = HeadcountSettings(positive="yes")
    assert read_validation(table, "v.csv", named_yes, IngestSettings()).labels.tolist() == [True, False, True]
    with pytest.raises(InputError, match="must hold the positive label 'expert'"):
        read_validation(table, "v.csv", HeadcountSettings(positive="expert"), IngestSettings())


def test_a_prior_learned_per_organisation_type_keeps_consultancies_from_setting_labs_priors():
    """Twenty labs (35-55 % experts) and twenty consultancies (0.5-3 %) of one size, six profiles rated each: one
    prior for all of them is a compromise that fits neither; one per type is each type's own."""
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.3
    validation = noisy(labels, 0.85, 0.95, rng)[:, None]
    types = np.array(["lab"] * 20 + ["consultancy"] * 20)
    prevalence = np.where(types == "lab", rng.uniform(0.35, 0.55, 40), rng.uniform(0.005, 0.03, 40))
    employees, observed = np.full(40, 300), 6
    organisation = np.repeat(np.arange(40), observed)
    expert = rng.random(len(organisation)) < prevalence[organisation]
    values = noisy(expert, 0.85, 0.95, rng)[:, None]
    truth = rng.binomial(employees - observed, prevalence) + np.bincount(organisation, weights=expert).astype(int)
    space = PatternSpace(1)
    evidence = PatternEvidence(group_profiles(organisation, values, space, 40), space, 40)
    error, covered = {}, {}
    for name, given in (("pooled", None), ("per type", types)):
        draws = headcount_draws(
            labels,
            validation,
            evidence,
            employees,
            draws=300,
            prior=Prior("hierarchical"),
            smoothing=4.0,
            transfer=1.0,
            grid_points=256,
            rng=np.random.default_rng(1),
            types=given,
        ).counts
        summary = summarise(draws)
        error[name] = np.abs(summary["q50"] - truth).mean()
        covered[name] = ((summary["q10"] <= truth) & (truth <= summary["q90"])).mean()
    assert error["per type"] < 0.5 * error["pooled"], error
    assert covered["per type"] >= 0.8, covered


def test_the_organisation_type_column_is_one_value_per_organisation_and_no_annotator():
    table = pd.DataFrame(
        {"organisation": ["a", "a", "b"], "org_type": ["lab", "lab", "consultancy"], "llm": ["1", "0", "1"]}
    )
    population = read_population(table, "p.csv", HeadcountSettings())
    assert population.types.tolist() == ["lab", "consultancy"]
    with pytest.raises(InputError, match=r"p.csv: row 2, column 'org_type': type 'firm', but the organisation's"):
        read_population(table.assign(org_type=["lab", "firm", "consultancy"]), "p.csv", HeadcountSettings())
    with pytest.raises(InputError, match=r"p.csv: row 3, column 'org_type': empty organisation type"):
        read_population(table.assign(org_type=["lab", "lab", " "]), "p.csv", HeadcountSettings())
    validation = pd.DataFrame({"category": ["1", "0", "1", "0"], "llm": ["1", "0", "1", "1"]})
    result = estimate(
        read_validation(validation, "v.csv", HeadcountSettings(), IngestSettings()),
        population,
        HeadcountSettings(draws=50),
        IngestSettings(),
    )
    assert result.annotators["annotator"].tolist() == ["llm"]
    assert result.estimates["organisation_type"].tolist() == ["lab", "consultancy"]


def test_a_grid_edge_is_flagged_only_where_what_lies_beyond_it_could_move_a_count():
    """Both organisations' profiles all say 0 to an annotator that misses nothing, under a prior almost flat in logit:
    their posteriors reach the grid's floor (1.1e-7). For 10 million employees the floor is a whole expert, so the
    grid may cut off what the data say; for 1,000 it is a ten-thousandth of one, so nothing beyond it changes the
    count (before, that was flagged too)."""
    labels = np.repeat([True, False], 100)
    space = PatternSpace(1)
    employees = np.array([10_000_000, 1_000])
    groups = group_profiles(np.arange(2), np.zeros((2, 1), np.int8), space, 2, weights=employees.astype(float))
    posterior = headcount_draws(
        labels,
        labels[:, None].astype(np.int8),
        PatternEvidence(groups, space, 2),
        employees,
        draws=200,
        prior=Prior("fixed", 0.01, 10.0),
        smoothing=4.0,
        transfer=1.0,
        grid_points=256,
        rng=np.random.default_rng(0),
    )
    assert posterior.edge_mass[0] > 0.01 and posterior.edge_mass[1] == 0.0
