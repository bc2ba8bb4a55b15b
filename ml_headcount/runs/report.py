"""The human-readable side of a run: a Markdown report and a bar chart."""

from __future__ import annotations

import functools
import io
import math

import pandas as pd

from ml_headcount.lists.quality_table import NEW_SAMPLE_COLUMN, list_quality_table
from ml_headcount.lists.quality_table import fmt as _fmt
from ml_headcount.lists.quality_table import with_interval as _with_interval
from ml_headcount.runs.markdown import markdown_text as md
from ml_headcount.scoring.keyword_list import list_column

TOP_IN_REPORT = 15
TOP_IN_PLOT = 10
CATEGORIES_IN_PLOT = 9  # a 3 x 3 grid; 150 categories took 132 s to plot, into a 15 MB PNG


def top_keywords_table(discriminative: pd.DataFrame, top: int = TOP_IN_REPORT) -> pd.DataFrame:
    """The `top` best-ranked discriminative keywords of each category, with their scores and frequencies."""
    return discriminative[discriminative["rank"] <= top][
        ["category", "rank", "keyword", "score", "specificity", "frequency", "total_frequency"]
    ]


def render_report(
    manifest: dict,
    discriminative: pd.DataFrame,
    lists: dict,
    clusters: dict,
    queries: dict | None = None,
    classifier: dict | None = None,
) -> str:
    """report.md of a run: counts, top keywords, lists and their quality, queries, annotator, clusters, timings."""
    lines = _counts_section(manifest) + _top_keywords_section(discriminative) + _lists_section(lists)
    lines += (_query_section(queries) if queries else []) + (_classifier_section(classifier) if classifier else [])
    lines += _clusters_section(clusters)
    lines += ["## Timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in manifest["timings_s"].items()]
    return "\n".join(lines) + "\n"


def _counts_section(manifest: dict) -> list[str]:
    """The run's heading, input and model, and its counts of rows, CVs and keywords."""
    ingest, extraction = manifest["ingest"], manifest["extraction"]
    lines = [
        f"# ml-headcount run `{manifest['run_id']}`",
        "",
        f"Input: {md(manifest['input']['url'])} (sha256 `{manifest['input']['sha256'][:16]}…`)  ",
        f"Model: {md(manifest['parameters']['extraction']['model'])} on {extraction['device']}, "
        f"backend `{manifest['parameters']['backend']}`",
        "",
        "## Counts",
        "",
        "| input rows | CVs used | duplicates | rejected | encoding repaired | keywords extracted "
        "| CVs extracted now | CVs from cache |",
        "|---|---|---|---|---|---|---|---|",
        f"| {ingest['input_rows']} | {ingest['cvs']} | {ingest['duplicates']} | {ingest['rejected']} "
        f"| {ingest['repaired_encoding']} | {extraction['keywords']} "
        f"| {extraction['cvs_extracted']} | {extraction['cvs_from_cache']} |",
        "",
        "CVs per category: " + ", ".join(f"{md(c)}: {n}" for c, n in ingest["categories"].items()),
        "",
    ]
    if ingest["rejected_by_reason"]:
        lines += [
            "Rejected rows (see `rejected.csv`): "
            + ", ".join(f"{md(r)}: {n}" for r, n in ingest["rejected_by_reason"].items()),
            "",
        ]
    if manifest.get("cache_rejected"):
        lines += [
            f"**{len(manifest['cache_rejected'])} cache entries in the storage failed their checks** and were "
            "ignored, their results computed again (listed in `manifest.json`, `cache_rejected`).",
            "",
        ]
    return lines


def _top_keywords_section(discriminative: pd.DataFrame) -> list[str]:
    """Per category, a table of its top discriminative keywords."""
    lines = ["## Top discriminative keywords", ""]
    for category, group in top_keywords_table(discriminative).groupby("category", sort=True):
        lines += [
            f"### Category {md(category)}",
            "",
            "| # | keyword | score | specificity | CVs in category | CVs in all |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.rank} | {md(r.keyword)} | {r.score:.3f} | {r.specificity:.3f} | {r.frequency} "
            f"| {r.total_frequency} |"
            for r in group.itertuples()
        ]
        lines.append("")
    return lines


def _lists_section(lists: dict) -> list[str]:
    """Every keyword list with its in-sample and cross-validated quality."""
    lines = [
        "## Keyword lists",
        "",
        "A CV matches a list when its cleaned text contains any of its keywords and none of its exclusions. "
        "In-sample figures are measured on the CVs the lists were learned from (optimistic); cross-validated "
        "ones on CVs held out of the learning (stratified folds, pooled, mean over the fold seeds), with 80 % "
        "intervals (Wilson for sensitivity and specificity, bootstrap for balanced accuracy). The learner's design "
        "was chosen on the study's rated CVs, so on them cross-validated figures are optimistic: the new-sample "
        "column is what a new sample of rated CVs will see (80 % prediction interval: fold and seed noise, the "
        "design-selection optimism and the new sample's own noise; docs/lists.md). "
        "`heldout_matches.parquet` holds every CV's held-out matches (first fold seed).",
        "",
        "| category | list | method | phrases | exclusions (AND NOT) | in-sample sens. | in-sample spec. "
        "| cross-validated sensitivity | cross-validated specificity | cross-validated balanced accuracy "
        "| fold seeds | new sample: balanced accuracy | organisation names | keywords (first 12) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    columns = [
        "method",
        "phrases",
        "exclusions (AND NOT)",
        "in-sample sensitivity",
        "in-sample specificity",
        "cross-validated sensitivity",
        "cross-validated specificity",
        "cross-validated balanced accuracy",
        "fold seeds",
        NEW_SAMPLE_COLUMN,
        "organisation names",
        "first keywords",
    ]
    for row in list_quality_table(lists):
        cells = [row["category"], row["list"], *(row[column] for column in columns)]
        lines.append("| " + " | ".join(md(cell) for cell in cells) + " |")
    return lines


def _clusters_section(clusters: dict) -> list[str]:
    """Per category, its keyword clusters: representative, size, mean score and first members."""
    lines = ["", "## Keyword clusters", ""]
    for category, result in clusters.items():
        lines += [f"### Category {md(category)} ({result['method']})", ""]
        for cluster in result["clusters"]:
            lines.append(
                f"- **{md(cluster['representative'])}** ({cluster['cluster']}, {cluster['size']} keywords, "
                f"mean score {cluster['mean_score']:.3f}): {md(', '.join(cluster['keywords'][:10]))}"
            )
        lines.append("")
    return lines


def _query_section(queries: dict) -> list[str]:
    """Every list as a search query (boolean dialect; queries.json has every dialect) with its quality per matcher."""
    lines = [
        "",
        "## Search queries",
        "",
        "Every list as a query for people-search tools (`queries.json` holds every dialect: "
        + ", ".join(f"`{name}`" for name in queries["dialects"])
        + "; `ml-headcount query RUN --dialect D` prints one). "
        "Quality per matcher: *product* matches the run's n-grams after the study's cleaning, *phrase* is phrase "
        "search of the query as a search tool runs it. Cross-validated balanced accuracy with its 80 % interval; "
        "spread: max - min over the fold seeds.",
        "",
        "| category | list | complexity | product: CV balanced | product: seed spread "
        "| phrase: in-sample sens. / spec. | phrase: CV balanced | phrase: seed spread | boolean query |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for category, by_name in queries["queries"].items():
        for name, entry in by_name.items():
            quality = entry["quality"]
            complexity = entry["complexity"]
            shape = f"{complexity['phrases']} phrases, {complexity['form']}" if complexity else "empty"
            boolean = entry["dialects"]["boolean"]
            lines.append(
                f"| {md(category)} | {md(name)} | {shape} | {_balanced_cell(quality['product'])} | "
                f"{_fmt(quality['product']['seed_spread'])} | {_fmt(quality['phrase']['in_sample_sensitivity'])} / "
                f"{_fmt(quality['phrase']['in_sample_specificity'])} | {_balanced_cell(quality['phrase'])} | "
                f"{_fmt(quality['phrase']['seed_spread'])} | {md(boolean.get('query', boolean.get('refused')))} |"
            )
    notes = [
        f"- {md(list_column(c, name))}: {md(note)}"
        for c, by_name in queries["queries"].items()
        for name, e in by_name.items()
        for note in e["lint"]
    ]
    return lines + (["", "Linter repairs:", ""] + notes if notes else [])


def _classifier_section(classifier: dict) -> list[str]:
    """The TF-IDF + logistic-regression annotator's quality per category, like a list's (or why there is none)."""
    lines = [
        "",
        "## TF-IDF + logistic-regression annotator",
        "",
    ]
    if "skipped" in classifier:
        return lines + [f"Not learned from these {classifier['learning_cvs']} CVs: {md(classifier['skipped'])}."]
    lines += [
        f"`text_classifier.json` (terms, idf, coefficients; learned from {classifier['learning_cvs']} CVs, "
        "cross-validated on the lists' folds). It needs the profiles' texts (population mode, `apply`), not a "
        "search tool. In-sample figures are optimistic.",
        "",
        "| category | column | in-sample sens. | in-sample spec. | cross-validated sensitivity "
        "| cross-validated specificity | cross-validated balanced accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for category, entry in classifier["quality"].items():
        validated = entry["cross_validated"] or {"note": "not measured"}
        cells = [
            validated.get("note") or _with_interval(validated[key], validated[f"{key}_interval"])
            for key in ("sensitivity", "specificity", "balanced_accuracy")
        ]
        lines.append(
            f"| {md(category)} | {md(entry['column'])} | {_fmt(entry['in_sample_sensitivity'])} "
            f"| {_fmt(entry['in_sample_specificity'])} | " + " | ".join(cells) + " |"
        )
    return lines


def _balanced_cell(quality: dict) -> str:
    validated = quality.get("cross_validated") or {"note": "not measured"}
    if "balanced_accuracy" not in validated:
        return validated.get("note", "n/a")
    return _with_interval(validated["balanced_accuracy"], validated["balanced_accuracy_interval"])


def plain_text(plot):
    """`plot` drawing every text as given: labels come from users (categories, organisations), and matplotlib parses
    `$...$` as mathtext by default, so a category `$x^$` failed the run at its report."""

    @functools.wraps(plot)
    def drawn(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context({"text.parse_math": False}):  # read when each text is made: titles, ticks, legends
            return plot(*args, **kwargs)

    return drawn


def new_figure(**kwargs):
    """A matplotlib Figure outside pyplot: it chooses no process-wide backend and leaves no window or figure open."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def png_bytes(figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def plot_top_keywords(
    discriminative: pd.DataFrame, category_keywords: pd.DataFrame, cvs: dict[str, int], top: int = TOP_IN_PLOT
) -> bytes:
    """PNG of `top_keywords_figure`."""
    return png_bytes(top_keywords_figure(discriminative, category_keywords, cvs, top))


@plain_text
def top_keywords_figure(
    discriminative: pd.DataFrame, category_keywords: pd.DataFrame, cvs: dict[str, int], top: int = TOP_IN_PLOT
):
    """Per category, its top keywords and the share of each category's CVs they were extracted from; at most
    CATEGORIES_IN_PLOT categories, those with the most CVs (`cvs`: the run's CVs by category), and the title says so.

    Scores saturate at 1.0 on small or well-separated data (every top keyword of the demo scores 1.000); the shares
    show what a score hides: how common the keyword is in its category and how rare elsewhere.
    """
    every = sorted(category_keywords["category"].astype(str).unique())
    categories = sorted(sorted(every, key=lambda c: -cvs.get(c, 0))[:CATEGORIES_IN_PLOT]) or ["(none)"]
    shares = (
        category_keywords.assign(category=category_keywords["category"].astype(str))
        .pivot_table(index="keyword", columns="category", values="rate", aggfunc="first")
        .reindex(columns=categories)
        .fillna(0.0)
    )
    columns = min(3, len(categories))
    rows = math.ceil(len(categories) / columns)
    figure = new_figure(figsize=(6.5 * columns, 0.45 * top * rows + 1.4 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.ravel()[len(categories) :]:
        axis.set_visible(False)
    height = 0.8 / len(categories)
    for axis, category in zip(axes.ravel(), categories):
        group = discriminative[(discriminative["category"].astype(str) == category) & (discriminative["rank"] <= top)]
        keywords = group["keyword"].tolist()[::-1]
        for offset, other in enumerate(categories):
            values = shares.reindex(keywords)[other].fillna(0.0) if keywords else []
            axis.barh(
                [i + offset * height for i in range(len(keywords))],
                values,
                height=height,
                label=f"category {other}",
                color=f"C{offset}",
            )
        axis.set_yticks([i + height * (len(categories) - 1) / 2 for i in range(len(keywords))], keywords, fontsize=8)
        axis.set_xlim(0.0, 1.0)
        axis.set_title(f"top keywords of category {category}", fontsize=11)
        axis.set_xlabel("share of the category's CVs the keyword was extracted from")
        if group.empty:
            axis.text(0.5, 0.5, "no discriminative keywords", ha="center", va="center", transform=axis.transAxes)
        axis.legend(fontsize=8, loc="lower right")
    if len(every) > len(categories):  # each category's bars for every other: the plot grows with categories squared
        figure.suptitle(f"the {len(categories)} categories with the most CVs, of {len(every)}", fontsize=13)
    figure.tight_layout()
    return figure


@plain_text
def plot_list_quality(lists: dict) -> bytes:
    """PNG: each list's sensitivity against its specificity, cross-validated with 80 % intervals, and in-sample."""
    figure = new_figure(figsize=(6.5, 5.0))
    axis = figure.subplots()
    for index, (name, entry) in enumerate(
        (list_column(c, n), e) for c, by_name in lists.items() for n, e in by_name.items()
    ):
        color = f"C{index}"
        axis.plot(
            entry["in_sample_specificity"],
            entry["in_sample_sensitivity"],
            "o",
            mfc="none",
            color=color,
            label=f"{name} in-sample",
        )
        validated = entry.get("cross_validated") or {}
        if "sensitivity" not in validated:
            continue
        x, y = validated["specificity"], validated["sensitivity"]
        (x_low, x_high), (y_low, y_high) = validated["specificity_interval"], validated["sensitivity_interval"]
        axis.errorbar(
            x,
            y,
            xerr=[[x - x_low], [x_high - x]],
            yerr=[[y - y_low], [y_high - y]],
            fmt="s",
            color=color,
            capsize=3,
            label=f"{name} cross-validated (80 % intervals)",
        )
        axis.plot([entry["in_sample_specificity"], x], [entry["in_sample_sensitivity"], y], ":", color=color)
    axis.set_xlim(-0.02, 1.02)
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("specificity")
    axis.set_ylabel("sensitivity")
    axis.set_title("Keyword lists: in-sample (hollow) and cross-validated")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    return png_bytes(figure)
