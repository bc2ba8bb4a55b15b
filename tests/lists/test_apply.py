"""A finished run's keyword lists on real CVs: the run's cross-validated quality, `ml-headcount apply` and the
cv-apply flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows import cli
from ml_headcount.config import ExtractionSettings, IngestSettings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.scoring import discriminative as scoring
from tests.conftest import RATED_CVS


@pytest.fixture(scope="module")
def finished_run(rated_sample_run) -> Path:
    return rated_sample_run


def run_lists(run: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per list, its keywords and its exclusions."""
    lists = json.loads((run / "keyword_lists.json").read_text())
    return {
        f"{c}/{name}": (entry["keywords"], entry["exclusions"])
        for c, by_name in lists.items()
        for name, entry in by_name.items()
    }


@pytest.mark.timeout(2400)  # the first test to use the run waits for its extraction (60 CVs on a busy 2-core CPU)
def test_run_reports_cross_validated_quality_and_heldout_matches(finished_run):
    lists = json.loads((finished_run / "keyword_lists.json").read_text())
    broad = lists["1"]["broad"]
    assert broad["method"] == "selected" and broad["keywords"]
    validated = broad["cross_validated"]
    assert validated["folds"] == 5 and validated["interval"].startswith("80% Wilson")
    assert (
        validated["balanced_accuracy_interval"][0]
        <= validated["balanced_accuracy"]
        <= validated["balanced_accuracy_interval"][1]
    )
    report = (finished_run / "report.md").read_text()
    assert "cross-validated" in report and f"{validated['balanced_accuracy']:.3f}" in report

    heldout = pd.read_parquet(finished_run / "heldout_matches.parquet")
    cvs = pd.read_parquet(finished_run / "cvs.parquet")
    assert list(heldout.columns) == [
        "cv_id",
        "0/strict",
        "0/broad",
        "1/strict",
        "1/broad",
        "0/strict@phrase",
        "0/broad@phrase",
        "1/strict@phrase",
        "1/broad@phrase",
        "0/tfidf",
        "1/tfidf",
    ]
    assert heldout["cv_id"].tolist() == cvs["cv_id"].tolist()
    assert all(heldout[c].dtype == np.int8 and set(heldout[c]) <= {0, 1} for c in heldout.columns[1:])
    expert = cvs["category"] == "1"
    # the held-out matches are the first fold seed's; the reported figure is the mean over the seeds
    seeds = broad["cross_validated_seeds"]
    assert heldout.loc[expert, "1/broad"].mean() == pytest.approx(seeds["product_sensitivity"][0], abs=1e-4)
    assert validated["sensitivity"] == pytest.approx(np.mean(seeds["product_sensitivity"]), abs=1e-3)


def test_apply_cli_matches_the_runs_filter_on_all_rated_cvs(finished_run, tmp_path, capsys):
    output = tmp_path / "matches.parquet"
    assert cli.main(["apply", str(finished_run), str(RATED_CVS), "--output", str(output)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(output)
    matches = pd.read_parquet(output)
    raw = pd.read_csv(RATED_CVS, usecols=["cv_text"])
    assert len(matches) == len(raw) and matches["source_row"].tolist() == list(range(1, len(raw) + 1))
    summary = json.loads(Path(f"{output}.summary.json").read_text())
    assert summary["rows"] == len(raw) and summary["usable"] == len(raw)

    # the run's own filter: scoring's keyword presence on the cleaned CVs, tokenised by the run's extraction settings
    cvs = ingest(str(RATED_CVS), IngestSettings()).cvs
    by_cv = matches.drop_duplicates("cv_id").set_index("cv_id").loc[cvs["cv_id"]]
    lists = run_lists(finished_run)
    assert lists["1/broad"][0] and lists["1/strict"][0]

    def containing(terms: list[str]) -> np.ndarray:
        present = scoring.keyword_counts(cvs["text"].tolist(), sorted(terms), ExtractionSettings()) > 0
        return np.asarray(present.sum(axis=1)).ravel() > 0 if terms else np.zeros(len(cvs), dtype=bool)

    for name, (keywords, exclusions) in lists.items():
        expected = containing(keywords) & ~containing(exclusions)
        assert (by_cv[name].to_numpy() == expected).all(), name
        assert summary["matched"][name] == int(matches[name].sum())
    assert 0 < by_cv["1/broad"].mean() < 1


def test_cv_apply_flow_reproduces_the_runs_in_sample_matches(finished_run, rated_sample_csv):
    from flows.cv_apply import cv_apply

    summary = cv_apply(str(rated_sample_csv), run_reference=str(finished_run))
    output = Path(summary["output"])
    assert output == finished_run.parent.parent / "filtered" / finished_run.name / "rated_sample.matches.parquet"
    lists = json.loads((finished_run / "keyword_lists.json").read_text())
    matches = pd.read_parquet(output).drop_duplicates("cv_id")
    for category, by_name in lists.items():
        for name, entry in by_name.items():
            assert int(matches[f"{category}/{name}"].sum()) == entry["matched_cvs"]


@pytest.mark.parametrize("case", ["missing input", "no text column", "missing run", "bad output"])
def test_apply_bad_input_is_one_line_and_exit_2(finished_run, tmp_path, capsys, case):
    no_text = tmp_path / "no_text.csv"
    pd.DataFrame({"name": ["a"], "title": ["b"]}).to_csv(no_text, index=False)
    arguments = {
        "missing input": [str(finished_run), str(tmp_path / "absent.csv")],
        "no text column": [str(finished_run), str(no_text)],
        "missing run": [str(finished_run.parent / "no-such-run"), str(RATED_CVS)],
        "bad output": [str(finished_run), str(RATED_CVS), "--output", str(tmp_path / "out.xlsx")],
    }[case]
    expected = {
        "missing input": "absent.csv: file not found",
        "no text column": "no text column found",
        "missing run": "no-such-run: no complete run there",
        "bad output": "out.xlsx: output must end in",
    }[case]
    assert cli.main(["apply", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and expected in error, error
