"""What a command says when it ends: a few labelled lines on the console, the same figures in `--json`.

A run's summary leads with the category the lists are for (`lists.positive`: the role `positive` in
keyword_lists.json), named (`report.category_names`): its lists, their cross-validated quality with 80 % intervals,
its broad list as a search query, and the counts of CVs and keywords. `apply` says the rows and matches per list,
`estimate` the total with its interval and its flags.
"""

from __future__ import annotations

from ml_headcount.lists.figure_text import category_label, interval_text
from ml_headcount.lists.queries import positive_of

QUERY_CHARS = 160  # the console shows the query's start; queries.json and the reports hold it whole


def ordered_categories(categories: dict[str, int], lists: dict) -> list[str]:
    """The run's categories, the one its lists are for first (role `positive` in keyword_lists.json); in a run without
    roles, `1`, else the one with fewest CVs."""
    positive = positive_of(lists)
    if positive not in categories:
        positive = "1" if "1" in categories else min(categories, key=lambda c: (categories[c], c), default=None)
    return sorted(categories, key=lambda c: (c != positive, c))


def run_summary(manifest: dict, lists: dict, queries: dict | None) -> dict:
    """The run's summary: its CVs and keywords, and per category (positive first) its lists' size and
    cross-validated balanced accuracy, and its broad list as a boolean query."""
    names = manifest["parameters"].get("report", {}).get("category_names", {})
    categories = manifest["ingest"]["categories"]
    summary = {
        "run_id": manifest["run_id"],
        "cvs": manifest["ingest"]["cvs"],
        "rejected_rows": manifest["ingest"]["rejected"],
        "keywords": manifest["extraction"]["keywords"],
        "categories": [],
    }
    for category in ordered_categories(categories, lists):
        by_name = lists.get(category, {})
        query = ((queries or {}).get("queries", {}).get(category, {}).get("broad") or {}).get("dialects", {})
        summary["categories"].append(
            {
                "category": category,
                "label": category_label(category, names),
                "cvs": categories[category],
                "lists": {
                    name: {
                        "keywords": len(entry["keywords"]),
                        "cross_validated_balanced_accuracy": _balanced(entry.get("cross_validated")),
                    }
                    for name, entry in by_name.items()
                },
                "broad_query": query.get("boolean", {}).get("query"),
            }
        )
    return summary


def _balanced(validated: dict | None) -> dict | None:
    if not validated or "balanced_accuracy" not in validated:
        return None
    return {"value": validated["balanced_accuracy"], "interval_80": validated["balanced_accuracy_interval"]}


def run_summary_lines(summary: dict, other_categories: int = 3) -> list[str]:
    """The run's summary as a few console lines: the positive category in full, the next few on a line each."""
    lines = [
        f"Run {summary['run_id']}: {summary['cvs']:,} CVs ({summary['rejected_rows']:,} rows rejected), "
        f"{summary['keywords']:,} keywords extracted."
    ]
    positive, *others = summary["categories"]
    lines.append(f"{positive['label']}, {positive['cvs']:,} CVs. Cross-validated balanced accuracy (80 % interval):")
    for name, quality in positive["lists"].items():
        lines.append(f"  {name} list, {quality['keywords']} keywords: {summary_quality(quality)}")
    if positive["broad_query"]:
        query = positive["broad_query"]
        lines.append(f"  broad query: {query if len(query) <= QUERY_CHARS else query[:QUERY_CHARS] + ' ...'}")
    for entry in others[:other_categories]:
        lists = "; ".join(f"{name} {summary_quality(quality)}" for name, quality in entry["lists"].items())
        lines.append(f"{entry['label']}, {entry['cvs']:,} CVs: {lists or 'no lists'}")
    if len(others) > other_categories:
        lines.append(f"... and {len(others) - other_categories} more categories: see report.html.")
    return lines


def summary_quality(quality: dict) -> str:
    """A summarised list's cross-validated balanced accuracy with its 80 % interval, or `not measured`."""
    validated = quality["cross_validated_balanced_accuracy"]
    return interval_text(validated["value"], validated["interval_80"]) if validated else "not measured"


def apply_summary_lines(summary: dict) -> list[str]:
    """Rows matched per list of an `apply`."""
    rows = summary["rows"]
    lines = [f"{rows:,} rows matched against the lists of run {summary.get('run_id', '')}".rstrip() + ":"]
    for name, matched in summary["matched"].items():
        share = f" ({matched / rows:.1%})" if rows else ""
        size = summary.get("list_sizes", {}).get(name)
        lines.append(f"  {name}{f' ({size} keywords)' if size is not None else ''}: {matched:,} rows{share}")
    return lines


def estimate_summary_lines(summary: dict) -> list[str]:
    """The estimate's total with its 80 % interval, its inputs' sizes, its repairs and flags."""
    total = summary["total"]
    flags = ", ".join(f"{n} {reason}" for reason, n in summary["flags"].items() if n) or "none"
    repairs = sum(summary["repairs"].values())
    return [
        f"{total['mean']:.0f} ML experts (80 % interval {total['q10']}-{total['q90']}) in "
        f"{summary['organisations']:,} organisations, from {summary['profiles']:,} profiles of "
        f"{summary['employees']:,} employees.",
        f"Model annotators: {', '.join(summary['model_annotators'])}. Counts repaired: {repairs}. "
        f"Organisations flagged: {flags}.",
    ]
