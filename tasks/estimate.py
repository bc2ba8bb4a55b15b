"""Tasks of the estimate flow: the checked inputs, keyword annotations, the estimate and its artifacts."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import SecretStr

from ml_headcount.config import Settings
from ml_headcount.errors import InputError
from ml_headcount.headcount import report as estimate_report
from ml_headcount.headcount.estimate import (
    Estimate,
    Population,
    Validation,
    estimate,
    read_counts,
    read_patterns,
    read_population,
    read_validation,
)
from ml_headcount.headcount.keyword_annotators import keyword_values, out_of_fold_share
from ml_headcount.headcount.new_sample_rates import RunRatePriors, run_rate_priors
from ml_headcount.io.storage import ArtifactStore, storage_options
from ml_headcount.io.tables import read_table
from ml_headcount.io.urls import redact_url, reveal
from ml_headcount.lists.text_classifier import NAME as CLASSIFIER
from ml_headcount.runs.document import html_page
from ml_headcount.runs.document import markdown as document_markdown
from ml_headcount.runs.finished import run_store
from ml_headcount.runs.layout import EstimateLayout, RunLayout, complete_estimate
from tasks.policies import TASK_POLICY


@task(name="validation-table", **TASK_POLICY)
def validation_table(url: str | SecretStr, settings: Settings) -> Validation:
    """The labelled validation rows of the table at `url`."""
    url = reveal(url)
    table, _ = read_table(url, storage_options(url, settings.storage), settings.ingest)
    # the table is named, in messages, the summary and the report, without the URL's credentials
    return read_validation(table, redact_url(url), settings.headcount, settings.ingest)


@task(name="population-table", **TASK_POLICY)
def population_table(url: str | SecretStr, mode: str, settings: Settings) -> Population:
    """The population to estimate, read from the table at `url` as profiles, patterns or counts (`mode`)."""
    url = reveal(url)
    table, _ = read_table(url, storage_options(url, settings.storage), settings.ingest)
    reader = {"population": read_population, "patterns": read_patterns, "counts": read_counts}[mode]
    return reader(table, redact_url(url), settings.headcount)


@task(name="keyword-annotations", **TASK_POLICY)
def keyword_annotations(
    run: str, validation: Validation, population: Population, settings: Settings
) -> tuple[dict, dict, RunRatePriors]:
    """A finished keyword run's lists as annotators of both tables, and their rates as a new sample sees them; `run`
    is a run id or `latest` in the same storage, or a run's location.

    A counts table counted the lists with a search tool: its columns name them (`1/broad`, or `1/broad@phrase`), and
    the validation CVs are matched by phrase search, the instrument that made the counts."""
    if population.mode == "patterns":
        raise InputError(
            f"{population.url}: --keywords needs one row per profile with its text, or a counts table whose columns "
            "count the run's lists; a pattern table has neither"
        )
    counts = population.mode == "counts"
    store, run_id = run_store(run, settings.storage)
    with_classifier = settings.headcount.text_classifier and not counts  # a search tool cannot run the classifier
    validation_values, population_values = keyword_values(
        store,
        RunLayout(run_id),
        validation.table,
        validation.url,
        None if counts else population.table,  # matched by phrase search, without the classifier (keyword_values)
        population.url,
        settings.headcount,
        settings.lists,
        settings.ingest,
    )
    if with_classifier and not any(name.endswith(f"/{CLASSIFIER}") for name in validation_values):
        get_run_logger().warning(
            "the keyword run %s has no TF-IDF classifier (its text_classifier.json says why): not an annotator", run_id
        )
    share = out_of_fold_share(
        store, RunLayout(run_id), validation.table, validation.url, settings.headcount, settings.ingest
    )
    rate_priors = run_rate_priors(store, RunLayout(run_id), settings.headcount.positive, share)
    if few_experts := rate_priors.few_experts_line():
        get_run_logger().warning(few_experts)
    if counts:
        return _as_counted(validation_values, population), {}, rate_priors
    return validation_values, population_values, rate_priors


def _as_counted(validation_values: dict, population: Population) -> dict:
    """The validation values of the lists the counts table counts, under its column names."""
    columns = set(population.table.columns)
    named = {}
    for name, values in validation_values.items():
        product_name = name.removesuffix("@phrase")
        if name in columns or product_name in columns:
            named[name if name in columns else product_name] = values
    if not named:
        expected = ", ".join(sorted(n.removesuffix("@phrase") for n in validation_values))
        raise InputError(
            f"{population.url}: no column counts one of the keyword run's lists; name each list's count by its "
            f"column ({expected})"
        )
    return named


@task(name="headcount-estimate", persist_result=False)  # pure computation: a retry could not change it
def headcount_estimate(
    validation: Validation,
    population: Population,
    settings: Settings,
    keyword_values: tuple[dict, dict, RunRatePriors] | None,
) -> Estimate:
    """The headcount estimate of every organisation, logged with its total."""
    given, rate_priors = (keyword_values[:2], keyword_values[2]) if keyword_values else (None, None)
    result = estimate(validation, population, settings.headcount, settings.ingest, given, rate_priors)
    total = result.summary["total"]
    logger = get_run_logger()
    logger.info(
        "%d organisations: %.0f ML experts (80 %% interval %d-%d), model annotators %s",
        result.summary["organisations"],
        total["mean"],
        total["q10"],
        total["q90"],
        result.chosen,
    )
    if dropped := result.summary["validation_columns_not_in_population"]:
        logger.info(
            "%d validation column(s) are not in the population table, so not annotators: %s",
            len(dropped),
            ", ".join(dropped),
        )
    if contradiction := result.summary["predictive_checks"]["message"]:
        logger.warning(contradiction)
    return result


@task(name="estimate-artifacts", **TASK_POLICY)
def estimate_artifacts(store: ArtifactStore, result: Estimate, layout: EstimateLayout) -> str:
    """estimates.csv, annotators.csv, repairs.csv, report.md, report.html, forest.png, then summary.json (written
    last: marks it complete)."""
    forest = estimate_report.plot_forest(result.estimates)
    document = estimate_report.estimate_document(
        layout.run_id, result.summary, result.estimates, result.annotators, forest
    )
    markdown = document_markdown(document)
    store.write_csv(layout.estimates, result.estimates)
    store.write_csv(layout.annotators, result.annotators)
    store.write_csv(layout.key("repairs.csv"), result.repairs)
    store.write_text(layout.report, markdown)
    store.write_text(layout.report_html, html_page(document))
    store.write_bytes(layout.forest_plot, forest)
    complete_estimate(store, layout, {"run_id": layout.run_id, **result.summary})
    create_markdown_artifact(
        key="headcount-report", markdown=markdown, description=f"Headcount estimate {layout.run_id}"
    )
    return store.location(layout.prefix)
