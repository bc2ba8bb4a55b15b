"""One row per keyword list, as text: what a list is as a query and how good it is (the report's and the UI's table).

Rows follow keyword_lists.json, which puts the category the lists are for first; each figure says what it is:
in-sample (optimistic), cross-validated (mean over fold seeds, on CVs the learner's design was chosen on), and the
interval a new sample of rated CVs will see.
"""

from __future__ import annotations

from ml_headcount.lists.queries import QueryError, lint

NEW_SAMPLE_COLUMN = "new sample: balanced accuracy (prediction interval)"


def list_quality_table(lists: dict) -> list[dict]:
    """One row per category and list of keyword_lists.json."""
    rows = []
    for category, by_name in lists.items():
        for name, entry in by_name.items():
            validated = entry.get("cross_validated") or {"note": "not measured"}
            too_small = validated.get("note")
            rows.append(
                {
                    "category": category if not entry.get("role") else f"{category} ({entry['role']})",
                    "list": name,
                    "method": entry.get("method", "study"),
                    **_query_shape(entry),
                    "in-sample sensitivity": fmt(entry["in_sample_sensitivity"]),
                    "in-sample specificity": fmt(entry["in_sample_specificity"]),
                    **{
                        f"cross-validated {label}": too_small
                        or with_interval(validated[key], validated[f"{key}_interval"])
                        for label, key in [
                            ("sensitivity", "sensitivity"),
                            ("specificity", "specificity"),
                            ("balanced accuracy", "balanced_accuracy"),
                        ]
                    },
                    "fold seeds": validated.get("fold_seeds", 1),
                    NEW_SAMPLE_COLUMN: _new_sample_cell(entry.get("new_sample")),
                    "organisation names": fmt(entry.get("organisation_name_share")),
                    "phrase search: cross-validated balanced accuracy": _balanced_cell(
                        entry.get("cross_validated_phrase")
                    ),
                    "first keywords": ", ".join(entry["keywords"][:12]),
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


def _balanced_cell(validated: dict | None) -> str:
    validated = validated or {"note": "not measured"}
    if "balanced_accuracy" not in validated:
        return validated.get("note", "n/a")
    return with_interval(validated["balanced_accuracy"], validated["balanced_accuracy_interval"])


def fmt(value) -> str:
    """A rate as text (n/a for none)."""
    return "n/a" if value is None else f"{value:.3f}"


def with_interval(value: float, interval: list[float]) -> str:
    """A rate and its interval as text."""
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
