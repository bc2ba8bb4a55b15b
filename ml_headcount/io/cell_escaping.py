"""Text cells a spreadsheet would run as formulas (OWASP "CSV injection"), escaped in CSV artifacts and restored on
reading, so every value round-trips exactly."""

from __future__ import annotations

import pandas as pd

# spreadsheets evaluate a cell that starts with one of these
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_columns(table: pd.DataFrame) -> list[str]:
    return [c for c, t in table.dtypes.items() if pd.api.types.is_object_dtype(t) or pd.api.types.is_string_dtype(t)]


def escaped(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell and column name `escape_cell`ed: what CSV artifacts hold (a column can be
    named by a user: `apply`'s `<category>/<list>`)."""
    escaped = table.rename(columns=escape_cell)
    for column in _text_columns(escaped):
        escaped[column] = escaped[column].map(escape_cell)
    return escaped


def escape_cell(value):
    """Text a spreadsheet would evaluate (starting with = + - @ tab CR) gets a leading apostrophe, as does text that
    already starts with one, so that `unescape_cell` (drop one leading apostrophe) restores every value exactly.
    Spreadsheets hide a leading apostrophe and show the text as typed."""
    if isinstance(value, str) and value.startswith((*_FORMULA_START, "'")):
        return "'" + value
    return value


def unescape_cell(value):
    """The value `escape_cell` was given: one leading apostrophe dropped."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def unescaped(table: pd.DataFrame) -> pd.DataFrame:
    """A table read from an `escaped` CSV, every text cell and column name as it was."""
    table = table.rename(columns=unescape_cell)
    for column in _text_columns(table):
        table[column] = table[column].map(unescape_cell)
    return table
