"""The three commands from Python: learn the demo CVs' keyword lists, apply them to a table, estimate headcounts.

Each step calls the Prefect flow that `ml-headcount run`, `apply` and `estimate` call, with the same settings object;
a flow run outside a Prefect server starts a temporary one (PREFECT_API_URL names a running server instead).

    uv run python examples/from_python.py [STORAGE_URL]   # default ./artifacts; prints the three locations
"""

from __future__ import annotations

import sys
from pathlib import Path

from flows.cv_apply import cv_apply
from flows.cv_keywords import cv_keywords
from flows.estimate import estimate_headcounts
from ml_headcount.config import load_settings

HERE = Path(__file__).resolve().parent


def main(storage_url: str = "./artifacts") -> dict[str, str]:
    """The demo run's, its matches' and the demo estimate's locations."""
    settings = load_settings(storage={"url": storage_url}, extraction={"mode": "fast"})
    # run: keyword lists that separate the demo CVs' categories
    run = cv_keywords(str(HERE / "demo_cvs.csv"), settings=settings)
    # apply: the run's lists matched against the first 20 rows of a table (ingest.limit is `apply --limit`)
    first_rows = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"limit": 20})})
    matches = cv_apply(str(HERE / "demo_cvs.csv"), run_reference=run, settings=first_rows)
    # estimate: ML experts per organisation, from a counts table and the validation table's annotators
    estimate = estimate_headcounts(
        str(HERE / "headcount_validation.csv"), counts_url=str(HERE / "headcount_counts.csv"), settings=settings
    )
    return {"run": run, "matches": matches["output"], "estimate": estimate}


if __name__ == "__main__":
    for what, location in main(*sys.argv[1:2]).items():
        print(f"{what}: {location}")
