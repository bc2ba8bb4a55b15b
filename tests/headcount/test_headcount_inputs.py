"""Headcount inputs as research teams have them: pattern tables, counts over stated denominators with AND counts,
search-tool tables that need repairs, and the bad-input cases of counts and population tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.headcount.estimate import estimate, read_counts, read_patterns, read_population, read_validation
from ml_headcount.io.tables import read_table


def _noisy(labels, sensitivity, false_positive, rng):
    return np.where(labels, rng.random(len(labels)) < sensitivity, rng.random(len(labels)) < false_positive).astype(int)


def _broad_and_strict(labels, rng, nested=True):
    """Two lists thresholding one score: strict's matches a subset of broad's, or (not `nested`) the strict list
    reading the score with noise of its own, so that each matches some profiles the other does not (a nested pair is
    one source, and the model holds one of it: annotators.displaced_by)."""
    score = rng.normal(size=len(labels)) + np.where(labels, 1.5, -1.0)
    strict_score = score if nested else score + rng.normal(0, 0.6, len(labels))
    return (score > 0).astype(int), (strict_score > 1.0).astype(int)


def _validation(rng, rows=600, nested=True):
    labels = rng.random(rows) < 0.3
    broad, strict = _broad_and_strict(labels, rng, nested)
    table = pd.DataFrame(
        {
            "category": labels.astype(int).astype(str),
            "broad": broad.astype(str),
            "strict": strict.astype(str),
            "llm": _noisy(labels, 0.8, 0.1, rng).astype(str),
        }
    )
    return read_validation(table, "v.csv", HeadcountSettings(), IngestSettings())


def _profiles(rng, sizes, shares, nested=True):
    organisation = np.repeat(np.arange(len(sizes)), sizes)
    expert = rng.random(len(organisation)) < np.asarray(shares)[organisation]
    broad, strict = _broad_and_strict(expert, rng, nested)
    return organisation, expert, broad, strict


def test_an_and_count_gives_the_same_estimate_as_the_profiles_one_by_one():
    rng = np.random.default_rng(1)
    validation = _validation(rng, nested=False)
    organisation, _, broad, strict = _profiles(rng, [800, 300, 2000], [0.1, 0.3, 0.05], nested=False)
    names = [f"org{o}" for o in organisation]
    profiles = pd.DataFrame({"organisation": names, "broad": broad.astype(str), "strict": strict.astype(str)})
    counts = pd.DataFrame(
        {
            "organisation": ["org0", "org1", "org2"],
            "employees": [800, 300, 2000],
            "broad": np.bincount(organisation, broad),
            "strict": np.bincount(organisation, strict),
            "broad&strict": np.bincount(organisation, broad & strict),
        }
    )
    counts = counts.astype({"broad": int, "strict": int})
    settings = HeadcountSettings(draws=200, annotators=["broad", "strict"])
    by_profiles = estimate(validation, read_population(profiles, "p.csv", settings), settings, IngestSettings())
    by_counts = estimate(validation, read_counts(counts, "c.csv", settings), settings, IngestSettings())
    assert set(by_counts.chosen) == {"broad", "strict"}
    np.testing.assert_array_equal(by_counts.draws, by_profiles.draws)
    # an AND NOT count says the same
    not_both = counts.drop(columns="broad&strict").assign(**{"broad&!strict": counts["broad"] - counts["broad&strict"]})
    by_and_not = estimate(validation, read_counts(not_both, "c.csv", settings), settings, IngestSettings())
    np.testing.assert_array_equal(by_and_not.draws, by_profiles.draws)


def test_a_pattern_table_is_the_profiles_it_counts():
    rng = np.random.default_rng(2)
    validation = _validation(rng)
    organisation, _, broad, _ = _profiles(rng, [500, 1200], [0.2, 0.05])
    llm = np.where(rng.random(len(broad)) < 0.2, _noisy(broad == 1, 0.8, 0.1, rng).astype(str), "")
    profiles = pd.DataFrame({"organisation": [f"o{o}" for o in organisation], "broad": broad.astype(str), "llm": llm})
    patterns = profiles.value_counts(["organisation", "broad", "llm"]).rename("count").reset_index()
    settings = HeadcountSettings(draws=150, annotators=["broad", "llm"])
    by_profiles = estimate(validation, read_population(profiles, "p.csv", settings), settings, IngestSettings())
    population = read_patterns(patterns, "t.csv", settings)
    by_patterns = estimate(validation, population, settings, IngestSettings())
    assert population.profiles.tolist() == [500, 1200] and len(patterns) < 20
    np.testing.assert_array_equal(by_patterns.draws, by_profiles.draws)


def test_pattern_counts_must_be_whole_numbers():
    table = pd.DataFrame({"organisation": ["a", "a"], "llm": ["1", ""], "count": [3, 2.5]})
    with pytest.raises(InputError, match=r"t.csv: row 2, column 'count': 2.5 is not a whole number"):
        read_patterns(table, "t.csv", HeadcountSettings())


def test_an_llm_sample_with_its_own_denominator_informs_the_count():
    rng = np.random.default_rng(3)
    validation = _validation(rng)
    organisation, expert, broad, _ = _profiles(rng, [20_000, 4000, 900], [0.02, 0.2, 0.4])
    sampled = rng.random(len(expert)) < 0.1
    llm = _noisy(expert, 0.8, 0.1, rng)
    counts = pd.DataFrame(
        {
            "organisation": ["a", "b", "c"],
            "employees": [20_000, 4000, 900],
            "broad": np.bincount(organisation, broad).astype(int),
            "llm": np.bincount(organisation[sampled], llm[sampled]).astype(int),
            "llm:profiles": np.bincount(organisation[sampled]),
        }
    )
    # the validation rates: three organisations are too few to learn the population's (docs/headcount.md)
    settings = HeadcountSettings(
        draws=300, annotators=["broad", "llm"], max_joint_annotators=2, error_rates="validation"
    )
    result = estimate(validation, read_counts(counts, "c.csv", settings), settings, IngestSettings())
    truth = np.bincount(organisation, expert)
    assert set(result.chosen) == {"broad", "llm"}
    assert (result.estimates["q10"] <= truth).all() and (truth <= result.estimates["q90"]).all()
    assert result.estimates["profiles"].tolist() == [20_000, 4000, 900]  # the LLM sample is no extra profile

    with pytest.raises(InputError, match=r"c.csv: column 'gpt:profiles' is the denominator of an annotator 'gpt'"):
        estimate(
            validation, read_counts(counts.assign(**{"gpt:profiles": 5}), "c.csv", settings), settings, IngestSettings()
        )


def _search_tool_counts():
    """A search tool's table: 7 matches of 5 employees, a headcount of 0, an AND above a marginal, -1 and 2.5."""
    return pd.DataFrame(
        {
            "organisation": ["small", "zero", "and_above", "negative", "fraction", "plain"],
            "employees": [5, 0, 400, 300, "120.4", 1000],
            "broad": [7, 3, 40, -1, 30, 200],
            "strict": [2, 1, 10, 0, 10, 50],
            "broad&strict": [2, 1, 12, 0, 2.5, 50],
        }
    )


def test_a_search_tools_counts_table_is_repaired_by_the_rule_and_the_repairs_are_reported():
    rng = np.random.default_rng(4)
    validation = _validation(rng)
    settings = HeadcountSettings(draws=100, annotators=["broad", "strict"])
    result = estimate(validation, read_counts(_search_tool_counts(), "c.csv", settings), settings, IngestSettings())
    repairs = result.repairs.set_index(["organisation", "column"])
    assert repairs.loc[("small", "employees"), ["value", "repaired", "rule"]].tolist() == [5, 7, "denominator"]
    assert repairs.loc[("zero", "employees"), "repaired"] == 3
    assert repairs.loc[("and_above", "broad&strict"), ["value", "repaired", "rule"]].tolist() == [12, 10, "combination"]
    assert repairs.loc[("negative", "broad"), ["repaired", "rule"]].tolist() == [0, "number"]
    assert repairs.loc[("fraction", "employees"), ["repaired", "rule"]].tolist() == [120, "number"]
    assert repairs.loc[("fraction", "broad&strict"), "repaired"] == 2  # 2.5 rounds to even
    assert "plain" not in repairs.index.get_level_values("organisation")
    assert result.summary["repairs"] == result.repairs["rule"].value_counts().to_dict()
    assert result.estimates.set_index("organisation").loc["small", "employees"] == 7

    strict = settings.model_copy(update={"repair_counts": False})
    refused = r"c.csv: row 4, column 'broad': -1 is not a whole number >= 0 \(repairs are off"
    with pytest.raises(InputError, match=refused):
        estimate(
            validation,
            read_counts(
                _search_tool_counts().assign(employees=[5, 0, 400, 300, 120, 1000]), "c.csv", HeadcountSettings()
            ),
            strict,
            IngestSettings(),
        )


def test_population_error_rates_recover_easier_negatives_the_validation_rates_miss():
    """Population false-positive rates a third of the validation's: the validation rates give far too few experts."""
    rng = np.random.default_rng(5)
    validation = _validation(rng)
    sizes, shares = [3000, 800, 5000, 200, 1500, 12000, 400, 2500], [0.0, 0.3, 0.02, 0.4, 0.1, 0.01, 0.2, 0.05]
    organisation = np.repeat(np.arange(len(sizes)), sizes)
    expert = rng.random(len(organisation)) < np.asarray(shares)[organisation]
    llm = _noisy(expert, 0.8, 0.1 / 3, rng)
    broad = _broad_and_strict(expert, rng)[0] & (expert | (rng.random(len(expert)) < 1 / 3))
    counts = pd.DataFrame(
        {
            "organisation": [f"o{i}" for i in range(len(sizes))],
            "employees": sizes,
            "llm": np.bincount(organisation, llm).astype(int),
            "broad": np.bincount(organisation, broad).astype(int),
            "llm&broad": np.bincount(organisation, llm & broad).astype(int),
        }
    )
    truth = np.bincount(organisation, expert)
    settings = HeadcountSettings(draws=300, annotators=["llm", "broad"])
    learned = estimate(validation, read_counts(counts, "c.csv", settings), settings, IngestSettings())
    as_validated = estimate(
        validation,
        read_counts(counts, "c.csv", settings),
        settings.model_copy(update={"error_rates": "validation"}),
        IngestSettings(),
    )
    error = {
        name: np.abs(e.estimates["mean"] - truth).mean()
        for name, e in (("learned", learned), ("as_validated", as_validated))
    }
    assert error["learned"] < error["as_validated"] / 3, error
    assert learned.summary["total"]["mean"] == pytest.approx(truth.sum(), rel=0.08)
    assert learned.summary["total"]["q10"] <= truth.sum() <= learned.summary["total"]["q90"]
    assert learned.summary["population_rates_learned"]
    # rates that hold in every organisation need no organisation effect; the validation's wrong rates are reconciled
    # with the counts only by a large one, and that interval is wide rather than wrong (it was 15-35 % low before)
    spread = {
        name: e.summary["rate_spread"]["false_positive_sd"]
        for name, e in (("learned", learned), ("as_validated", as_validated))
    }
    assert max(spread["learned"].values()) == 0 and max(spread["as_validated"].values()) > 0.45, spread
    rates = learned.annotators.set_index("annotator")
    assert rates.loc["llm", "population_specificity"] == pytest.approx(1 - 0.1 / 3, abs=0.02)
    assert rates.loc["llm", "specificity"] == pytest.approx(0.9, abs=0.04)
    flags = as_validated.estimates.set_index("organisation")["flags"]
    assert "below_false_positive_rates" in flags["o0"]  # no experts, and fewer matches than the validation rates allow
    assert learned.summary["flags"]["below_false_positive_rates"] >= 1


def _estimate_broad_and_llm_sample(validation, sizes, organisation, broad, llm, sampled, draws):
    """The estimate from a counts table of the broad list's matches over everyone and an LLM's on its sample."""
    counts = pd.DataFrame(
        {
            "organisation": [f"o{i}" for i in range(len(sizes))],
            "employees": sizes,
            "broad": np.bincount(organisation, broad).astype(int),
            "llm": np.bincount(organisation[sampled], llm[sampled], minlength=len(sizes)).astype(int),
            "llm:profiles": np.bincount(organisation[sampled], minlength=len(sizes)),
        }
    )
    settings = HeadcountSettings(draws=draws, annotators=["broad", "llm"])
    return estimate(validation, read_counts(counts, "c.csv", settings), settings, IngestSettings())


def test_rates_that_no_profile_rated_twice_identifies_move_only_as_far_as_match_rates_require():
    """Keyword counts over everyone, an LLM on its own sample: no profile has both, so only the bounds that the match
    rates put on the rates whatever the prevalences are move them. The broad list's validation false-positive rate
    is below every organisation's match rate, so nothing contradicts it; an LLM whose population false-positive
    rate is a third of the validation's is contradicted by the organisation without experts, as far as an
    organisation's own rate may not explain it."""
    rng = np.random.default_rng(8)
    validation = _validation(rng)
    sizes, shares = [3000, 800, 5000, 200, 1500, 12000], [0.0, 0.3, 0.02, 0.4, 0.1, 0.05]
    organisation, expert, broad, _ = _profiles(rng, sizes, shares)
    sampled = rng.random(len(expert)) < 0.2
    llm = _noisy(expert, 0.8, 0.1 / 3, rng)
    result = _estimate_broad_and_llm_sample(validation, sizes, organisation, broad, llm, sampled, draws=300)
    assert not result.summary["population_rates_learned"]
    rates = result.annotators.set_index("annotator")
    assert rates.loc["broad", "population_specificity"] == pytest.approx(rates.loc["broad", "specificity"], abs=0.005)
    assert rates.loc["llm", "population_sensitivity"] == pytest.approx(rates.loc["llm", "sensitivity"], abs=0.01)
    # towards 1 - 0.1 / 3, part of the way: one organisation's low rate may be its own (the organisations' spread)
    assert rates.loc["llm", "specificity"] + 0.02 < rates.loc["llm", "population_specificity"] < 1 - 0.1 / 3 + 0.01
    truth = np.bincount(organisation, expert).sum()
    assert result.summary["total"]["q10"] <= truth <= result.summary["total"]["q90"]


def test_small_organisations_that_matched_nobody_by_chance_leave_the_false_positive_rate_alone():
    """An LLM rates three profiles of each of 80 small firms, with the validation's rates. About half the firms get no
    match, which any prevalence explains by chance; before, each such firm counted against every false-positive
    rate above 0, and together they pulled the LLM's learned specificity from 0.92 to 0.97."""
    rng = np.random.default_rng(9)
    validation = _validation(rng)
    sizes = [30] * 80
    organisation, expert, broad, _ = _profiles(rng, sizes, [0.2] * 80)
    sampled = np.concatenate([rng.permutation(np.repeat([True, False], [3, 27])) for _ in sizes])
    llm = _noisy(expert, 0.8, 0.1, rng)
    assert (np.bincount(organisation[sampled], llm[sampled]) == 0).sum() >= 30
    result = _estimate_broad_and_llm_sample(validation, sizes, organisation, broad, llm, sampled, draws=100)
    assert not result.summary["population_rates_learned"]
    rates = result.annotators.set_index("annotator")
    assert rates.loc["llm", "population_specificity"] == pytest.approx(rates.loc["llm", "specificity"], abs=0.02)


@pytest.mark.parametrize("employees", [["1e30", "40"], ["1e30", "1e30"]])
def test_an_absurd_headcount_is_refused_not_overflowed(employees):
    counts = pd.DataFrame({"organisation": ["a", "b"], "employees": employees, "llm": [3, 4]})
    with pytest.raises(InputError, match=r"c.csv: row 1, column 'employees': '1e30' is larger than any headcount"):
        estimate(
            _validation(np.random.default_rng(6)),
            read_counts(counts, "c.csv", HeadcountSettings()),
            HeadcountSettings(draws=20, annotators=["llm"]),
            IngestSettings(),
        )


@pytest.mark.parametrize(
    "reader, columns", [(read_counts, ["organisation", "employees", "llm"]), (read_population, ["organisation", "llm"])]
)
def test_a_header_only_table_is_refused_in_one_line(reader, columns):
    with pytest.raises(InputError, match=r"t.csv: row 1: the table has a header but no rows"):
        population = reader(pd.DataFrame(columns=columns), "t.csv", HeadcountSettings())
        estimate(
            _validation(np.random.default_rng(7)),
            population,
            HeadcountSettings(draws=20, annotators=["llm"]),
            IngestSettings(),
        )


def test_counts_refuse_an_empty_organisation():
    counts = pd.DataFrame({"organisation": ["a", "  "], "employees": [10, 20], "llm": [1, 2]})
    with pytest.raises(InputError, match=r"c.csv: row 2, column 'organisation': empty organisation"):
        read_counts(counts, "c.csv", HeadcountSettings())


def test_an_organisation_written_two_unicode_ways_is_one():
    composed, decomposed = "Caf\u00e9", "Cafe\u0301"
    table = pd.DataFrame({"organisation": [composed, decomposed, "Bar"], "llm": ["1", "0", "1"]})
    population = read_population(table, "p.csv", HeadcountSettings())
    assert population.organisations == ["Bar", composed] and population.profiles.tolist() == [1, 2]
    with pytest.raises(InputError, match=r"row 2, column 'organisation': organisation 'Café' appears twice"):
        read_counts(
            pd.DataFrame({"organisation": [composed, decomposed], "employees": [3, 4], "llm": [1, 1]}),
            "c.csv",
            HeadcountSettings(),
        )


@pytest.mark.parametrize(
    "spelling",
    ["Acme\u200b", "\ufeffAcme", "\uff21cme", "Ac\u00adme"],
    ids=["zero-width space", "BOM", "fullwidth A", "soft hyphen"],
)
def test_an_organisation_written_with_invisible_or_fullwidth_characters_is_one(spelling, tmp_path):
    """`Acme`, `Acme` with a zero-width space and fullwidth `Ａcme` were three organisations (names are NFKC-normalised
    and format characters, Unicode category Cf, dropped); read from a real UTF-8 file by the product's reader."""
    path = tmp_path / "population.csv"
    path.write_text(f"organisation,llm\nAcme,1\n{spelling},0\nBar,1\n", encoding="utf-8")
    population = read_population(read_table(str(path))[0], str(path), HeadcountSettings())
    assert population.organisations == ["Acme", "Bar"] and population.profiles.tolist() == [2, 1]
    path.write_text(f"organisation,employees,llm\nAcme,3,1\n{spelling},4,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 2, column 'organisation': organisation 'Acme' appears twice"):
        read_counts(read_table(str(path))[0], str(path), HeadcountSettings())


def test_a_pattern_tables_counts_are_bounded_per_organisation_not_only_per_row(tmp_path):
    """10,000 rows of 10^12 profiles each were accepted (10^16 profiles for one organisation): each row's count was
    bounded, their sum was not."""
    path = tmp_path / "patterns.csv"
    path.write_text("organisation,llm,count\nsmall,1,5\n" + "big,1,1000000000000\n" * 10_000)
    with pytest.raises(
        InputError,
        match=r"patterns.csv: row 3, column 'count': organisation 'big' has 2,000,000,000,000 profiles up to this row, "
        r"more than any headcount \(1e\+12\)",
    ):
        read_patterns(read_table(str(path))[0], str(path), HeadcountSettings())
    path.write_text("organisation,llm,count\nsmall,1,5\nbig,1,600000000000\nbig,0,400000000000\n")
    assert read_patterns(read_table(str(path))[0], str(path), HeadcountSettings()).profiles.tolist() == [10**12, 5]
