"""Is the headcount estimator calibrated? Synthetic organisations built from hand-rated CVs whose truth is known.

Per seed: split ../shared/data/rated_cvs.csv at random into a validation half
and a population pool; draw organisations of 20-5,000 profiles (log-uniform)
with expert shares uniform in 0-40 %, each profile a CV drawn with replacement
from the pool's experts (with the organisation's share) or non-experts; give
the LLM annotator values (the 22 `prompt-N-<model>` columns, REJECT/ERROR/blank
= missing) to a random 10-30 % of each organisation's profiles; choose the
annotators and fit on the validation half only; estimate.

Compared, on the same organisations:
- the estimator's mean and 80 % interval (q10-q90);
- naive: the share of annotated profiles that the best single annotator
  (the first one the estimator chose) marks 1, times the employees;
- Rogan-Gladen: that share corrected with the annotator's validation
  sensitivity and specificity, (r + sp - 1) / (se + sp - 1) clipped to [0, 1].

Only the LLM columns are used: keyword-list annotators need a keyword run
(model work) and cross-validated lists.

    uv run python benchmarks/headcount_calibration.py [--seeds 8] [--organisations 50] [--draws 1000]

Last line: coverage80=<x> total_covered=<share of seeds> mae=<y> naive_mae=<z> rogan_gladen_mae=<w>
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml_headcount.headcount.annotators import MISSING, PatternSpace, annotator_values, choose_annotators
from ml_headcount.config import HeadcountSettings
from ml_headcount.headcount.model import PatternEvidence, Prior, group_profiles, headcount_draws, summarise

RATED_CVS = Path(__file__).resolve().parents[2] / "shared" / "data" / "rated_cvs.csv"


def load_rated() -> tuple[np.ndarray, np.ndarray, list[str]]:
    table = pd.read_csv(RATED_CVS, dtype=str, keep_default_na=False)
    names = [c for c in table.columns if c.startswith("prompt-")]
    values = np.stack([annotator_values(table[c]) for c in names], axis=1)
    return table["category"].to_numpy() == "1", values, names


def usable_columns(labels: np.ndarray, values: np.ndarray) -> list[int]:
    """The product's refusal rule: a column constant or missing on the validation table cannot be used."""
    return [j for j in range(values.shape[1]) if len(set(values[values[:, j] != MISSING, j])) == 2]


def synthetic_organisations(pool_labels, pool_values, n_orgs, rng):
    sizes = np.exp(rng.uniform(np.log(20), np.log(5000), n_orgs)).astype(int)
    shares = rng.uniform(0.0, 0.4, n_orgs)
    annotated_share = rng.uniform(0.1, 0.3, n_orgs)
    organisation = np.repeat(np.arange(n_orgs), sizes)
    expert = rng.random(len(organisation)) < shares[organisation]
    experts, others = np.flatnonzero(pool_labels), np.flatnonzero(~pool_labels)
    cv = np.where(expert, rng.choice(experts, len(organisation)), rng.choice(others, len(organisation)))
    values = pool_values[cv].copy()
    values[rng.random(len(organisation)) >= annotated_share[organisation]] = MISSING
    truth = np.bincount(organisation, weights=expert, minlength=n_orgs).astype(int)
    return organisation, values, sizes, truth


def single_annotator_baselines(labels, validation_column, organisation, column, sizes):
    observed = column != MISSING
    annotated = np.bincount(organisation[observed], minlength=len(sizes))
    matches = np.bincount(organisation[observed], weights=column[observed] == 1, minlength=len(sizes))
    pooled = matches.sum() / max(annotated.sum(), 1)  # organisations without an annotated profile get the pooled rate
    rate = np.where(annotated > 0, matches / np.maximum(annotated, 1), pooled)
    valid = validation_column != MISSING
    sensitivity = (validation_column[valid & labels] == 1).mean()
    specificity = (validation_column[valid & ~labels] == 0).mean()
    corrected = np.clip((rate + specificity - 1) / (sensitivity + specificity - 1), 0, 1)
    return rate * sizes, corrected * sizes


def run_seed(seed, labels, values, names, args, settings):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    validation, pool = order[: len(order) // 2], order[len(order) // 2:]
    candidates = usable_columns(labels[validation], values[validation])
    chosen = [candidates[j] for j in choose_annotators(labels[validation], values[validation][:, candidates],
                                                       settings.max_joint_annotators, settings.smoothing)]
    organisation, population_values, sizes, truth = synthetic_organisations(labels[pool], values[pool], args.organisations, rng)

    space = PatternSpace(len(chosen))
    evidence = PatternEvidence(group_profiles(organisation, population_values[:, chosen], space, len(sizes)), space, len(sizes))
    draws = headcount_draws(labels[validation], values[validation][:, chosen], evidence, sizes, draws=args.draws,
                            prior=Prior(settings.prior, settings.prior_alpha, settings.prior_beta),
                            smoothing=settings.smoothing, transfer=settings.transfer, grid_points=settings.grid_points, rng=rng)
    per_org = summarise(draws)
    total = summarise(draws.sum(axis=1, keepdims=True))
    naive, rogan_gladen = single_annotator_baselines(labels[validation], values[validation][:, chosen[0]],
                                                      organisation, population_values[:, chosen[0]], sizes)
    covered = (per_org["q10"] <= truth) & (truth <= per_org["q90"])
    return {
        "seed": seed, "organisations": len(sizes), "annotators": len(chosen), "coverage80": covered.mean(),
        "total_truth": int(truth.sum()), "total_mean": round(float(total["mean"][0]), 1),
        "total_q10": int(total["q10"][0]), "total_q90": int(total["q90"][0]),
        "total_covered": bool(total["q10"][0] <= truth.sum() <= total["q90"][0]),
        "mae": np.abs(per_org["mean"] - truth).mean(), "naive_mae": np.abs(naive - truth).mean(),
        "rogan_gladen_mae": np.abs(rogan_gladen - truth).mean(),
        "first_annotator": names[chosen[0]],
    }, pd.DataFrame({"size": sizes, "covered": covered, "truth": truth, "mean": per_org["mean"],
                     "width": per_org["q90"] - per_org["q10"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--organisations", type=int, default=50)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--max-joint", type=int, help="override HeadcountSettings.max_joint_annotators")
    parser.add_argument("--smoothing", type=float, help="override HeadcountSettings.smoothing")
    parser.add_argument("--transfer", type=float, help="override HeadcountSettings.transfer")
    parser.add_argument("--prior", choices=["hierarchical", "fixed"], help="override HeadcountSettings.prior")
    args = parser.parse_args()
    overrides = {k: v for k, v in {"max_joint_annotators": args.max_joint, "smoothing": args.smoothing,
                                   "prior": args.prior, "transfer": args.transfer}.items() if v is not None}
    settings = HeadcountSettings(**overrides)
    labels, values, names = load_rated()

    started = time.perf_counter()
    results, organisations = [], []
    for seed in range(args.seeds):
        row, per_org = run_seed(seed, labels, values, names, args, settings)
        results.append(row)
        organisations.append(per_org)
    table = pd.DataFrame(results)
    every_org = pd.concat(organisations)

    print(f"settings: max_joint_annotators={settings.max_joint_annotators} smoothing={settings.smoothing} "
          f"transfer={settings.transfer} prior={settings.prior} draws={args.draws}; {time.perf_counter() - started:.0f} s")
    print(table.round(3).to_string(index=False))
    bands = pd.cut(every_org["size"], [0, 100, 1000, 5001], labels=["20-100", "100-1000", "1000-5000"])
    print()
    print(every_org.groupby(bands, observed=True).agg(organisations=("covered", "size"), coverage80=("covered", "mean"),
                                                      mean_width=("width", "mean")).round(3).to_string())
    print()
    print(f"coverage80={every_org['covered'].mean():.3f} total_covered={table['total_covered'].mean():.3f} "
          f"mae={table['mae'].mean():.2f} naive_mae={table['naive_mae'].mean():.2f} "
          f"rogan_gladen_mae={table['rogan_gladen_mae'].mean():.2f}")


if __name__ == "__main__":
    main()
