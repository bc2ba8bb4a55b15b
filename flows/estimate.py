"""The `estimate` flow: how many ML experts each organisation employs, with 80 % intervals."""

from __future__ import annotations

from pathlib import PurePosixPath

from prefect import flow
from prefect.runtime import flow_run
from pydantic import SecretStr

from ml_headcount.config import Settings
from ml_headcount.errors import InputError
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.io.urls import redact_url
from ml_headcount.runs.layout import claim_estimate
from tasks.estimate import (
    estimate_artifacts,
    headcount_estimate,
    keyword_annotations,
    population_table,
    validation_table,
)
from tasks.policies import without_user_error_tracebacks

# the estimate is seconds to minutes of computation; an hour means something is stuck
TIMEOUT_S = 3600


def _flow_run_name() -> str:
    parameters = flow_run.parameters
    names = [
        PurePosixPath(redact_url(str(url)).rstrip("/")).name
        for url in (
            parameters["validation_url"],
            parameters.get("population_url") or parameters.get("patterns_url") or parameters.get("counts_url"),
        )
        if url
    ]
    keywords = f" + lists of {parameters['keywords_run']}" if parameters.get("keywords_run") else ""
    return f"headcount of {' vs '.join(names[1:] or ['?'])} · validated on {names[0]}{keywords}"


@flow(name="estimate", flow_run_name=_flow_run_name, log_prints=True, timeout_seconds=TIMEOUT_S)
def estimate_headcounts(
    validation_url: str | SecretStr,
    population_url: str | SecretStr | None = None,
    counts_url: str | SecretStr | None = None,
    patterns_url: str | SecretStr | None = None,
    keywords_run: str | None = None,
    settings: Settings = Settings(),
    run_id: str | None = None,
) -> str:
    """Estimate every organisation's ML experts from annotated profiles, pattern counts or match counts; returns the
    estimate's location.

    URLs with credentials in them may be given as SecretStr (`ingest.protect`): Prefect then records them masked,
    and every message, artifact and report names them without their credentials."""
    without_user_error_tracebacks()
    sources = {"population": population_url, "patterns": patterns_url, "counts": counts_url}
    given = {mode: url for mode, url in sources.items() if url is not None}
    if len(given) != 1:
        raise InputError(
            "give exactly one of a population table (one row per profile), a pattern table and a counts table"
        )
    ((mode, url),) = given.items()
    store = ArtifactStore(settings.storage)
    store.verify()
    layout = claim_estimate(store, run_id)

    validation = validation_table(validation_url, settings)
    population = population_table(url, mode, settings)
    keyword_values = keyword_annotations(keywords_run, validation, population, settings) if keywords_run else None
    result = headcount_estimate(validation, population, settings, keyword_values)
    return estimate_artifacts(store, result, layout)
