"""How runs and estimates are told to people: the categories' names and which one leads."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReportSettings(BaseModel, extra="forbid"):
    """What the console summary and the reports call a run's categories, and which one they lead with."""

    category_names: dict[str, str] = Field(
        {"1": "ML expert", "0": "not ML expert"},
        description="A name per category value (after ingest's normalisation); a category without one is shown as "
        "its value.",
    )
    positive: str | None = Field(
        None,
        description="The category the summary and reports lead with (the one a user searches for); None = `1` "
        "where a run has it, else its category with the fewest CVs.",
    )
