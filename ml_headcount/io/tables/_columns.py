"""Finding a table's columns by name: configured exactly, or by the first alias present (case and spaces aside)."""

from __future__ import annotations

import difflib

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError

# how a user names a CV table's columns when no alias finds them: the command's option, and the setting it sets
TEXT_COLUMN_OPTION = "--text-column (ingest.text_column)"
LABEL_COLUMN_OPTION = "--label-column (ingest.label_column)"


def column_by_alias(columns: list[str], aliases: list[str]) -> str | None:
    """The column named by the first of `aliases` present, compared case-insensitively and without outer spaces."""
    by_lower = {str(c).strip().lower(): c for c in columns}
    return next((by_lower[a.lower()] for a in aliases if a.lower() in by_lower), None)


def find_column(columns: list[str], override: str | None, aliases: list[str], what: str, url: str, fix: str) -> str:
    """The `what` column of the table at `url`: `override` when configured, else the first alias present; an
    InputError naming the file, the columns found and `fix` (the option or setting that names the column) when there
    is none."""
    if override is not None:
        if override not in columns:
            close = difflib.get_close_matches(override, [str(c) for c in columns], n=1)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{url}: configured {what} column {override!r} not found{maybe}; columns found: {columns}; "
                f"it is set by {fix}"
            )
        return override
    found = column_by_alias(columns, aliases)
    if found is None:
        raise InputError(
            f"{url}: no {what} column found; columns found: {columns}; expected one of {aliases}, or name it with {fix}"
        )
    return found


def cv_columns(columns: list[str], settings: IngestSettings, name: str) -> tuple[str, str]:
    """The text and the label column of a CV table with these columns; an InputError naming the option that fixes it."""
    return (
        find_column(columns, settings.text_column, settings.text_aliases, "text", name, TEXT_COLUMN_OPTION),
        find_column(columns, settings.label_column, settings.label_aliases, "label", name, LABEL_COLUMN_OPTION),
    )
