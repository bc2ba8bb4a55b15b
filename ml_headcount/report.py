"""The human-readable side of a run: a Markdown report and a bar chart."""

from __future__ import annotations

import io
import math

import pandas as pd

TOP_IN_REPORT = 15
TOP_IN_PLOT = 10


def top_keywords_table(discriminative: pd.DataFrame, top: int = TOP_IN_REPORT) -> pd.DataFrame:
    return discriminative[discriminative["rank"] <= top][
        ["category", "rank", "keyword", "score", "specificity", "frequency", "total_frequency"]
    ]


def render_report(manifest: dict, discriminative: pd.DataFrame, lists: dict, clusters: dict) -> str:
    ingest = manifest["ingest"]
    lines = [
        f"# ml-headcount run `{manifest['run_id']}`",
        "",
        f"Input: `{manifest['input']['url']}` (sha256 `{manifest['input']['sha256'][:16]}…`)  ",
        f"Model: `{manifest['parameters']['extraction']['model']}` on {manifest['extraction']['device']}, "
        f"backend `{manifest['parameters']['backend']}`",
        "",
        "## Counts",
        "",
        "| input rows | CVs used | duplicates | rejected | encoding repaired | keywords extracted | CVs extracted now | CVs from cache |",
        "|---|---|---|---|---|---|---|---|",
        f"| {ingest['input_rows']} | {ingest['cvs']} | {ingest['duplicates']} | {ingest['rejected']} "
        f"| {ingest['repaired_encoding']} | {manifest['extraction']['keywords']} "
        f"| {manifest['extraction']['cvs_extracted']} | {manifest['extraction']['cvs_from_cache']} |",
        "",
        "CVs per category: " + ", ".join(f"`{c}`: {n}" for c, n in ingest["categories"].items()),
        "",
    ]
    if ingest["rejected_by_reason"]:
        lines += ["Rejected rows (see `rejected.csv`): " + ", ".join(f"{r}: {n}" for r, n in ingest["rejected_by_reason"].items()), ""]
    if manifest.get("cache_rejected"):
        lines += [f"**{len(manifest['cache_rejected'])} cache entries in the storage failed their checks** and were "
                  "ignored, their results computed again (listed in `manifest.json`, `cache_rejected`).", ""]

    lines += ["## Top discriminative keywords", ""]
    for category, group in top_keywords_table(discriminative).groupby("category", sort=True):
        lines += [f"### Category `{category}`", "", "| # | keyword | score | specificity | CVs in category | CVs in all |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {r.rank} | {r.keyword} | {r.score:.3f} | {r.specificity:.3f} | {r.frequency} | {r.total_frequency} |"
            for r in group.itertuples()
        ]
        lines.append("")

    lines += ["## Keyword lists", "", "A CV matches a list when its cleaned text contains any of its keywords. "
              "In-sample figures are measured on the CVs the lists were learned from (optimistic); cross-validated "
              "ones on CVs held out of the learning (stratified folds, pooled), with 80 % intervals "
              "(Wilson for sensitivity and specificity, bootstrap for balanced accuracy). "
              "`heldout_matches.parquet` holds every CV's held-out matches.", ""]
    lines += ["| category | list | method | keywords | in-sample sens. | in-sample spec. | cross-validated sensitivity "
              "| cross-validated specificity | cross-validated balanced accuracy | organisation names | keywords (first 12) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in list_quality_table(lists):
        lines.append(
            f"| `{row['category']}` | {row['list']} | {row['method']} | {row['keywords']} | {row['in-sample sensitivity']} "
            f"| {row['in-sample specificity']} | {row['cross-validated sensitivity']} | {row['cross-validated specificity']} "
            f"| {row['cross-validated balanced accuracy']} | {row['organisation names']} | {row['first keywords']} |"
        )
    lines += ["", "## Keyword clusters", ""]
    for category, result in clusters.items():
        lines += [f"### Category `{category}` ({result['method']})", ""]
        for cluster in result["clusters"]:
            lines.append(
                f"- **{cluster['representative']}** ({cluster['cluster']}, {cluster['size']} keywords, "
                f"mean score {cluster['mean_score']:.3f}): {', '.join(cluster['keywords'][:10])}"
            )
        lines.append("")
    lines += ["## Timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in manifest["timings_s"].items()]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def list_quality_table(lists: dict) -> list[dict]:
    """One row per category and list: in-sample and cross-validated quality as text (the report's and the UI's table)."""
    rows = []
    for category, by_name in lists.items():
        for name, entry in by_name.items():
            validated = entry.get("cross_validated") or {"note": "not measured"}
            too_small = validated.get("note")
            rows.append({
                "category": category,
                "list": name,
                "method": entry.get("method", "study"),
                "keywords": len(entry["keywords"]),
                "in-sample sensitivity": _fmt(entry["in_sample_sensitivity"]),
                "in-sample specificity": _fmt(entry["in_sample_specificity"]),
                **{f"cross-validated {label}": too_small or _with_interval(validated[key], validated[f"{key}_interval"])
                   for label, key in [("sensitivity", "sensitivity"), ("specificity", "specificity"),
                                      ("balanced accuracy", "balanced_accuracy")]},
                "organisation names": _fmt(entry.get("organisation_name_share")),
                "first keywords": ", ".join(entry["keywords"][:12]),
            })
    return rows


def _with_interval(value: float, interval: list[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def plot_top_keywords(discriminative: pd.DataFrame, top: int = TOP_IN_PLOT) -> bytes:
    """PNG: one horizontal bar chart of the top keywords per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = sorted(discriminative["category"].unique()) or ["(none)"]
    columns = min(3, len(categories))
    rows = math.ceil(len(categories) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 0.35 * top * rows + 1.2 * rows), squeeze=False)
    for axis in axes.ravel()[len(categories):]:
        axis.set_visible(False)
    for axis, category in zip(axes.ravel(), categories):
        group = discriminative[(discriminative["category"] == category) & (discriminative["rank"] <= top)]
        axis.barh(group["keyword"][::-1], group["score"][::-1], color="#3b6ea5")
        axis.set_xlim(0.5, 1.0)
        axis.set_title(f"category {category}", fontsize=11)
        axis.set_xlabel("discriminative score")
        axis.tick_params(axis="y", labelsize=8)
        if group.empty:
            axis.text(0.5, 0.5, "no discriminative keywords", ha="center", va="center", transform=axis.transAxes)
    figure.suptitle("Top discriminative keywords per category")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
