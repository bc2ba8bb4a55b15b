"""The readable side of an estimate: its report's content (report.md and report.html render it, runs.document) and
a forest plot of per-organisation intervals."""

from __future__ import annotations

import pandas as pd

from ml_headcount.runs.document import Artifacts, Bullets, Code, Document, Image, Paragraph, Section, Strong, table_of
from ml_headcount.runs.report import new_figure, plain_text, png_bytes

FOREST_ORGANISATIONS = 60

ARTIFACTS = {
    "summary.json": "the total, inputs and settings",
    "estimates.csv": "every organisation's estimate",
    "annotators.csv": "each annotator's validation confusion and population rates",
    "repairs.csv": "every count repaired, with its rule",
    "report.md": "this report as Markdown",
    "report.html": "this report as one page",
    "forest.png": "the forest plot",
}

# annotators.csv's columns as the report shows them: short, so that the table fits a page
ANNOTATOR_COLUMNS = {
    "annotator": "annotator",
    "in_model": "in model",
    "why": "why",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "population_sensitivity": "population sensitivity",
    "population_specificity": "population specificity",
    "true_positive": "TP",
    "false_negative": "FN",
    "true_negative": "TN",
    "false_positive": "FP",
    "missing": "missing",
    "other_values": "other values",
}


def estimate_document(
    run_id: str, summary: dict, estimates: pd.DataFrame, annotators: pd.DataFrame, forest: bytes
) -> Document:
    """Everything the estimate's report says: the total, what it rests on, the annotators, the repairs and flags, the
    predictive checks and every organisation."""
    total = summary["total"]
    lead = [
        Paragraph(
            Strong(f"{total['mean']:.0f} ML experts"),
            f" in {summary['organisations']} organisations (80 % interval {total['q10']}–{total['q90']}, median "
            f"{total['q50']}), from {summary['profiles']} profiles of {summary['employees']} employees "
            f"({summary['mode']} mode).",
        )
    ]
    ordered = estimates.sort_values("mean", ascending=False)
    organisations = ordered[["organisation", "employees", "profiles", "mean", "q10", "q50", "q90", "flags"]]
    no_profiles = int((estimates["profiles"] == 0).sum())
    sections = [
        Section("Inputs and model", "diagnostics", _inputs(summary)),
        Section(
            "Estimates per organisation",
            "forest",
            [Image(forest, "median and 80 % interval of ML experts per organisation", "forest.png")],
        ),
        Section("Annotators (validation and population)", "annotators", _annotators(summary, annotators)),
        Section("Repairs and flags", "flags", [_checks(summary)]),
        Section("Posterior predictive checks", "checks", _predictive(summary["predictive_checks"])),
        Section(
            "Organisations (largest estimate first)",
            "organisations",
            [table_of(organisations.round({"mean": 1}).to_dict(orient="records"))]
            + (
                [Paragraph(f"{no_profiles} organisation(s) have no profiles: their estimate is the prior's.")]
                if no_profiles
                else []
            ),
        ),
        Section("Artifacts", "artifacts", [Artifacts(ARTIFACTS)]),
    ]
    return Document(f"Headcount estimate {run_id}", lead, sections)


def _inputs(summary: dict) -> list:
    """The tables the estimate read and the model it fitted."""
    settings, validation = summary["settings"], summary["validation"]
    prior = (
        "a Beta learned across the organisations (hierarchical)"
        if settings["prior"] == "hierarchical"
        else f"Beta({settings['prior_alpha']}, {settings['prior_beta']}) for every organisation"
    )
    return [
        Paragraph(
            f"Validation: {validation['url']}, {validation['rows']} labelled rows ({validation['positives']} positive; "
            f"rows without a label, not used: {validation['rows_without_label']}). "
            f"Population: {summary['population']['url']}."
        ),
        Paragraph(
            f"Model: the joint response pattern of {', '.join(summary['model_annotators'])} per class (Dirichlet "
            f"smoothing {settings['smoothing']} towards independence), prevalence prior {prior}, {settings['draws']} "
            f"draws, seed {summary['seed']}. Intervals include validation resampling (transfer "
            f"{settings['transfer']}), the prior, unobserved employees and realisation (docs/headcount.md)."
        ),
    ]


def _annotators(summary: dict, annotators: pd.DataFrame) -> list:
    """The annotators' validation and population rates, and which rates the model used."""
    shown = annotators[list(ANNOTATOR_COLUMNS)].rename(columns=ANNOTATOR_COLUMNS).round(3)
    parts = [table_of(shown.astype(object).where(shown.notna(), None).to_dict(orient="records"))]
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
        f"{name} {sd} / {spread['sensitivity_sd'][name]}" for name, sd in spread["false_positive_sd"].items()
    )
    parts.append(
        Paragraph(
            f"Error rates: {rates}. Each organisation's rates differ from the population's by a random effect, sd in "
            f"logit of the false-positive rate / sensitivity: {spreads} "
            f"({'learned from the organisations with two or more annotators' if spread['learned'] else 'as set'}). "
            "TP, FN, TN, FP: the validation's true and false positives and negatives. Values other than 0/1 (",
            Code("other values"),
            ", e.g. REJECT) count as missing and are marginalised; a blank rate is one the data do not give.",
        )
    )
    dropped = summary["validation_columns_not_in_population"]
    if dropped:
        parts.append(
            Paragraph(f"Validation columns not in the population table, so not annotators: {', '.join(dropped)}.")
        )
    return parts


FLAG_MEANINGS = {
    "below_false_positive_rates": "match less often than every model annotator's validation false-positive rate allows",
    "above_sensitivities": "match more often than every model annotator's validation sensitivity allows",
    "contradicts_inputs": "have a count outside its 99 % posterior predictive interval: the model contradicts "
    "that input there (the predicted99_* columns of estimates.csv)",
    "grid_edge": "have more than 1 % of their posterior in an edge cell of the prevalence grid",
}


def _checks(summary: dict) -> Bullets:
    """The repairs made to the input and the organisations flagged, with why."""
    repairs = summary["repairs"]
    if repairs:
        listed = ", ".join(f"{n} by rule {rule}" for rule, n in repairs.items())
        items = [
            Paragraph(
                f"{sum(repairs.values())} counts repaired ({listed}); each is listed in ", Code("repairs.csv"), "."
            )
        ]
    else:
        items = [Paragraph("No count needed a repair.")]
    for reason, n in summary["flags"].items():
        if n:
            items.append(Paragraph(f"{n} organisation(s) flagged ", Code(reason), f": they {FLAG_MEANINGS[reason]}."))
    if not any(summary["flags"].values()):
        items.append(Paragraph("No organisation flagged."))
    return Bullets(tuple(items))


def predictive_rows(checks: dict) -> list[dict]:
    """Per model annotator: the organisations it rated profiles of, the share of their counts outside the 80 %
    interval their other evidence predicts, and how many lie outside their 99 % posterior predictive interval (both
    reports' table)."""
    return [
        {
            "annotator": name,
            "organisations checked": entry["organisations"],
            "share outside the 80 % interval the other evidence predicts": (
                "" if entry["outside_80"] is None else f"{entry['outside_80']:.1%}"
            ),
            "outside 99 % interval": entry["outside_99"],
        }
        for name, entry in checks["annotators"].items()
    ]


def _predictive(checks: dict) -> list:
    """Whether the fitted model reproduces each annotator's counts (docs/headcount.md, Posterior predictive checks)."""
    note = Paragraph(
        "Each organisation's observed matches against the fitted model's predictive interval of them: a count outside "
        "its 99 % interval is one the model contradicts. Across the table, each count against the 80 % interval that "
        "the organisation's other evidence predicts: where the model fits, about 20 % or a little fewer fall outside."
    )
    verdict = (
        Paragraph(Strong(f"{checks['message']}."))
        if checks["message"]
        else Paragraph("The model reproduces every count.")
    )
    return [note, table_of(predictive_rows(checks)), verdict]


def plot_forest(estimates: pd.DataFrame, top: int = FOREST_ORGANISATIONS) -> bytes:
    """PNG of `forest_figure`."""
    return png_bytes(forest_figure(estimates, top))


@plain_text
def forest_figure(estimates: pd.DataFrame, top: int = FOREST_ORGANISATIONS):
    """Median and 80 % interval per organisation, largest estimate first (the top `top`), on an axis of whole experts
    from 0.

    The mean was the point: with near-zero counts its posterior is skewed, and a mean of 0.03 sat right of an interval
    [0, 0] on an axis of 0-0.07. The median is inside its interval by construction, and the axis spans at least one
    expert, so that nothing reads as a fraction of a person."""
    from matplotlib.ticker import MaxNLocator

    shown = estimates.sort_values("mean", ascending=False).head(top).iloc[::-1]
    figure = new_figure(figsize=(8, max(2.5, 0.28 * len(shown) + 1.2)))
    axes = figure.subplots()
    positions = range(len(shown))
    axes.hlines(positions, shown["q10"], shown["q90"], color="tab:blue", linewidth=2)
    axes.plot(shown["q50"], positions, "o", color="black", markersize=4)
    axes.set_yticks(list(positions), [str(o)[:40] for o in shown["organisation"]], fontsize=8)
    axes.set_xlim(0, max(1.0, float(shown["q90"].max() if len(shown) else 0)) * 1.05)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("ML experts (median and 80 % interval; the mean is in the table)")
    title = "Estimated ML experts per organisation"
    axes.set_title(title if len(estimates) <= top else f"{title} (top {top} of {len(estimates)})")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure
