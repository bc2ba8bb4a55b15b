"""Names chosen by a hostile user (issue 32): category labels, a file name, organisation and annotator names that are
Markdown, HTML, mathtext or spreadsheet formulas, and a run's artifacts edited after it was written.

Each case goes through the real command line (`python -m flows.cli`, its own temporary Prefect server). report.md is
rendered by markdown-it (CommonMark with GFM tables), as the Prefect UI renders a markdown artifact: a name must show
as its text, in its own table cell, and never become an HTML element or a link.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "examples"
# a browser that rendered these as HTML fetched the URL; the link and the pipe are Markdown's
IMAGE = "<img src=http://127.0.0.1:4299/x onerror=alert(1)>"
NAME = f"$x^$ | {IMAGE} [link](http://127.0.0.1:4299/y) *a_b* & \\|"
FORMULA = "=cmd|' /C calc'!A0"
FILE_NAME = "cvs `x` | y.csv"


def cli(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
    )
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The command's only line on standard error, checked to be a user error's (exit 2, no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ml-headcount: error: "), result.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`run` on the demo CVs labelled NAME and FORMULA, read from a file named FILE_NAME: the command and its
    storage."""
    folder = tmp_path_factory.mktemp("hostile")
    table = pd.read_csv(EXAMPLES / "demo_cvs.csv", dtype={"category": str})
    table["category"] = table["category"].map({"0": NAME, "1": FORMULA})
    table.to_csv(folder / FILE_NAME, index=False)
    storage = folder / "artifacts"
    return cli("run", str(folder / FILE_NAME), "--storage-url", str(storage), home=folder / "prefect"), storage


@pytest.fixture(scope="module")
def run(hostile_run) -> Path:
    result, storage = hostile_run
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def first_cells(page: str, header: str) -> list[str]:
    """The first cell's text of every body row of each table whose first header cell is `header`."""
    cells = []
    for table in re.findall(r"<table>(.*?)</table>", page, re.S):
        if text_of(re.search(r"<th(?: [^>]*)?>(.*?)</th>", table, re.S).group(1)) == header:
            body = table.split("<tbody>", 1)[1]
            cells += [text_of(row) for row in re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>", body, re.S)]
    return cells


def assert_shown_as_text(page: str) -> None:
    assert "<img" not in page and "<a " not in page and "<script" not in page, page
    assert IMAGE in text_of(page) and "[link](http://127.0.0.1:4299/y) *a_b* & \\|" in text_of(page)


def test_a_category_with_mathtext_in_it_is_drawn_as_typed(hostile_run, run):
    """Item 4: matplotlib parsed `$x^$` as mathtext and the run failed at its report (exit 1, a traceback)."""
    result, _ = hostile_run
    assert "Traceback" not in result.stderr
    for artifact in ("top_keywords.png", "report.html", "manifest.json"):
        assert (run / artifact).stat().st_size > 0, artifact


def test_names_in_the_run_report_render_as_their_text(run):
    """Item 3: categories and the input's file name went into report.md as Markdown and HTML."""
    page = rendered((run / "report.md").read_text())
    assert_shown_as_text(page)
    assert f"Input: {run.parent.parent.parent / FILE_NAME} (sha256" in text_of(page)
    listed = first_cells(page, "category")
    assert listed and set(listed) == {NAME, FORMULA}, listed


def test_organisation_and_annotator_names_in_the_estimate_report_render_as_their_text(tmp_path):
    """Items 3 and 4: an organisation and an annotator named NAME, in report.md and the forest plot."""
    annotator = f"kw {NAME}"
    validation = pd.read_csv(EXAMPLES / "headcount_validation.csv").rename(columns={"keyword_filter": annotator})
    counts = pd.read_csv(EXAMPLES / "headcount_counts.csv").rename(columns={"keyword_filter": annotator})
    counts.loc[0, "organisation"] = NAME
    validation.to_csv(tmp_path / "validation.csv", index=False)
    counts.to_csv(tmp_path / "counts.csv", index=False)
    storage = tmp_path / "artifacts"
    arguments = ["--counts", str(tmp_path / "counts.csv"), "--draws", "100", "--storage-url", str(storage)]
    result = cli("estimate", "--validation", str(tmp_path / "validation.csv"), *arguments, home=tmp_path / "prefect")
    assert result.returncode == 0, result.stderr[-3000:]
    estimate = Path(result.stdout.strip().splitlines()[-1])
    assert (estimate / "forest.png").stat().st_size > 0
    page = rendered((estimate / "report.md").read_text())
    assert_shown_as_text(page)
    assert set(first_cells(page, "organisation")) == set(counts["organisation"])
    assert annotator in first_cells(page, "annotator")


def test_file_names_and_categories_in_the_ingestion_report_render_as_their_text(tmp_path):
    """Item 3: the cv-ingestion flow's Markdown artifact named inbox files (a `|` turned into `/`), their errors and the
    dataset's categories unescaped."""
    from ml_headcount.config import InboxSettings, IngestSettings, StorageSettings
    from ml_headcount.corpus.dataset import (
        Inbox,
        RegisteredDataset,
        ingestion_markdown,
        ingestion_summary,
        register_file,
    )
    from ml_headcount.io.storage import ArtifactStore

    inbox_folder = tmp_path / "inbox"
    inbox_folder.mkdir()
    good, bad = "<img src=x onerror=alert(1)> [a](b) | good.csv", "<script>bad() | `x`.csv"
    table = pd.read_csv(EXAMPLES / "demo_cvs.csv", dtype={"category": str})
    table.assign(category=table["category"].map({"0": NAME, "1": FORMULA})).to_csv(inbox_folder / good, index=False)
    (inbox_folder / bad).write_text("name,age\nada,36\n")  # no text column: quarantined, its error names it
    storage = StorageSettings(url=str(tmp_path / "artifacts"))
    inbox = Inbox(InboxSettings(url=str(inbox_folder), quarantine="quarantine"), storage)
    dataset = RegisteredDataset(ArtifactStore(storage), "cvs")
    outcomes = [register_file(dataset, inbox, file, IngestSettings(), "first") for file in dataset.pending(inbox)]
    page = rendered(ingestion_markdown(ingestion_summary("first", inbox, dataset, outcomes, None)))
    assert_shown_as_text(page)
    assert sorted(first_cells(page, "file")) == sorted([good, bad])


def test_apply_writes_formula_like_list_columns_escaped_in_csv(run, tmp_path):
    """Item 9: a list column `<category>/<list>` is named by a user; the run's own CSVs escape such text, apply's
    matches.csv wrote it as a formula."""
    output = tmp_path / "matches.csv"
    result = cli("apply", str(run), str(EXAMPLES / "demo_cvs.csv"), "-o", str(output), home=tmp_path / "prefect")
    assert result.returncode == 0, result.stderr[-3000:]
    with output.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert f"'{FORMULA}/broad" in header and f"{NAME}/broad" in header, header
    assert not [name for name in header if name.startswith(("=", "+", "-", "@"))], header


def test_apply_to_an_http_output_is_one_line(run, tmp_path):
    """Item 14: fsspec opens HTTP only to read; `apply -o http://...` ended in its NotImplementedError, exit 1."""
    output = "http://127.0.0.1:9/matches.csv"
    result = cli("apply", str(run), str(EXAMPLES / "demo_cvs.csv"), "-o", output, home=tmp_path / "prefect")
    assert f"{output}: --output must be a local path or an s3:// URL" in one_error_line(result)


def copied(run: Path, tmp_path: Path) -> Path:
    """A copy of the run in a storage of its own, to edit."""
    copy = tmp_path / "store" / "runs" / run.name
    shutil.copytree(run, copy)
    return copy


def test_query_prints_only_the_query_its_phrases_give(run, tmp_path):
    """Item 5: `query` printed whatever queries.json held: SQL and terminal escape codes edited into a copy of a run."""
    home = tmp_path / "prefect"
    arguments = ["--dialect", "postgres", "--category", FORMULA]
    stored = json.loads((run / "queries.json").read_text())["queries"][FORMULA]["broad"]
    assert cli("query", str(run), *arguments, home=home).stdout.strip() == stored["dialects"]["postgres"]["query"]
    injected = "text ~* 'research'; DROP TABLE profiles; --\x1b[2J\x1b]0;owned\x07"
    for field, edit in [
        ("the query", lambda entry: entry["dialects"]["postgres"].update(query=injected)),
        ("its phrases", lambda entry: entry["any_of"].append(injected)),
        ("its refusal", lambda entry: entry["dialects"].update(postgres={"refused": injected})),
    ]:
        copy = copied(run, tmp_path / field.replace(" ", "-"))
        document = json.loads((copy / "queries.json").read_text())
        edit(document["queries"][FORMULA]["broad"])
        (copy / "queries.json").write_text(json.dumps(document))
        result = cli("query", str(copy), *arguments, home=home)
        line = one_error_line(result)
        assert str(copy / "queries.json") in line and "DROP" not in result.stdout + line, (field, line)
        assert "\x1b" not in result.stdout + result.stderr, field


def test_a_tampered_ngram_max_in_a_runs_manifest_is_refused_not_computed(run, tmp_path):
    """Item 6: `apply` on a copy of a run whose manifest says ngram_max 100000000 spun forever."""
    copy = copied(run, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["parameters"]["extraction"]["ngram_max"] = 100_000_000
    (copy / "manifest.json").write_text(json.dumps(manifest))
    output = tmp_path / "matches.parquet"
    arguments = [str(copy), str(EXAMPLES / "demo_cvs.csv"), "-o", str(output)]
    result = cli("apply", *arguments, home=tmp_path / "prefect", timeout=300)  # a Prefect server, then a moment
    assert "manifest.json" in one_error_line(result)


def test_matching_compares_an_n_gram_code_with_64_bits_in_logarithms():
    """Item 6: settings that bypassed validation (a huge ngram_max) are refused at once, not raised to a power."""
    from ml_headcount.config import ExtractionSettings
    from ml_headcount.scoring.matching import KeywordCounter

    settings = ExtractionSettings().model_copy(update={"ngram_max": 100_000_000})
    started = time.perf_counter()
    with pytest.raises(ValueError, match="too many to pack"):
        KeywordCounter(["machine learning"], settings)
    assert time.perf_counter() - started < 60  # seconds of imports on a busy machine; the exact power never ends
