"""report.html of a run and of an estimate, opened in a real headless browser (Debian's chromium through Playwright).

The demo run (conftest's `demo_run`) and the demo estimate are real flow runs. Each page must load from
disk with no console error and no failed request, every image must decode, and
the key sections must be there. Where chromium is not installed the test skips,
saying so, except in CI (CI=true), where that is a failure: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, unavailable

CHROMIUM = os.environ.get("ML_HEADCOUNT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def browser():
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"no chromium at {CHROMIUM} (apt-get install chromium, or set ML_HEADCOUNT_CHROMIUM)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        problem = f"playwright is not installed ({error})"
    if problem:
        unavailable(f"report.html needs a browser: {problem}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def demo_estimate(prefect_harness, tmp_path_factory) -> Path:
    from flows.estimate import estimate_headcounts
    from ml_headcount.config import load_settings

    storage = tmp_path_factory.mktemp("html-estimate") / "artifacts"
    return Path(
        estimate_headcounts(
            str(EXAMPLES / "headcount_validation.csv"),
            population_url=str(EXAMPLES / "headcount_population.csv"),
            settings=load_settings(storage={"url": str(storage)}, headcount={"draws": 200}),
        )
    )


def opened(browser, path: Path) -> tuple[object, list[str]]:
    """The page at `path`, and every console error and failed request while it loaded."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


def images_loaded(page) -> list[tuple[str, int]]:
    """(alt, natural width) of every image: 0 means it did not decode."""
    return page.eval_on_selector_all("img", "images => images.map(i => [i.alt, i.complete ? i.naturalWidth : 0])")


def test_the_run_report_opens_in_a_browser_with_every_section_and_plot(browser, demo_run):
    page, problems = opened(browser, demo_run / "report.html")
    assert problems == []
    images = images_loaded(page)
    assert len(images) == 2 and all(width > 100 for _, width in images), images
    for section in ("summary", "counts", "list-quality", "queries", "classifier", "top-keywords", "clusters"):
        assert page.locator(f"section#{section} h2").count() == 1, section
    assert "40" in page.locator("section#counts table").first.inner_text()  # the demo's CVs used
    assert page.locator("section#list-quality tbody tr").count() == 4  # strict and broad of two categories
    # categories by their names, the positive one first; the columns and a no-spread interval explained
    first_cells = page.eval_on_selector_all(
        "section#list-quality tbody td:first-child", "cells => cells.map(c => c.textContent)"
    )
    assert first_cells == ["ML expert (1)"] * 2 + ["not ML expert (0)"] * 2, first_cells
    explained = page.locator("section#list-quality").inner_text()
    assert all(f"{term}:" in explained for term in ("Method", "Organisation names", "Phrase search")), explained
    assert "[1.000, 1.000]" not in page.inner_text("body")
    assert page.locator("section#clusters table").count() == 2  # one per category
    links = page.eval_on_selector_all("section#artifacts a", "links => links.map(a => a.getAttribute('href'))")
    assert links and all((demo_run / link).exists() for link in links), links
    assert page.eval_on_selector_all("[src^='http'], [href^='http'], script", "nodes => nodes.length") == 0
    page.close()


def test_the_estimate_report_opens_in_a_browser_with_its_forest_plot_and_tables(browser, demo_estimate):
    page, problems = opened(browser, demo_estimate / "report.html")
    assert problems == []
    images = images_loaded(page)
    assert len(images) == 1 and images[0][1] > 100, images
    for section in ("forest", "diagnostics", "annotators", "flags", "checks", "organisations", "artifacts"):
        assert page.locator(f"section#{section} h2").count() == 1, section
    assert page.locator("section#organisations tbody tr").count() == 6  # the demo's six organisations
    annotators = page.locator("section#annotators")
    assert "nan" not in annotators.inner_text().split(), annotators.inner_text()
    fits = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the page is wider than the window: a table runs off it"
    links = page.eval_on_selector_all("section#artifacts a", "links => links.map(a => a.getAttribute('href'))")
    assert links and all((demo_estimate / link).exists() for link in links), links
    page.close()


OUTLINE = """() => ({
    headings: [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent.trim()),
    tables: [...document.querySelectorAll('table')].map(
        t => [...t.querySelectorAll('thead th')].map(c => c.textContent.trim()).join(' | ')
    ),
})"""


@pytest.mark.parametrize("report", ["demo_run", "demo_estimate"])
def test_report_md_and_report_html_have_the_same_sections_and_tables(browser, report, request):
    """report.md and report.html render one content: every heading and every table's columns of one are in the
    other (the page lacked the queries, the classifier, the repairs and flags, and named its columns otherwise)."""
    from tests.test_hostile_names import rendered

    folder = request.getfixturevalue(report)
    page, problems = opened(browser, folder / "report.html")
    html_outline = page.evaluate(OUTLINE)
    page.set_content(rendered((folder / "report.md").read_text()))
    markdown_outline = page.evaluate(OUTLINE)
    page.close()
    for part in ("headings", "tables"):
        assert set(markdown_outline[part]) == set(html_outline[part]), (part, markdown_outline, html_outline)
    assert len(html_outline["headings"]) >= 8 and len(html_outline["tables"]) >= 3, html_outline


def test_an_estimate_of_near_zero_counts_has_a_readable_forest_plot(browser, demo_estimate, tmp_path):
    """An estimate of organisations with almost no matches: the plot showed an axis of 0-0.07 (fractions of a person)
    and each organisation's mean right of its 80 % interval [0, 0]. The point is now the median, inside its interval,
    on an axis from 0 of at least one expert; the page with it opens in the browser."""
    import json

    import pandas as pd

    from ml_headcount.headcount.report import estimate_document, forest_figure, plot_forest
    from ml_headcount.runs.document import html_page

    estimates = pd.DataFrame(
        {
            "organisation": [f"org {i}" for i in range(6)],
            "employees": [40, 25, 60, 10, 80, 15],
            "profiles": [40, 25, 60, 10, 80, 15],
            "mean": [0.03, 0.02, 0.05, 0.01, 0.07, 0.02],
            "q10": [0, 0, 0, 0, 0, 0],
            "q50": [0, 0, 0, 0, 0, 0],
            "q90": [0, 0, 0, 0, 0, 0],
            "flags": [None] * 6,
        }
    )
    axes = forest_figure(estimates).axes[0]
    low, high = axes.get_xlim()
    assert low == 0 and high >= 1, (low, high)
    assert all(tick == int(tick) for tick in axes.get_xticks() if low <= tick <= high), axes.get_xticks()
    points = axes.lines[0].get_xdata()
    shown = estimates.sort_values("mean", ascending=False).iloc[::-1]
    assert ((shown["q10"].to_numpy() <= points) & (points <= shown["q90"].to_numpy())).all(), points

    summary = json.loads((demo_estimate / "summary.json").read_text())
    annotators = pd.read_csv(demo_estimate / "annotators.csv")
    document = estimate_document("near-zero", summary, estimates, annotators, plot_forest(estimates))
    (tmp_path / "report.html").write_text(html_page(document))
    page, problems = opened(browser, tmp_path / "report.html")
    assert problems == []
    images = images_loaded(page)
    assert len(images) == 1 and images[0][1] > 100, images
    assert page.locator("section#organisations tbody tr").count() == 6
    page.close()
