"""Finding a table's columns by name: configured exactly, or by the first alias present (case and spaces aside)."""

from __future__ import annotations

from ml_headcount.errors import InputError


def column_by_alias(columns: list[str], aliases: list[str]) -> str | None:
    """The column named by the first of `aliases` present, compared case-insensitively and without outer spaces."""
    by_lower = {str(c).strip().lower(): c for c in columns}
    return next((by_lower[a.lower()] for a in aliases if a.lower() in by_lower), None)


def find_column(columns: list[str], override: str | None, aliases: list[str], what: str, url: str) -> str:
    """The `what` column of the table at `url`: `override` when configured, else the first alias present; an
    InputError naming the file and the columns found when there is none."""
    if override is not None:
        if override not in columns:
            raise InputError(f"{url}: configured {what} column {override!r} not found; columns found: {columns}")
        return override
    found = column_by_alias(columns, aliases)
    if found is None:
        raise InputError(
            f"{url}: no {what} column found; columns found: {columns}; "
            f"expected one of {aliases} or set ingest.{what}_column"
        )
    return found
