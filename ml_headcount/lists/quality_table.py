"""One row per keyword list, as text: what a list is as a query and how good it is (the reports' and the UI's table).

Rows follow keyword_lists.json, which puts the category the lists are for first (its `role` says which); each
figure says what it is: in-sample (optimistic), cross-validated (mean over fold seeds, on CVs the learner's design
was chosen on), and the interval a new sample of rated CVs will see.
"""

from __future__ import annotations

from ml_headcount.lists.figure_text import balanced_cell, category_label, cross_validated_cells, fmt
from ml_headcount.lists.queries import QueryError, lint

NEW_SAMPLE_COLUMN = "new sample: balanced accuracy (prediction interval)"


def list_quality_table(lists: dict, names: dict[str, str] | None = None) -> list[dict]:
    """One row per category (named by `names`, report.category_names) and list of keyword_lists.json."""
    rows = []
    for category, by_name in lists.items():
        for name, entry in by_name.items():
            rows.append(
                {
                    "category": category_label(category, names or {}),
                    "role": entry.get("role") or "",
                    "list": name,
                    "method": entry.get("method", "study"),
                    **_query_shape(entry),
                    "in-sample sensitivity": fmt(entry["in_sample_sensitivity"]),
                    "in-sample specificity": fmt(entry["in_sample_specificity"]),
                    **cross_validated_cells(entry.get("cross_validated")),
                    "fold seeds": (entry.get("cross_validated") or {}).get("fold_seeds", 1),
                    NEW_SAMPLE_COLUMN: _new_sample_cell(entry.get("new_sample")),
                    "organisation names": fmt(entry.get("organisation_name_share")),
                    "phrase search: cross-validated balanced accuracy": balanced_cell(
                        entry.get("cross_validated_phrase")
                    ),
                    "keywords (first 12)": ", ".join(entry["keywords"][:12]),
                }
            )
    return rows


def _query_shape(entry: dict) -> dict:
    """The list as its query has it: phrases after the linter, and the exclusions (AND NOT)."""
    try:
        query = lint(entry["keywords"], entry.get("exclusions", []))[0]
    except QueryError:
        return {"phrases": 0, "exclusions (AND NOT)": "none"}
    return {"phrases": len(query.any_of), "exclusions (AND NOT)": ", ".join(query.none_of) or "none"}


def _new_sample_cell(new_sample: dict | None) -> str:
    if not new_sample:
        return "not measured"
    low, high = new_sample["balanced_accuracy"]
    return f"[{low:.3f}, {high:.3f}] on {new_sample['cvs']} CVs ({new_sample['level']:.0%})"
