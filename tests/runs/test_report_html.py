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
    from flows.headcount import headcount
    from ml_headcount.config import load_settings

    storage = tmp_path_factory.mktemp("html-estimate") / "artifacts"
    return Path(
        headcount(
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
    for section in ("counts", "list-quality", "top-keywords", "clusters", "artifacts"):
        assert page.locator(f"section#{section} h2").count() == 1, section
    assert "40" in page.locator("section#counts table").first.inner_text()  # the demo's CVs used
    assert page.locator("section#list-quality tbody tr").count() == 4  # strict and broad of two categories
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
    for section in ("forest", "diagnostics", "annotators", "organisations", "artifacts"):
        assert page.locator(f"section#{section} h2").count() == 1, section
    assert page.locator("section#organisations tbody tr").count() == 6  # the demo's six organisations
    links = page.eval_on_selector_all("section#artifacts a", "links => links.map(a => a.getAttribute('href'))")
    assert links and all((demo_estimate / link).exists() for link in links), links
    page.close()
