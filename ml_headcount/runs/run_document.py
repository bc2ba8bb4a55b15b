"""A keyword run's report as a `Document`: report.md and report.html render this one content (runs.document)."""

from __future__ import annotations

import pandas as pd

from ml_headcount.lists.figure_text import balanced_cell, category_label, cross_validated_cells, fmt
from ml_headcount.lists.quality_table import list_quality_table
from ml_headcount.runs import report
from ml_headcount.runs.document import (
    Artifacts,
    Bullets,
    Code,
    Document,
    Image,
    Paragraph,
    Section,
    Strong,
    Table,
    table_of,
)
from ml_headcount.runs.summary import ordered_categories, run_summary, summary_quality
from ml_headcount.scoring.keyword_list import list_column

ARTIFACTS = {
    "manifest.json": "input, parameters, versions, counts, timings",
    "cvs.parquet": "the cleaned CVs",
    "rejected.csv": "every row not used, with its reason",
    "keywords.parquet": "every CV's keywords",
    "category_keywords.csv": "keywords per category",
    "discriminative_keywords.csv": "the scored keywords",
    "keyword_lists.json": "the lists, their exclusions and their quality",
    "queries.json": "every list as a search query in every dialect, with its quality per matcher",
    "text_classifier.json": "the TF-IDF + logistic-regression annotator (terms, idf, coefficients)",
    "heldout_matches.parquet": "held-out matches per CV",
    "clusters.json": "keyword clusters",
    "report.md": "this report as Markdown",
    "report.html": "this report as one page",
    "top_keywords.png": "the keyword plot",
}

LIST_NOTES = (
    "A CV matches a list when its cleaned text contains any of its keywords and none of its exclusions. Role: "
    "positive for the category the lists are for (lists.positive), the others' lists describe the rest. In-sample "
    "figures are measured on the CVs the lists were learned from (optimistic); cross-validated ones on CVs held out of "
    "the learning (stratified folds, pooled, mean over the fold seeds), with 80 % intervals (Wilson for sensitivity "
    "and specificity, bootstrap for balanced accuracy; a list with no held-out error has a bootstrap of no spread, and "
    "its sensitivity's and specificity's Wilson intervals say how far it may fall on new CVs). The learner's design "
    "was chosen on the study's rated CVs, so on them cross-validated figures are optimistic: the new-sample column is "
    "what a new sample of rated CVs will see (80 % prediction interval: fold and seed noise, the design-selection "
    "optimism and the new sample's own noise; docs/lists.md). heldout_matches.parquet holds every CV's held-out "
    "matches (first fold seed).",
    "Phrases: the list's keywords as its query has them, after the linter; exclusions (AND NOT): the keywords a "
    "matching CV must not contain.",
    "Method: how the list was learned (lists.method): selected = grown greedily from phrases found at several "
    "employers, its size chosen by cross-validation inside the training CVs; study = the study's score and "
    "specificity thresholds. Organisation names: the share of the list's keywords that are or contain an "
    "organisation's name (a keyword found mostly in the company fields of CVs), which a search tool would match as "
    "employers rather than skills. Phrase search: the list run as a search tool runs a query (whole phrases in the "
    "raw text) rather than by the product's matcher on cleaned n-grams (docs/lists.md).",
)


def run_document(
    manifest: dict,
    discriminative: pd.DataFrame,
    category_keywords: pd.DataFrame,
    lists: dict,
    clusters: dict,
    queries: dict | None = None,
    classifier: dict | None = None,
) -> Document:
    """Everything the run's report says, in order, positive category first."""
    names = manifest["parameters"].get("report", {}).get("category_names", {})
    order = ordered_categories(manifest["ingest"]["categories"], lists)
    lead = [
        Paragraph(
            f"Input: {manifest['input']['url']} (sha256 ",
            Code(manifest["input"]["sha256"][:16] + "…"),
            f"). Model: {manifest['parameters']['extraction']['model']} on {manifest['extraction']['device']}, "
            f"backend {manifest['parameters']['backend']}.",
        )
    ]
    summary = run_summary(manifest, lists, queries)
    sections = [
        Section("Summary", "summary", _summary(summary)),
        Section("Counts", "counts", _counts(manifest, order, names)),
        Section("Keyword lists and their quality", "list-quality", _lists(lists, order, names)),
    ]
    if queries:
        sections.append(Section("Search queries", "queries", _queries(queries, order, names)))
    if classifier:
        sections.append(Section("TF-IDF + logistic-regression annotator", "classifier", _classifier(classifier, names)))
    sections += [
        Section(
            "Top discriminative keywords",
            "top-keywords",
            _top_keywords(manifest, discriminative, category_keywords, order, names),
        ),
        Section("Keyword clusters", "clusters", _clusters(clusters, order, names)),
        Section(
            "Timings", "timings", [table_of([{"stage": s, "seconds": t} for s, t in manifest["timings_s"].items()])]
        ),
        Section("Artifacts", "artifacts", [Artifacts(_artifacts(queries, classifier))]),
    ]
    return Document(f"ml-headcount run {manifest['run_id']}", lead, sections)


def _summary(summary: dict) -> list:
    """What the console said at the run's end: per category, positive first, its lists' quality and broad query."""
    items = []
    for entry in summary["categories"]:
        lists = "; ".join(
            f"{name} list ({quality['keywords']} keywords): {summary_quality(quality)}"
            for name, quality in entry["lists"].items()
        )
        query = [". Broad query: ", Code(entry["broad_query"])] if entry["broad_query"] else []
        items.append(
            Paragraph(
                Strong(entry["label"]),
                f", {entry['cvs']:,} CVs. Cross-validated balanced accuracy (80 % interval): {lists or 'no lists'}",
                *query,
                ".",
            )
        )
    counts = Paragraph(
        f"{summary['cvs']:,} CVs used ({summary['rejected_rows']:,} rows rejected), "
        f"{summary['keywords']:,} keywords extracted."
    )
    return [counts, Bullets(tuple(items))]


def _artifacts(queries: dict | None, classifier: dict | None) -> dict[str, str]:
    left_out = {"queries.json"} if queries is None else set()
    left_out |= {"text_classifier.json"} if classifier is None else set()
    return {name: what for name, what in ARTIFACTS.items() if name not in left_out}


def _counts(manifest: dict, order: list[str], names: dict) -> list:
    """The run's counts of rows, CVs and keywords, its CVs per category, and what it did not use."""
    ingest, extraction = manifest["ingest"], manifest["extraction"]
    counts = {
        "input rows": ingest["input_rows"],
        "CVs used": ingest["cvs"],
        "duplicates": ingest["duplicates"],
        "rejected": ingest["rejected"],
        "encoding repaired": ingest["repaired_encoding"],
        "keywords extracted": extraction["keywords"],
        "CVs extracted now": extraction["cvs_extracted"],
        "CVs from cache": extraction["cvs_from_cache"],
    }
    parts = [
        table_of([counts]),
        table_of([{"category": category_label(c, names), "CVs": ingest["categories"][c]} for c in order]),
    ]
    if ingest["rejected_by_reason"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in ingest["rejected_by_reason"].items())
        parts.append(Paragraph("Rejected rows (see ", Code("rejected.csv"), f"): {reasons}."))
    if manifest.get("cache_rejected"):
        parts.append(
            Paragraph(
                f"{len(manifest['cache_rejected'])} cache entries in the storage failed their checks and were ignored, "
                "their results computed again (listed in ",
                Code("manifest.json"),
                ", cache_rejected).",
            )
        )
    return parts


def _lists(lists: dict, order: list[str], names: dict) -> list:
    rows = list_quality_table({c: lists[c] for c in order if c in lists}, names)
    image = Image(report.plot_list_quality(lists), "sensitivity against specificity of every keyword list")
    return [*map(Paragraph, LIST_NOTES), table_of(rows), image]


def _queries(queries: dict, order: list[str], names: dict) -> list:
    """Every list as a boolean query (exclusions as AND NOT) with its quality per matcher, and the linter's repairs."""
    note = Paragraph(
        "Every list as a query for people-search tools (",
        Code("queries.json"),
        " holds every dialect: " + ", ".join(queries["dialects"]) + "; ",
        Code("ml-headcount query RUN --dialect D"),
        " prints one). Quality per matcher: product matches the run's n-grams after the study's cleaning, phrase is "
        "phrase search of the query as a search tool runs it. Cross-validated balanced accuracy with its 80 % "
        "interval; seed spread: max - min over the fold seeds.",
    )
    rows = []
    for category in (c for c in order if c in queries["queries"]):
        for name, entry in queries["queries"][category].items():
            complexity, boolean = entry["complexity"], entry["dialects"]["boolean"]
            product, phrase = entry["quality"]["product"], entry["quality"]["phrase"]
            rows.append(
                {
                    "category": category_label(category, names),
                    "list": name,
                    "complexity": f"{complexity['phrases']} phrases, {complexity['form']}" if complexity else "empty",
                    "exclusions": ", ".join(entry.get("none_of", [])) or "none",
                    "product: cross-validated balanced accuracy": balanced_cell(product["cross_validated"]),
                    "product: seed spread": fmt(product["seed_spread"]),
                    "phrase: in-sample sens. / spec.": f"{fmt(phrase['in_sample_sensitivity'])} / "
                    f"{fmt(phrase['in_sample_specificity'])}",
                    "phrase: cross-validated balanced accuracy": balanced_cell(phrase["cross_validated"]),
                    "phrase: seed spread": fmt(phrase["seed_spread"]),
                    "boolean query": boolean.get("query", boolean.get("refused")),
                }
            )
    repairs = [
        Paragraph(f"{list_column(c, name)}: {note}")
        for c, by_name in queries["queries"].items()
        for name, e in by_name.items()
        for note in e["lint"]
    ]
    return [note, table_of(rows)] + ([Paragraph("Linter repairs:"), Bullets(tuple(repairs))] if repairs else [])


def _classifier(classifier: dict, names: dict) -> list:
    """The TF-IDF + logistic-regression annotator's quality per category, like a list's (or why there is none)."""
    if "skipped" in classifier:
        return [Paragraph(f"Not learned from these {classifier['learning_cvs']} CVs: {classifier['skipped']}.")]
    rows = []
    for category, entry in classifier["quality"].items():
        rows.append(
            {
                "category": category_label(category, names),
                "column": entry["column"],
                "in-sample sensitivity": fmt(entry["in_sample_sensitivity"]),
                "in-sample specificity": fmt(entry["in_sample_specificity"]),
                **cross_validated_cells(entry["cross_validated"]),
            }
        )
    note = Paragraph(
        Code("text_classifier.json"),
        f" (terms, idf, coefficients; learned from {classifier['learning_cvs']} CVs, cross-validated on the lists' "
        "folds). It needs the profiles' texts (population mode, apply), not a search tool. In-sample figures are "
        "optimistic.",
    )
    return [note, table_of(rows)]


def _top_keywords(
    manifest: dict, discriminative: pd.DataFrame, category_keywords: pd.DataFrame, order: list[str], names: dict
) -> list:
    """The top keywords' plot, and per category (positive first) a table of its top keywords."""
    plot = report.plot_top_keywords(discriminative, category_keywords, manifest["ingest"]["categories"])
    parts: list = [Image(plot, "share of each category's CVs the top keywords were extracted from", "top_keywords.png")]
    top = report.top_keywords_table(discriminative).assign(category=lambda t: t["category"].astype(str))
    for category in sorted(top["category"].unique(), key=lambda c: (c not in order, c in order and order.index(c), c)):
        rows = [
            {
                "#": r.rank,
                "keyword": r.keyword,
                "score": f"{r.score:.3f}",
                "specificity": f"{r.specificity:.3f}",
                "CVs in category": r.frequency,
                "CVs in all": r.total_frequency,
            }
            for r in top[top["category"] == category].itertuples()
        ]
        parts.append(_titled(table_of(rows), f"Category {category_label(category, names)}"))
    return parts


def _titled(table: Table, title: str) -> Table:
    return Table(table.columns, table.rows, title)


def _clusters(clusters: dict, order: list[str], names: dict) -> list:
    """Per category, its keyword clusters: representative, size, mean score and first members."""
    parts = []
    for category in sorted(clusters, key=lambda c: (c not in order, c in order and order.index(c), c)):
        result = clusters[category]
        rows = [
            {
                "cluster": c["representative"],
                "keywords": c["size"],
                "mean score": f"{c['mean_score']:.3f}",
                "members": ", ".join(c["keywords"][:12]) + (" ..." if c["size"] > 12 else ""),
            }
            for c in result["clusters"]
        ]
        title = f"Category {category_label(category, names)} ({result['method']})"
        parts.append(_titled(table_of(rows), title) if rows else Paragraph(f"{title}: no clusters."))
    return parts
