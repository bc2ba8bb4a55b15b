"""What a run says of its lists, they are: strict inside broad, the asked-about category first, the figures labelled,
and an interval that a new sample of rated CVs lands in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import DesignOptimism, load_settings
from ml_headcount.lists import evidence, learners, quality, queries
from ml_headcount.lists.documents import KeywordLists, Queries
from ml_headcount.lists.new_sample import new_sample_interval
from ml_headcount.lists.quality_table import NEW_SAMPLE_COLUMN, list_quality_table
from ml_headcount.runs.document import markdown
from ml_headcount.runs.run_document import run_document
from ml_headcount.runs.summary import run_summary

NAMES = {"1": "ML expert", "0": "not ML expert"}  # report.category_names' default


def _with(settings, **update):
    return settings.model_copy(update={"lists": settings.lists.model_copy(update=update)})


@pytest.fixture(scope="module")
def settings():
    """The default settings with fewer options for the inner cross-validation (each costs a greedy path per inner
    fold), so that the constructed corpora learn in a second."""
    return _with(
        load_settings(),
        broad_weights=[1.0, 2.0],
        strict_weights=[3.0, 8.0],
        penalties=[0.0],
        max_keywords=6,
        max_exclusions=3,  # off by default; the constructed corpus needs them for a broad exclusion
        cv_repeats=2,
        text_classifier=False,
    )


@pytest.fixture(scope="module")
def document(settings) -> dict:
    """keyword_lists.json of the interpretability corpus below."""
    return _document(settings, _interpretability_corpus(settings))


def _corpus(settings, texts: list[str], labels: list[str]) -> evidence.Corpus:
    """Every word of every text is an extracted keyword; every CV has its own employer."""
    cvs = pd.DataFrame({"cv_id": [f"cv{i:03d}" for i in range(len(texts))], "category": labels, "text": texts})
    keywords = pd.DataFrame(
        [(cv, k) for cv, text in zip(cvs["cv_id"], texts) for k in text.split()], columns=["cv_id", "keyword"]
    ).assign(score=0.5, rank=1)
    return evidence.build_corpus(cvs, keywords, settings.extraction)


def _interpretability_corpus(settings) -> evidence.Corpus:
    """40 CVs of category 1 with `research`, 12 of them with `interpretability`, 6 of those with `sales`; 40 others:
    20 with `research sales`, 20 with `marketing office`. Grown apart, the broad list is `(research) NOT (sales)` and
    the strict one `interpretability`: 6 CVs would match strict and not broad."""
    word = [f"topic{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(80)]
    positives = [
        "research " + ("interpretability " if i < 12 else "") + ("sales " if i < 6 else "") + word[i] for i in range(40)
    ]
    negatives = [f"{'research sales' if i < 20 else 'marketing office'} {word[40 + i]}" for i in range(40)]
    return _corpus(settings, positives + negatives, ["1"] * 40 + ["0"] * 40)


def test_every_cv_the_strict_list_matches_the_broad_list_matches(settings):
    corpus = _interpretability_corpus(settings)
    rows = np.arange(len(corpus.cvs))
    texts = corpus.cvs["text"].tolist()
    lists = learners.learn(corpus, None, settings.lists, settings.scoring)["1"]
    strict, broad = (
        quality.list_matches(corpus, rows, lists["strict"]),
        quality.list_matches(corpus, rows, lists["broad"]),
    )
    assert strict.any()  # not vacuous
    assert not (strict & ~broad).any()
    phrase = {name: quality.phrase_list_matches(texts, lists[name]) for name in ("strict", "broad")}
    assert not (phrase["strict"] & ~phrase["broad"]).any()
    assert set(lists["strict"]) <= set(lists["broad"])
    assert set(lists["broad"].exclusions) <= set(lists["strict"].exclusions)
    # and so in every fold list: held out, no CV matches 1/strict without 1/broad
    one = _with(settings, cv_repeats=1)
    held = quality.cross_validate(corpus, one.lists, one.scoring).heldout_matches
    for suffix in ("", "@phrase"):
        assert not ((held[f"1/strict{suffix}"] == 1) & (held[f"1/broad{suffix}"] == 0)).any()


def _document(settings, corpus) -> dict:
    validated = quality.cross_validate(corpus, settings.lists, settings.scoring)
    lists = learners.learn(corpus, None, settings.lists, settings.scoring)
    return quality.keyword_lists_document(corpus, lists, validated, settings.lists)


def test_keyword_lists_queries_and_report_lead_with_the_asked_about_category_by_label(settings, document):
    corpus = _interpretability_corpus(settings)
    assert list(document) == ["1", "0"]  # `1` is a category: it leads
    assert document["1"]["broad"]["role"] == "positive" and document["0"]["broad"]["role"] == "complement of 1"
    written = queries.queries_document(document)
    assert Queries.model_validate(written).positive == "1" and list(written["queries"]) == ["1", "0"]
    table = list_quality_table(document, NAMES)
    assert [(row["category"], row["role"]) for row in table] == [("ML expert (1)", "positive")] * 2 + [
        ("not ML expert (0)", "complement of 1")
    ] * 2
    assert list_quality_table(document)[0]["category"] == "1"  # no names: the value alone
    report = _report_md(corpus, document, written)
    lists_part = report[report.index("## Keyword lists") :]
    positive_row, complement_row = "| ML expert (1) | positive |", "| not ML expert (0) | complement of 1 |"
    assert lists_part.index(positive_row) < lists_part.index(complement_row)
    # asked about the other category (--positive / lists.positive), the run, its summary and its report lead with it
    one = _with(settings, cv_repeats=1)
    zero_first = _document(_with(one, positive="0"), corpus)
    assert list(zero_first) == ["0", "1"]
    summary = run_summary(_manifest(corpus), zero_first, None)
    assert [entry["label"] for entry in summary["categories"]] == ["not ML expert (0)", "ML expert (1)"]
    report = _report_md(corpus, zero_first, queries.queries_document(zero_first))
    for part in ("## Summary", "## Counts", "## Keyword lists", "## Search queries"):
        section = report[report.index(part) :]
        assert section.index("not ML expert (0)") < section.index("ML expert (1)"), part
    # labels that are not 0/1: the least frequent category leads
    named = _corpus(settings, corpus.cvs["text"].tolist()[:60], ["expert"] * 40 + ["other"] * 20)
    assert list(_document(one, named)) == ["other", "expert"]


def test_the_list_table_shows_exclusions_and_the_query_s_phrases(document):
    broad = next(
        row
        for row in list_quality_table(document, NAMES)
        if row["category"] == "ML expert (1)" and row["role"] == "positive" and row["list"] == "broad"
    )
    assert broad["exclusions (AND NOT)"] == "sales"
    assert broad["phrases"] == len(document["1"]["broad"]["keywords"])
    assert broad["fold seeds"] == 2 and broad[NEW_SAMPLE_COLUMN].startswith("[")


def test_keyword_lists_carry_the_interval_a_new_sample_will_see(document):
    entry = KeywordLists.model_validate(document).root["1"]["broad"].new_sample
    validated = document["1"]["broad"]["cross_validated"]
    assert entry.cvs == 80 and entry.level == 0.8  # as many CVs as the lists were learned from
    assert entry.balanced_accuracy[0] < validated["balanced_accuracy"]
    assert "fold seeds" in entry.source and "design-selection optimism" in entry.source


def test_the_new_sample_interval_of_the_default_broad_list_holds_what_new_rated_cvs_gave(settings):
    # The default broad list on the 454 rated CVs: cross-validated sensitivity 0.74, specificity 0.86 (fold seeds
    # 42-46, 119 experts of 454). On CVs it never saw: 0.708 on the 91-CV lockbox (24 experts), 0.717 on 119
    # other rated CVs (33 experts; sensitivity 0.515, specificity 0.92). The default design optimism must put both
    # inside the 80 % interval of a sample of their size.
    sensitivities, specificities = [0.74, 0.73, 0.75, 0.72, 0.76], [0.86, 0.87, 0.85, 0.86, 0.86]
    for cvs, seen in ((91, 0.708), (119, 0.717)):
        interval = new_sample_interval(sensitivities, specificities, (119, 335), cvs, settings.lists, "broad")
        low, high = interval["balanced_accuracy"]
        assert low <= seen <= high, (cvs, interval)
    wide = new_sample_interval(sensitivities, specificities, (119, 335), 119, settings.lists, "broad")
    assert wide["sensitivity"][0] <= 0.515 <= wide["sensitivity"][1]
    # the interval without the design optimism (cross-validation's own noise) misses what new CVs gave
    naive = _with(settings, design_optimism={"broad": DesignOptimism()}).lists
    assert (
        new_sample_interval(sensitivities, specificities, (119, 335), 119, naive, "broad")["balanced_accuracy"][0]
        > 0.717
    )


def _manifest(corpus) -> dict:
    """The manifest fields the report reads, for the constructed corpus."""
    counts = {str(k): int(v) for k, v in corpus.cvs["category"].value_counts().items()}
    n = len(corpus.cvs)
    return {
        "run_id": "constructed",
        "input": {"url": "constructed.csv", "sha256": "0" * 64},
        "parameters": {"extraction": {"model": "none"}, "backend": "local", "report": {"category_names": NAMES}},
        "extraction": {"device": "cpu", "keywords": n, "cvs_extracted": 0, "cvs_from_cache": n},
        "ingest": {
            **{"input_rows": n, "cvs": n, "duplicates": 0, "rejected": 0, "repaired_encoding": 0},
            **{"categories": counts, "rejected_by_reason": {}},
        },
        "timings_s": {},
    }


def _report_md(corpus, lists: dict, written: dict) -> str:
    """report.md of the constructed corpus's lists: no keywords scored, no clusters."""
    discriminative = pd.DataFrame(
        columns=["category", "rank", "keyword", "score", "specificity", "frequency", "total_frequency"]
    )
    category_keywords = pd.DataFrame(columns=["category", "keyword", "rate"])
    return markdown(run_document(_manifest(corpus), discriminative, category_keywords, lists, {}, queries=written))
