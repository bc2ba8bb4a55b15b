"""A figure as every table and summary writes it: a rate, a rate with its interval, a category by its name.

The list table (lists.quality_table), the reports (runs.run_document) and the console summaries (runs.summary)
write their figures with these, so a figure reads the same wherever it is shown.
"""

from __future__ import annotations


def fmt(value) -> str:
    """A figure to 3 decimals; `n/a` where there is none."""
    return "n/a" if value is None else f"{value:.3f}"


def interval_text(value: float, interval: list[float]) -> str:
    """`0.812 [0.750, 0.861]`; an interval of no width says why rather than looking like a bug."""
    if interval[0] == interval[1] == value:
        return f"{value:.3f} (no held-out error: the bootstrap has no spread)"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def balanced_cell(validated: dict | None) -> str:
    """A matcher's cross-validated balanced accuracy with its interval, or why there is none."""
    validated = validated or {"note": "not measured"}
    if "balanced_accuracy" not in validated:
        return validated.get("note", "n/a")
    return interval_text(validated["balanced_accuracy"], validated["balanced_accuracy_interval"])


def cross_validated_cells(validated: dict | None) -> dict[str, str]:
    """Cross-validated sensitivity, specificity and balanced accuracy, each with its interval, or why there are
    none (too few CVs in a class), as a table's cells by column name."""
    validated = validated or {"note": "not measured"}
    return {
        f"cross-validated {key.replace('_', ' ')}": validated.get("note")
        or interval_text(validated[key], validated[f"{key}_interval"])
        for key in ("sensitivity", "specificity", "balanced_accuracy")
    }


def category_label(category: str, names: dict[str, str]) -> str:
    """`ML expert (1)`: the category's name from `names` (report.category_names) and its value; the value alone
    without one."""
    name = names.get(str(category))
    return f"{name} ({category})" if name else str(category)
