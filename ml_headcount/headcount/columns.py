"""Which column of an estimate's tables is which, found from their headers alone.

The estimate finds its columns with these functions, and `estimate` checks a table's header with them before any
flow starts: a wrong column then costs a second, not the start of a Prefect server, and the message names the column
and the option (or setting) that fixes it. Only the header is needed, so nothing heavy is imported here.
"""

from __future__ import annotations

import difflib

from ml_headcount.config import HeadcountSettings, IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._columns import column_by_alias, find_column

ORG_COLUMN_OPTION = "--org-column (headcount.org_column)"
EMPLOYEES_COLUMN_OPTION = "--employees-column (headcount.employees_column)"


def validation_label_column(columns: list[str], url: str, ingest: IngestSettings, label_column: str | None) -> str:
    """The validation table's label column: `label_column`, else ingest.label_column, else detected."""
    return find_column(
        columns,
        label_column or ingest.label_column,
        ingest.label_aliases,
        "label",
        url,
        "--validation-label-column (headcount.validation_label_column)",
    )


def organisation_column(columns: list[str], url: str, settings: HeadcountSettings) -> str:
    """The organisation column of a population, pattern or counts table with these columns."""
    return find_column(columns, settings.org_column, settings.org_aliases, "organisation", url, ORG_COLUMN_OPTION)


def employees_column(columns: list[str], url: str, settings: HeadcountSettings, required: bool) -> str | None:
    """The employees column (None when there is none and it is not `required`: profiles then count employees)."""
    if not required and settings.employees_column is None:
        return column_by_alias(columns, settings.employees_aliases)
    return find_column(
        columns, settings.employees_column, settings.employees_aliases, "employees", url, EMPLOYEES_COLUMN_OPTION
    )


def count_column_of_patterns(columns: list[str], url: str, settings: HeadcountSettings) -> str:
    """A pattern table's column of the profiles each row stands for."""
    return find_column(columns, None, settings.count_aliases, "count", url, "headcount.count_aliases (settings file)")


def profile_text_column(
    columns: list[str], url: str, ingest: IngestSettings, text_column: str | None, which: str
) -> str:
    """The text column of the `which` table ("validation" or "population"): `text_column`, else ingest.text_column,
    else detected."""
    return find_column(
        columns,
        text_column or ingest.text_column,
        ingest.text_aliases,
        "text",
        url,
        f"--{which}-text-column (headcount.{which}_text_column)",
    )


def reserved_columns(columns: list[str], ingest: IngestSettings, settings: HeadcountSettings) -> set[str]:
    """The columns of a table with these columns that are no annotator: text, label, organisation, ... ."""
    reserved = {
        column_by_alias(columns, aliases)
        for aliases in (
            ingest.text_aliases,
            ingest.label_aliases,
            settings.org_aliases,
            settings.employees_aliases,
            settings.profiles_aliases,
            settings.count_aliases,
            settings.type_aliases,
            ["cv_id"],
        )
    }
    configured = (
        ingest.text_column,
        ingest.label_column,
        settings.org_column,
        settings.employees_column,
        settings.validation_label_column,
        settings.validation_text_column,
        settings.population_text_column,
    )
    reserved |= {c for c in configured if c}
    return {c for c in reserved if c}


def check_configured_annotators(names: list[str], tables) -> None:
    """An InputError naming the table and the annotator (--annotators) when one is no column of one of the `tables`
    ((columns, url) each)."""
    for name in names:
        for columns, url in tables:
            if name not in columns:
                close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
                maybe = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(
                    f"{url}: annotator column {name!r} not found{maybe}; columns found: {columns}; set by --annotators"
                )


def shared_annotators(
    validation: tuple[list[str], str],
    population: tuple[list[str], str],
    ingest: IngestSettings,
    settings: HeadcountSettings,
    required: bool = True,
) -> list[str]:
    """The annotator columns of two tables' headers ((columns, url) each): the columns in both that are no text,
    label, organisation, ... column. When `required` and there is none, an InputError that names the population's
    column the validation table lacks (or says that the population has none)."""
    (validation_columns, validation_url), (population_columns, population_url) = validation, population
    reserved = reserved_columns(validation_columns, ingest, settings) | reserved_columns(
        population_columns, ingest, settings
    )
    shared = [c for c in validation_columns if c in set(population_columns) and c not in reserved]
    if shared or not required:
        return shared
    rated = [c for c in validation_columns if c not in reserved]
    unmatched = [c for c in population_columns if c not in reserved]
    if not unmatched:
        raise InputError(
            f"{population_url}: no annotator column (its columns {population_columns} are organisation, employees, "
            "text or count columns); add the annotators' columns, or give --keywords"
        )
    shown = ", ".join(repr(c) for c in rated[:3]) + (f" and {len(rated) - 3} more" if len(rated) > 3 else "")
    close = difflib.get_close_matches(str(unmatched[0]), [str(c) for c in rated], n=1, cutoff=0.5)
    maybe = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(
        f"{population_url}: annotator column {unmatched[0]!r}{maybe} is not a column of the validation table "
        f"{validation_url}, so its error rates cannot be learned; "
        + (f"the validation table's annotator columns are {shown}: " if rated else "it has no annotator column: ")
        + "name each annotator's column the same in both tables, or give --keywords"
    )


def check_estimate_headers(
    validation: tuple[list[str], str],
    population: tuple[list[str], str],
    mode: str,
    with_keywords: bool,
    settings: HeadcountSettings,
    ingest: IngestSettings,
) -> None:
    """An InputError for the first column the estimate would not find: the validation's label, the population's
    organisation, employees (counts) or count (patterns) column, the texts for `with_keywords`, the annotators."""
    (validation_columns, validation_url), (population_columns, population_url) = validation, population
    validation_label_column(validation_columns, validation_url, ingest, settings.validation_label_column)
    organisation_column(population_columns, population_url, settings)
    employees_column(population_columns, population_url, settings, required=mode == "counts")
    if mode == "patterns":
        count_column_of_patterns(population_columns, population_url, settings)
    if with_keywords:
        profile_text_column(validation_columns, validation_url, ingest, settings.validation_text_column, "validation")
        if mode == "population":
            profile_text_column(
                population_columns, population_url, ingest, settings.population_text_column, "population"
            )
    if with_keywords:  # a keyword list's annotators are known once the run's lists are read
        return
    if settings.annotators:
        check_configured_annotators(list(settings.annotators), (validation, population))
    else:
        shared_annotators(validation, population, ingest, settings)
