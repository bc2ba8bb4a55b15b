"""Small and degenerate tables through a whole run: an optional stage that cannot work on them is skipped with its
reason, and the run still gives its lists (real model, real temporary Prefect server)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from flows.cv_apply import cv_apply
from flows.cv_keywords import cv_keywords
from ml_headcount.config import load_settings


def _unshared_words_table(path: Path) -> Path:
    """12 CVs, 6 per category, no word in two of them: no TF-IDF term survives min_df 2, in any fold."""
    rng = random.Random(1)
    words = iter(
        sorted(
            {"".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(4)) for _ in range(400)}
        )
    )
    texts = [" ".join(next(words) for _ in range(12)) for _ in range(12)]
    pd.DataFrame({"cv_text": texts, "category": [1, 0] * 6}).to_csv(path, index=False)
    return path


def test_a_twelve_cv_table_without_shared_words_runs_whole_and_says_why_it_has_no_classifier(prefect_harness, tmp_path):
    table = _unshared_words_table(tmp_path / "twelve.csv")
    settings = load_settings(storage={"url": str(tmp_path / "artifacts")})
    assert settings.lists.text_classifier  # the default that made such tables fail

    run = Path(cv_keywords(str(table), settings=settings))

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["ingest"]["cvs"] == 12
    classifier = json.loads((run / "text_classifier.json").read_text())
    assert "no term is in 2 or more" in classifier["skipped"]
    report = (run / "report.md").read_text()
    assert "Not learned from these 12 CVs: " in report
    for artifact in ("keyword_lists.json", "queries.json", "clusters.json", "report.html", "top_keywords.png"):
        assert (run / artifact).stat().st_size > 0, artifact

    # applying the run's lists works without a classifier: its columns are the lists' alone
    summary = cv_apply(str(table), run.name, str(tmp_path / "matches.csv"), settings=settings)
    assert summary["rows"] == 12
    assert not any(name.endswith("/tfidf") for name in summary["matched"])
