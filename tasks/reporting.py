"""Tasks that produce what people read: the report, the plot, the manifest and the Prefect UI artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from ml_headcount.config import Settings
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists.documents import MAX_CLASSIFIER_BYTES
from ml_headcount.lists.quality_table import list_quality_table
from ml_headcount.runs import report
from ml_headcount.runs.document import html_page, markdown
from ml_headcount.runs.layout import RunLayout, complete_run
from ml_headcount.runs.run_document import run_document
from tasks.policies import TASK_POLICY


@task(name="run-report", **TASK_POLICY)
def run_report(store: ArtifactStore, manifest: dict, settings: Settings, run: RunLayout) -> str:
    """report.md, report.html and top_keywords.png in storage, and both tables in the Prefect UI."""
    discriminative = store.read_csv(run.discriminative_keywords)
    category_keywords = store.read_csv(run.category_keywords)
    lists = store.read_json(run.keyword_lists)
    clusters = store.read_json(run.clusters)
    queries = store.read_json(run.queries) if store.exists(run.queries) else None
    classifier = (
        store.read_json(run.text_classifier, MAX_CLASSIFIER_BYTES) if store.exists(run.text_classifier) else None
    )
    document = run_document(manifest, discriminative, category_keywords, lists, clusters, queries, classifier)
    text = markdown(document)
    store.write_text(run.report, text)
    store.write_text(run.report_html, html_page(document))
    plot = next(part.png for part in document.images() if part.file == "top_keywords.png")
    store.write_bytes(run.top_keywords_plot, plot)

    create_table_artifact(
        key="top-discriminative-keywords",  # one key: the UI keeps every run's version under it
        table=report.top_keywords_table(discriminative).to_dict(orient="records"),
        description=f"Top discriminative keywords per category, run {run.run_id}",
    )
    create_table_artifact(
        key="keyword-list-quality",
        table=list_quality_table(lists, manifest["parameters"].get("report", {}).get("category_names")),
        description=f"Keyword lists of run {run.run_id}: in-sample, cross-validated (mean over fold seeds; design "
        "chosen on the study's rated CVs) and a new sample's 80 % prediction interval",
    )
    create_markdown_artifact(key="cv-keywords-report", markdown=text, description=f"Report of run {run.run_id}")
    return text


@task(name="completed-run", **TASK_POLICY)
def completed_run(store: ArtifactStore, manifest: dict, run: RunLayout) -> str:
    """manifest.json, written last: it marks the run complete. Returns the run's location."""
    return complete_run(store, run, manifest)
