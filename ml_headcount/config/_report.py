"""How runs and estimates are told to people: the categories' names."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReportSettings(BaseModel, extra="forbid"):
    """What the console summary and the reports call a run's categories. Which one they lead with is the category
    the lists are for (`lists.positive`, as keyword_lists.json records it)."""

    category_names: dict[str, str] = Field(
        {"1": "ML expert", "0": "not ML expert"},
        description="A name per category value (after ingest's normalisation); a category without one is shown as "
        "its value.",
    )
