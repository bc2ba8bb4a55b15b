"""The readable side of an estimate: report.md and a forest plot of per-organisation intervals."""

from __future__ import annotations

import pandas as pd

from ml_headcount.runs.markdown import markdown_text as md
from ml_headcount.runs.report import new_figure, plain_text, png_bytes

FOREST_ORGANISATIONS = 60


def markdown_table(table: pd.DataFrame) -> list[str]:
    """The table as Markdown lines, every cell shown as its text (`markdown_text`); missing values blank."""
    lines = ["| " + " | ".join(map(md, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join("" if pd.isna(v) else md(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return lines


def render_estimate_report(run_id: str, summary: dict, estimates: pd.DataFrame, annotators: pd.DataFrame) -> str:
    """report.md: the total, what it rests on, the annotators, the repairs and flags, and every organisation."""
    total = summary["total"]
    settings = summary["settings"]
    prior = (
        "a Beta learned across the organisations (hierarchical)"
        if settings["prior"] == "hierarchical"
        else f"Beta({settings['prior_alpha']}, {settings['prior_beta']}) for every organisation"
    )
    lines = [
        f"# Headcount estimate `{run_id}`",
        "",
        f"**{total['mean']:.0f} ML experts** in {summary['organisations']} organisations "
        f"(80 % interval {total['q10']}–{total['q90']}, median {total['q50']}), "
        f"from {summary['profiles']} profiles of {summary['employees']} employees ({summary['mode']} mode).",
        "",
        f"Validation: {md(summary['validation']['url'])}, {summary['validation']['rows']} labelled rows "
        f"({summary['validation']['positives']} positive; rows without a label, not used: "
        f"{summary['validation']['rows_without_label']}). Population: {md(summary['population']['url'])}.",
        "",
        f"Model: the joint response pattern of {', '.join(map(md, summary['model_annotators']))} per class "
        f"(Dirichlet smoothing {settings['smoothing']} towards independence), prevalence prior {prior}, "
        f"{settings['draws']} draws, seed {summary['seed']}. Intervals include validation resampling "
        f"(transfer {settings['transfer']}), the prior, unobserved employees and realisation (docs/headcount.md).",
        "",
        "## Annotators (validation and population)",
        "",
    ]
    lines += _annotator_lines(summary, annotators)
    lines += _checks(summary)
    lines += _predictive_lines(summary["predictive_checks"])
    lines += ["## Organisations (largest estimate first)", ""]
    ordered = estimates.sort_values("mean", ascending=False)
    lines += markdown_table(ordered[["organisation", "employees", "profiles", "mean", "q10", "q50", "q90", "flags"]])
    no_profiles = int((estimates["profiles"] == 0).sum())
    if no_profiles:
        lines += ["", f"{no_profiles} organisation(s) have no profiles: their estimate is the prior's."]
    return "\n".join(lines) + "\n"


def _annotator_lines(summary: dict, annotators: pd.DataFrame) -> list[str]:
    """The annotators' validation and population rates, and which rates the model used."""
    columns = [
        "annotator",
        "in_model",
        "why",
        "sensitivity",
        "specificity",
        "population_sensitivity",
        "population_specificity",
        "true_positive",
        "false_negative",
        "true_negative",
        "false_positive",
        "missing",
        "other_values",
    ]
    lines = markdown_table(annotators[columns])
    rates = (
        "the validation rates are assumed to hold in the population"
        if summary["error_rates"] == "validation"
        else "the population's rates of the model's annotators were learned with the prevalences, the validation "
        "rates as their prior"
        if summary["population_rates_learned"]
        else "the validation rates were kept: too few profiles were rated by two or more of the model's annotators "
        "to learn the population's (docs/headcount.md)"
    )
    spread = summary["rate_spread"]
    spreads = ", ".join(
        f"{md(name)} {sd} / {spread['sensitivity_sd'][name]}" for name, sd in spread["false_positive_sd"].items()
    )
    lines += [
        "",
        f"Error rates: {rates}. Each organisation's rates differ from the population's by a random effect, sd in "
        f"logit of the false-positive rate / sensitivity: {spreads} "
        f"({'learned from the organisations with two or more annotators' if spread['learned'] else 'as set'}). "
        "Values other than 0/1 (`other_values`, e.g. REJECT) count as missing and are marginalised.",
        "",
    ]
    dropped = summary["validation_columns_not_in_population"]
    if dropped:
        lines += [f"Validation columns not in the population table, so not annotators: {md(', '.join(dropped))}.", ""]
    return lines


FLAG_MEANINGS = {
    "below_false_positive_rates": "match less often than every model annotator's validation false-positive rate allows",
    "above_sensitivities": "match more often than every model annotator's validation sensitivity allows",
    "contradicts_inputs": "have a count outside its 99 % posterior predictive interval: the model contradicts "
    "that input there (the `predicted99_*` columns of `estimates.csv`)",
    "grid_edge": "have more than 1 % of their posterior in an edge cell of the prevalence grid",
}


def _checks(summary: dict) -> list[str]:
    """The repairs made to the input and the organisations flagged, with why."""
    lines = ["## Repairs and flags", ""]
    repairs = summary["repairs"]
    if repairs:
        listed = ", ".join(f"{n} by rule `{rule}`" for rule, n in repairs.items())
        lines.append(f"- {sum(repairs.values())} counts repaired ({listed}); each is listed in `repairs.csv`.")
    else:
        lines.append("- No count needed a repair.")
    for reason, n in summary["flags"].items():
        if n:
            lines.append(f"- {n} organisation(s) flagged `{reason}`: they {FLAG_MEANINGS[reason]}.")
    if not any(summary["flags"].values()):
        lines.append("- No organisation flagged.")
    return lines + [""]


def predictive_rows(checks: dict) -> list[dict]:
    """Per model annotator: the organisations it rated profiles of, and how many of their counts the model's posterior
    predictive intervals leave out (both reports' table)."""
    return [
        {
            "annotator": name,
            "organisations checked": entry["organisations"],
            "share outside 80 % interval": "" if entry["outside_80"] is None else f"{entry['outside_80']:.1%}",
            "outside 99 % interval": entry["outside_99"],
        }
        for name, entry in checks["annotators"].items()
    ]


def _predictive_lines(checks: dict) -> list[str]:
    """Whether the fitted model reproduces each annotator's counts (docs/headcount.md, Posterior predictive checks)."""
    lines = [
        "## Posterior predictive checks",
        "",
        "Each organisation's observed matches against the fitted model's predictive interval of them: about 20 % of "
        "organisations or fewer outside the 80 % interval fits; a count outside its 99 % interval is one the model "
        "contradicts.",
        "",
    ]
    lines += markdown_table(pd.DataFrame(predictive_rows(checks)))
    verdict = f"**{md(checks['message'])}.**" if checks["message"] else "The model reproduces every count."
    return lines + ["", verdict, ""]


@plain_text
def plot_forest(estimates: pd.DataFrame, top: int = FOREST_ORGANISATIONS) -> bytes:
    """Mean and 80 % interval per organisation, largest estimate first (the top `top`)."""
    shown = estimates.sort_values("mean", ascending=False).head(top).iloc[::-1]
    figure = new_figure(figsize=(8, max(2.5, 0.28 * len(shown) + 1.2)))
    axes = figure.subplots()
    positions = range(len(shown))
    axes.hlines(positions, shown["q10"], shown["q90"], color="tab:blue", linewidth=2)
    axes.plot(shown["mean"], positions, "o", color="black", markersize=4)
    axes.set_yticks(list(positions), [str(o)[:40] for o in shown["organisation"]], fontsize=8)
    axes.set_xlabel("ML experts (mean and 80 % interval)")
    title = "Estimated ML experts per organisation"
    axes.set_title(title if len(estimates) <= top else f"{title} (top {top} of {len(estimates)})")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return png_bytes(figure)
