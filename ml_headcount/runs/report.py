"""The figures and plots of a run's report (its content: runs.run_document): top keywords, list quality."""

from __future__ import annotations

import functools
import io
import math

import pandas as pd

from ml_headcount.scoring.keyword_list import list_column

TOP_IN_REPORT = 15
TOP_IN_PLOT = 10
CATEGORIES_IN_PLOT = 9  # a 3 x 3 grid; 150 categories took 132 s to plot, into a 15 MB PNG


def top_keywords_table(discriminative: pd.DataFrame, top: int = TOP_IN_REPORT) -> pd.DataFrame:
    """The `top` best-ranked discriminative keywords of each category, with their scores and frequencies."""
    return discriminative[discriminative["rank"] <= top][
        ["category", "rank", "keyword", "score", "specificity", "frequency", "total_frequency"]
    ]


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
