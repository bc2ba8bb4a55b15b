"""How fast is the headcount estimator at scale? Generated data: organisations x profiles x draws.

    uv run python benchmarks/headcount_speed.py [--organisations 1000] [--profiles 1000000] [--draws 1000]
    uv run python benchmarks/headcount_speed.py --counts [--organisations 100000]

Four correlated annotators (two keyword-like filters on every profile, two
LLM-like labels on a 20 % sample, some values missing), 600 validation rows,
organisation sizes log-normal, expert shares 0-40 %. Timed: choosing the
annotators, grouping the profiles by (organisation, pattern) and every draw,
with the product's defaults (population error rates learned, hierarchical prior
by size); `--error-rates validation` measures the population model's extra cost.
Prints the wall and CPU time (all threads; on a shared machine the CPU time says
more), the peak resident memory of the process and the total.

`--counts` times the counts-table path instead (`estimate --counts`: reading the
table, the whole estimate, its result tables): one row per organisation, sizes
log-uniform from 20 to 600,000 employees, a broad and a strict keyword list
counted over the same profiles (their marginal counts), generated directly so that
100,000 organisations cost nothing to make. `--with-and` adds the lists' AND count, as
the study's tables have it: each organisation's pattern table is then known, and its
exact likelihood (with the organisations' own rates, a Dirichlet-multinomial) replaces
the normal approximation of marginal counts.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
from scipy.stats import norm

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.headcount.annotator_evidence import PatternEvidence, group_profiles
from ml_headcount.headcount.annotators import MISSING, PatternSpace, choose_annotators, displaced_by, shown_apart
from ml_headcount.headcount.estimate import estimate, read_counts, read_validation
from ml_headcount.headcount.model import headcount_draws, model_options, summarise


def annotators(expert: np.ndarray, rng: np.random.Generator, llm_share: float, missing: float) -> np.ndarray:
    impression = rng.normal(size=len(expert)).astype(np.float32) + np.where(expert, 1.8, -0.6).astype(np.float32)
    broad = impression > 0.3
    strict = broad & (impression > 1.2)  # a strict list inside the broad one
    llm_a = impression + 0.5 * rng.normal(size=len(expert)).astype(np.float32) > 0.9
    llm_b = impression + 0.5 * rng.normal(size=len(expert)).astype(np.float32) > 0.7
    values = np.stack([broad, strict, llm_a, llm_b], axis=1).astype(np.int8)
    values[rng.random(len(expert)) >= llm_share, 2:] = MISSING  # LLM labels bought for a sample only
    values[rng.random(values.shape, dtype=np.float32) < missing] = MISSING
    return values


def keyword_lists(expert: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A broad list's and a strict list's matches (the strict one's inside the broad one's) per person."""
    impression = rng.normal(size=len(expert)) + np.where(expert, 1.8, -0.6)
    return impression > 0.3, impression > 1.2


def counts_tables(
    organisations: int, rng: np.random.Generator, with_and: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """A validation table of 600 rated profiles, a counts table of `organisations` rows (module docstring) and the
    expected number of experts among their employees; with `with_and`, the lists' AND count too (the strict list's
    matches, which lie inside the broad list's)."""
    labels = rng.random(600) < 0.3
    broad, strict = keyword_lists(labels, rng)
    validation = pd.DataFrame(
        {"category": labels.astype(int), "broad": broad.astype(int), "strict": strict.astype(int)}
    )
    employees = np.exp(rng.uniform(np.log(20), np.log(600_000), organisations)).astype(np.int64)
    profiles = rng.binomial(employees, rng.uniform(0.2, 0.9, organisations))
    share = rng.beta(0.5, 6.0, organisations)
    experts = rng.binomial(profiles, share)
    # the lists' matches among each organisation's experts and others: binomials at keyword_lists' rates
    columns = {}
    for name, threshold in (("broad", 0.3), ("strict", 1.2)):
        sensitivity, false_positive = norm.sf(threshold - 1.8), norm.sf(threshold + 0.6)
        columns[name] = rng.binomial(experts, sensitivity) + rng.binomial(profiles - experts, false_positive)
    columns["strict"] = np.minimum(columns["strict"], columns["broad"])
    if with_and:
        columns["broad&strict"] = columns["strict"]
    counts = pd.DataFrame(
        {"organisation": [f"org{i}" for i in range(organisations)], "employees": employees, "profiles": profiles}
        | columns
    )
    return validation, counts, float(experts.sum() + (employees - profiles) @ share)


def time_counts(args: argparse.Namespace, settings: HeadcountSettings) -> None:
    """The counts-table path, timed as a user runs it: reading both tables, the estimate, its result tables."""
    validation_table, counts_table, truth = counts_tables(args.organisations, np.random.default_rng(0), args.with_and)
    settings = settings.model_copy(update={"max_organisations": max(args.organisations, settings.max_organisations)})
    started, cpu_started = time.perf_counter(), time.process_time()
    validation = read_validation(validation_table, "validation.csv", settings, IngestSettings())
    result = estimate(validation, read_counts(counts_table, "counts.csv", settings), settings, IngestSettings())
    finished, cpu_seconds = time.perf_counter(), time.process_time() - cpu_started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = summarise(result.draws.sum(axis=1, keepdims=True))
    print(
        f"annotators in model: {result.chosen}; total (expected truth ~{truth:.0f}): mean {total['mean'][0]:.0f}, "
        f"80 % interval {total['q10'][0]}-{total['q90'][0]}"
    )
    print(
        f"counts{' with_and' if args.with_and else ''} error_rates={args.error_rates} "
        f"organisations={args.organisations} draws={args.draws} "
        f"seconds={finished - started:.1f} cpu_seconds={cpu_seconds:.1f} peak_rss_mib={peak_mib:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organisations", type=int, default=1000)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--error-rates", choices=["population", "validation"], default="population")
    parser.add_argument("--counts", action="store_true", help="time a counts table of --organisations rows instead")
    parser.add_argument(
        "--with-and", action="store_true", help="--counts: the lists' AND count too (each organisation's patterns)"
    )
    args = parser.parse_args()
    settings = HeadcountSettings(draws=args.draws, error_rates=args.error_rates)
    if args.counts:
        time_counts(args, settings)
        return
    rng = np.random.default_rng(0)

    weights = rng.lognormal(0, 1.2, args.organisations)
    organisation = rng.choice(args.organisations, size=args.profiles, p=weights / weights.sum()).astype(np.int32)
    share = rng.uniform(0, 0.4, args.organisations)
    expert = rng.random(args.profiles) < share[organisation]
    values = annotators(expert, rng, llm_share=0.2, missing=0.01)
    labels = rng.random(600) < 0.3
    validation = annotators(labels, rng, llm_share=1.0, missing=0.0)  # rated profiles carry every annotator
    profiles = np.bincount(organisation, minlength=args.organisations)
    employees = (profiles * 1.5).astype(np.int64)

    started, cpu_started = time.perf_counter(), time.process_time()
    chosen = choose_annotators(
        labels,
        validation,
        settings.max_joint_annotators,
        settings.smoothing,
        displaced_by(labels, validation, shown_apart(values)),
    )
    space = PatternSpace(len(chosen))
    evidence = PatternEvidence(
        group_profiles(organisation, values[:, chosen], space, args.organisations), space, args.organisations
    )
    grouped = time.perf_counter()
    draws = headcount_draws(
        labels,
        validation[:, chosen],
        evidence,
        employees,
        draws=args.draws,
        rng=rng,
        **model_options(settings),
    ).counts
    total = summarise(draws.sum(axis=1, keepdims=True))
    finished, cpu_seconds = time.perf_counter(), time.process_time() - cpu_started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    truth = int(np.bincount(organisation, weights=expert).sum() + (employees - profiles) @ share)
    print(f"annotators in model: {len(chosen)}, (organisation, pattern) groups: {len(evidence.groups.count)}")
    print(f"choose + group: {grouped - started:.1f} s, draws: {finished - grouped:.1f} s")
    print(
        f"total (expected truth ~{truth}): mean {total['mean'][0]:.0f}, "
        f"80 % interval {total['q10'][0]}-{total['q90'][0]}"
    )
    print(
        f"error_rates={args.error_rates} organisations={args.organisations} profiles={args.profiles} "
        f"draws={args.draws} "
        f"seconds={finished - started:.1f} cpu_seconds={cpu_seconds:.1f} peak_rss_mib={peak_mib:.0f}"
    )


if __name__ == "__main__":
    main()
