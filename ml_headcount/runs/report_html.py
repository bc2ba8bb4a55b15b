"""report.html: a run's or an estimate's results as one self-contained page.

One file, plots embedded as data URIs, no script, no font or style from the
network: it opens the same from a laptop's disk, a synced folder or an
e-mail attachment. Links to the other artifacts are relative, so they work
wherever the folder is copied.
"""

from __future__ import annotations

import base64
import html
import numbers

import pandas as pd

from ml_headcount.headcount.report import predictive_rows
from ml_headcount.runs import report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f5f8; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; } .note { color: #555; font-size: 0.9rem; } code { font-size: 0.85rem; }
"""

RUN_ARTIFACTS = {
    "manifest.json": "input, parameters, versions, counts, timings",
    "cvs.parquet": "the cleaned CVs",
    "rejected.csv": "every row not used, with its reason",
    "keywords.parquet": "every CV's keywords",
    "category_keywords.csv": "keywords per category",
    "discriminative_keywords.csv": "the scored keywords",
    "keyword_lists.json": "the lists and their quality",
    "heldout_matches.parquet": "held-out matches per CV",
    "clusters.json": "keyword clusters",
    "report.md": "this report as Markdown",
    "top_keywords.png": "the keyword plot",
}
ESTIMATE_ARTIFACTS = {
    "summary.json": "the total, inputs and settings",
    "estimates.csv": "every organisation's estimate",
    "annotators.csv": "each annotator's validation confusion",
    "report.md": "this report as Markdown",
    "forest.png": "the forest plot",
}


def e(value) -> str:
    """Text as HTML."""
    return html.escape("" if value is None else str(value))


def image(png: bytes, alt: str) -> str:
    """The PNG as an image embedded in the page (a data URI)."""
    return f'<img alt="{e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table(rows: pd.DataFrame | list[dict]) -> str:
    """An HTML table of records, numbers right-aligned."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    head = "".join(f"<th>{e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = [
            f'<td class="number">{e(v)}</td>'
            if isinstance(v, numbers.Number) and not isinstance(v, bool)
            else f"<td>{e('' if pd.isna(v) else v)}</td>"
            for v in row
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(anchor: str, heading: str, *parts: str) -> str:
    """A section of the page with its heading, linkable as `#anchor`."""
    return f'<section id="{anchor}"><h2>{e(heading)}</h2>{"".join(parts)}</section>'


def artifact_links(artifacts: dict[str, str]) -> str:
    """A list of relative links to the artifacts beside the page, each with what it holds."""
    items = "".join(f'<li><a href="{e(name)}">{e(name)}</a>: {e(what)}</li>' for name, what in artifacts.items())
    return f"<ul>{items}</ul>"


def page(title: str, lead: str, sections: list[str]) -> str:
    """The whole self-contained HTML document."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1>{lead}{''.join(sections)}</body></html>\n"
    )


def run_page(
    manifest: dict, discriminative: pd.DataFrame, category_keywords: pd.DataFrame, lists: dict, clusters: dict
) -> str:
    """The page of one keyword run: counts, list quality, top keywords, clusters, artifacts."""
    lead = (
        f"<p>Input <code>{e(manifest['input']['url'])}</code> (sha256 <code>{e(manifest['input']['sha256'][:16])}"
        f"</code>), model <code>{e(manifest['parameters']['extraction']['model'])}</code> on "
        f"{e(manifest['extraction']['device'])}.</p>"
    )
    quality_note = (
        '<p class="note">In-sample: measured on the CVs the lists were learned from (optimistic). '
        "Cross-validated: on CVs held out of the learning, mean over the fold seeds, with 80 % intervals; the "
        "learner's design was chosen on the study's rated CVs, so on them these are optimistic. New sample: the 80 % "
        "prediction interval a new sample of rated CVs will see (docs/lists.md).</p>"
    )
    top = [
        f"<h3>Category {e(category)}</h3>" + table(group.drop(columns="category"))
        for category, group in report.top_keywords_table(discriminative).groupby("category", sort=True)
    ]
    sections = [
        section("counts", "Counts", *_run_counts(manifest)),
        section(
            "list-quality",
            "Keyword lists and their quality",
            quality_note,
            table(report.list_quality_table(lists)),
            image(report.plot_list_quality(lists), "sensitivity against specificity of every keyword list"),
        ),
        section(
            "top-keywords",
            "Top keywords per category",
            image(
                report.plot_top_keywords(discriminative, category_keywords, manifest["ingest"]["categories"]),
                "share of each category's CVs the top keywords were extracted from",
            ),
            *top,
        ),
        section("clusters", "Keyword clusters", *_clusters(clusters)),
        section("timings", "Timings", table([{"stage": s, "seconds": t} for s, t in manifest["timings_s"].items()])),
        section("artifacts", "Artifacts", artifact_links(RUN_ARTIFACTS)),
    ]
    return page(f"ml-headcount run {manifest['run_id']}", lead, sections)


def _run_counts(manifest: dict) -> list[str]:
    """The run's counts of rows, CVs and keywords, its CVs per category, and why rows were rejected."""
    ingest, extraction = manifest["ingest"], manifest["extraction"]
    counts = table(
        [
            {
                "input rows": ingest["input_rows"],
                "CVs used": ingest["cvs"],
                "duplicates": ingest["duplicates"],
                "rejected": ingest["rejected"],
                "keywords extracted": extraction["keywords"],
                "CVs extracted now": extraction["cvs_extracted"],
                "CVs from cache": extraction["cvs_from_cache"],
            }
        ]
    )
    per_category = table([{"category": c, "CVs": n} for c, n in ingest["categories"].items()])
    rejected = (
        f'<p class="note">Rejected rows (<a href="rejected.csv">rejected.csv</a>): '
        f"{e(', '.join(f'{r}: {n}' for r, n in ingest['rejected_by_reason'].items()))}</p>"
        if ingest["rejected_by_reason"]
        else ""
    )
    return [counts, per_category, rejected]


def _clusters(clusters: dict) -> list[str]:
    parts = []
    for category, result in clusters.items():
        rows = [
            {
                "cluster": c["representative"],
                "keywords": c["size"],
                "mean score": c["mean_score"],
                "members": ", ".join(c["keywords"][:12]) + (" ..." if c["size"] > 12 else ""),
            }
            for c in result["clusters"]
        ]
        parts.append(f"<h3>Category {e(category)} ({e(result['method'])})</h3>" + table(rows))
    return parts


def estimate_page(run_id: str, summary: dict, estimates: pd.DataFrame, annotators: pd.DataFrame, forest: bytes) -> str:
    """The page of one headcount estimate: the total, the forest plot, diagnostics, annotators, organisations."""
    total = summary["total"]
    lead = (
        f"<p><strong>{total['mean']:.0f} ML experts</strong> in {summary['organisations']} organisations "
        f"(80 % interval {total['q10']}–{total['q90']}, median {total['q50']}), from {summary['profiles']} "
        f"profiles of {summary['employees']} employees ({e(summary['mode'])} mode).</p>"
    )
    validation = summary["validation"]
    diagnostics = table(
        [
            {
                "validation": validation["url"],
                "labelled rows": validation["rows"],
                "positives": validation["positives"],
                "rows without a label": validation["rows_without_label"],
                "population": summary["population"]["url"],
                "model annotators": ", ".join(summary["model_annotators"]),
                "prior": summary["settings"]["prior"],
                "draws": summary["settings"]["draws"],
                "seed": summary["seed"],
            }
        ]
    )
    ordered = estimates.sort_values("mean", ascending=False)
    sections = [
        section("forest", "Estimates per organisation", image(forest, "mean and 80 % interval per organisation")),
        section("diagnostics", "Inputs and model", diagnostics),
        section("annotators", "Annotators (validation)", table(annotators)),
        section("checks", "Posterior predictive checks", _predictive_checks(summary["predictive_checks"])),
        section(
            "organisations",
            "Organisations",
            table(ordered[["organisation", "employees", "profiles", "mean", "q10", "q50", "q90"]]),
        ),
        section("artifacts", "Artifacts", artifact_links(ESTIMATE_ARTIFACTS)),
    ]
    return page(f"Headcount estimate {run_id}", lead, sections)


def _predictive_checks(checks: dict) -> str:
    verdict = f"<p><strong>{e(checks['message'])}.</strong></p>" if checks["message"] else ""
    return verdict + table(predictive_rows(checks))
