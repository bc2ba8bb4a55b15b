"""Write the headcount demo tables: a validation table, a population table, a counts table and the truth.

Everything is simulated (no real person or organisation): three annotators
that err in a correlated way (two "LLMs" reading the same latent impression of
a profile, and a keyword filter), values sometimes REJECT or blank as real
exports have. The LLM labels exist for a 30 % sample of the population only.
headcount_truth.csv holds the simulated number of experts among all employees
of each organisation, to compare the estimates with.

    uv run python examples/make_headcount_demo.py   # rewrites examples/headcount_*.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ORGANISATIONS = {  # name: (employees, profiles observed, expert share)
    "Alder Analytics": (400, 300, 0.30),
    "Birch Consulting": (2500, 1200, 0.04),
    "Cedar Systems": (900, 600, 0.10),
    "Dogwood Digital": (150, 150, 0.0),
    "Elm Research Lab": (120, 90, 0.45),
    "Fir Services": (5000, 1500, 0.01),
    "Ginkgo Partners": (60, 0, 0.08),  # no profiles observed: its estimate is the prior's
}


def annotate(expert: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Three noisy annotators of these profiles: two LLMs with correlated errors and a keyword filter."""
    impression = rng.normal(size=len(expert)) + np.where(expert, 1.8, -0.6)  # shared by both LLMs: correlated errors
    llm_a = (impression + 0.4 * rng.normal(size=len(expert)) > 0.9).astype(int)
    llm_b = (impression + 0.4 * rng.normal(size=len(expert)) > 0.6).astype(int)
    keyword = np.where(expert, rng.random(len(expert)) < 0.6, rng.random(len(expert)) < 0.07).astype(int)
    table = pd.DataFrame(
        {"llm_a": llm_a.astype(str), "llm_b": llm_b.astype(str), "keyword_filter": keyword.astype(str)}
    )
    table.loc[rng.random(len(expert)) < 0.04, "llm_a"] = "REJECT"
    table.loc[rng.random(len(expert)) < 0.03, "llm_b"] = ""
    return table


def main() -> None:
    """Write the demo's validation and population tables."""
    rng = np.random.default_rng(7)
    labels = rng.random(600) < 0.3
    validation = pd.concat([pd.DataFrame({"category": labels.astype(int)}), annotate(labels, rng)], axis=1)
    validation.to_csv(HERE / "headcount_validation.csv", index=False)

    rows, counts, truth = [], [], []
    for name, (employees, profiles, share) in ORGANISATIONS.items():
        expert = rng.random(profiles) < share
        table = annotate(expert, rng)
        unlabelled = rng.random(profiles) >= 0.3  # LLM labels were bought for a 30 % sample
        table.loc[unlabelled, ["llm_a", "llm_b"]] = ""
        table.insert(0, "employees", employees)
        table.insert(0, "organisation", name)
        rows.append(table)
        unobserved_experts = rng.binomial(employees - profiles, share)
        truth.append({"organisation": name, "experts": int(expert.sum() + unobserved_experts)})
        counts.append(
            {
                "organisation": name,
                "employees": employees,
                "profiles": profiles,
                "keyword_filter": int((table["keyword_filter"] == "1").sum()),
            }
        )
    pd.concat(rows).to_csv(HERE / "headcount_population.csv", index=False)
    pd.DataFrame(counts).to_csv(HERE / "headcount_counts.csv", index=False)
    pd.DataFrame(truth).to_csv(HERE / "headcount_truth.csv", index=False)


if __name__ == "__main__":
    main()
