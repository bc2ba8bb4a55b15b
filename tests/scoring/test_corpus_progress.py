"""Scoring a run's CVs says its CVs done, CVs/s and ETA while it runs (issue 21), as extraction does."""

from __future__ import annotations

import threading

import pandas as pd

from ml_headcount.config import ExtractionSettings, ScoringSettings
from ml_headcount.scoring.corpus import corpus_scores

TEXTS = {"1": "deep learning research on neural networks", "0": "sales manager for retail accounts"}


def test_each_scoring_pass_reports_cvs_rate_and_eta_while_it_runs():
    cvs = pd.DataFrame({"cv_id": [f"cv{i}" for i in range(12)], "category": ["1", "0"] * 6})
    cvs["text"] = cvs["category"].map(TEXTS)
    keywords = pd.DataFrame(
        [
            (cv, keyword, 0.5)
            for cv, category in zip(cvs["cv_id"], cvs["category"])
            for keyword in TEXTS[category].split()[:3]
        ],
        columns=["cv_id", "keyword", "score"],
    )
    lines: list[str] = []
    heard_mid_pass = threading.Event()

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith("scoring, pass 2/2") and "CVs/s, ETA" in line:
            heard_mid_pass.set()

    def cv_batches():
        for start in range(0, len(cvs), 4):
            if start == 8:  # two batches counted, one to go: the heartbeat (every 10 ms) must say so meanwhile
                assert heard_mid_pass.wait(timeout=30), lines
            yield cvs.iloc[start : start + 4][["text", "category"]]

    keyword_batches = (keywords.iloc[i : i + 5] for i in range(0, len(keywords), 5))  # a CV's rows straddle batches
    stats, discriminative = corpus_scores(
        cv_batches(),
        keyword_batches,
        cvs.set_index("cv_id")["category"],
        ExtractionSettings(),
        ScoringSettings(),
        workers=1,
        log=log,
        every=0.01,
    )
    assert not discriminative.empty
    mid_pass = next(line for line in lines if line.startswith("scoring, pass 2/2") and "ETA" in line)
    assert mid_pass.startswith("scoring, pass 2/2 (keywords in the texts): 8/12 CVs after ")
    last = {line.split(":")[0]: line for line in lines}  # each pass's last line: its count and rate
    assert list(last) == ["scoring, pass 1/2 (extracted keywords)", "scoring, pass 2/2 (keywords in the texts)"]
    assert all(": 12/12 CVs after " in line and "CVs/s" in line and "ETA" not in line for line in last.values())
