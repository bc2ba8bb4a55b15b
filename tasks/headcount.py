"""Tasks of the headcount flow: the checked inputs, keyword annotations, the estimate and its artifacts."""

from __future__ import annotations

from prefect import get_run_logger, task
from pydantic import SecretStr
from prefect.artifacts import create_markdown_artifact

from ml_headcount import estimate_report
from ml_headcount.config import Settings
from ml_headcount.estimates import Estimate, Population, Validation, estimate, read_counts, read_population, read_validation
from ml_headcount.ingest import InputError, read_table, redact_url, reveal
from ml_headcount.keyword_annotators import keyword_values
from ml_headcount.runs import EstimateLayout, RunLayout, complete_estimate
from ml_headcount.storage import ArtifactStore, storage_options
from tasks.policies import TASK_POLICY


@task(name="validation-table", **TASK_POLICY)
def validation_table(url: str | SecretStr, settings: Settings) -> Validation:
    url = reveal(url)
    table, _ = read_table(url, storage_options(url, settings.storage), settings.ingest)
    # the table is named, in messages, the summary and the report, without the URL's credentials
    return read_validation(table, redact_url(url), settings.headcount.positive, settings.ingest)


@task(name="population-table", **TASK_POLICY)
def population_table(url: str | SecretStr, mode: str, settings: Settings) -> Population:
    url = reveal(url)
    table, _ = read_table(url, storage_options(url, settings.storage), settings.ingest)
    reader = read_population if mode == "population" else read_counts
    return reader(table, redact_url(url), settings.headcount)


@task(name="keyword-annotations", **TASK_POLICY)
def keyword_annotations(run_id: str, validation: Validation, population: Population, settings: Settings) -> tuple[dict, dict]:
    """A finished keyword run's lists (runs/<run_id>/ in the same storage) as annotators of both tables."""
    if population.mode == "counts":
        raise InputError(f"{population.url}: --keywords needs one row per profile with its text; a counts table has none")
    return keyword_values(ArtifactStore(settings.storage), RunLayout(run_id), settings.headcount.positive, settings.ingest,
                          validation.table, validation.url, population.table, population.url)


@task(name="headcount-estimate", persist_result=False)  # pure computation: a retry could not change it
def headcount_estimate(validation: Validation, population: Population, settings: Settings,
                       keyword_values: tuple[dict, dict] | None) -> Estimate:
    result = estimate(validation, population, settings.headcount, settings.ingest, keyword_values)
    total = result.summary["total"]
    get_run_logger().info("%d organisations: %.0f ML experts (80 %% interval %d-%d), model annotators %s",
                          result.summary["organisations"], total["mean"], total["q10"], total["q90"], result.chosen)
    return result


@task(name="estimate-artifacts", **TASK_POLICY)
def estimate_artifacts(result: Estimate, layout: EstimateLayout, settings: Settings) -> str:
    """estimates.csv, annotators.csv, report.md, forest.png, then summary.json (written last: marks it complete)."""
    store = ArtifactStore(settings.storage)
    markdown = estimate_report.render_estimate_report(layout.run_id, result.summary, result.estimates, result.annotators)
    store.write_csv(layout.estimates, result.estimates)
    store.write_csv(layout.annotators, result.annotators)
    store.write_text(layout.report, markdown)
    store.write_bytes(layout.forest_plot, estimate_report.plot_forest(result.estimates))
    complete_estimate(store, layout, {"run_id": layout.run_id, **result.summary})
    create_markdown_artifact(key="headcount-report", markdown=markdown, description=f"Headcount estimate {layout.run_id}")
    return store.location(layout.prefix)
