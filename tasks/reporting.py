"""Tasks that produce what people read: the report, the plot, the manifest and the Prefect UI artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from ml_headcount import report
from ml_headcount.config import Settings
from ml_headcount.runs import RunLayout, complete_run
from ml_headcount.storage import ArtifactStore
from tasks.policies import IO_RETRIES


@task(name="run-report", **IO_RETRIES)
def run_report(manifest: dict, settings: Settings, run: RunLayout) -> str:
    """report.md and top_keywords.png in storage, and both tables in the Prefect UI."""
    store = ArtifactStore(settings.storage)
    discriminative = store.read_csv(run.key("discriminative_keywords.csv"))
    lists = store.read_json(run.key("keyword_lists.json"))
    clusters = store.read_json(run.key("clusters.json"))
    markdown = report.render_report(manifest, discriminative, lists, clusters)
    store.write_text(run.key("report.md"), markdown)
    store.write_bytes(run.key("top_keywords.png"), report.plot_top_keywords(discriminative))

    create_table_artifact(
        key="top-discriminative-keywords",  # one key: the UI keeps every run's version under it
        table=report.top_keywords_table(discriminative).to_dict(orient="records"),
        description=f"Top discriminative keywords per category, run {run.run_id}",
    )
    create_markdown_artifact(key="cv-keywords-report", markdown=markdown, description=f"Report of run {run.run_id}")
    return markdown


@task(name="run-manifest", **IO_RETRIES)
def run_manifest(manifest: dict, settings: Settings, run: RunLayout) -> str:
    """manifest.json, written last: it marks the run complete. Returns the run's location."""
    return complete_run(ArtifactStore(settings.storage), run, manifest)
