"""The `headcount` flow: how many ML experts each organisation employs, with 80 % intervals."""

from __future__ import annotations

from prefect import flow
from pydantic import SecretStr

from ml_headcount.config import Settings
from ml_headcount.ingest import InputError
from ml_headcount.runs import claim_estimate
from ml_headcount.storage import ArtifactStore
from tasks.headcount import (
    estimate_artifacts, headcount_estimate, keyword_annotations, population_table, validation_table,
)


@flow(name="headcount", log_prints=True)
def headcount(
    validation_url: str | SecretStr,
    population_url: str | SecretStr | None = None,
    counts_url: str | SecretStr | None = None,
    keywords_run: str | None = None,
    settings: Settings = Settings(),
    run_id: str | None = None,
) -> str:
    """Estimate every organisation's ML experts from annotated profiles (or match counts); returns the estimate's location.

    URLs with credentials in them may be given as SecretStr (`ingest.protect`): Prefect then records them masked,
    and every message, artifact and report names them without their credentials."""
    if (population_url is None) == (counts_url is None):
        raise InputError("give exactly one of a population table (one row per profile) and a counts table")
    store = ArtifactStore(settings.storage)
    store.verify()
    layout = claim_estimate(store, run_id)

    validation = validation_table(validation_url, settings)
    population = population_table(population_url or counts_url, "population" if population_url else "counts", settings)
    keyword_values = keyword_annotations(keywords_run, validation, population, settings) if keywords_run else None
    result = headcount_estimate(validation, population, settings, keyword_values)
    return estimate_artifacts(result, layout, settings)
