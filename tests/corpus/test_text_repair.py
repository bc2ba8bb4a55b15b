"""The fast path of text repair equals ftfy.fix_text on every real CV and on crafted edge cases."""

from __future__ import annotations

import html
import re

import ftfy
import pandas as pd
import pytest

from ml_headcount.config import IngestSettings
from ml_headcount.corpus import text_repair
from ml_headcount.corpus.cleaning import clean_text
from tests.conftest import RATED_CVS, RESUMES

EDGE_CASES = [
    "it’s a “quote” – naïve café\r\nnext line",  # fast path: quotes uncurled, line breaks unified
    "résumé with mojibake: cafÃ© and â€œquotesâ€\x9d",  # encoding fix
    "Ã at a line start\nÃ then more",  # the branch anchored at a line's start
    "ligature ﬁnance and ｆｕｌｌ width",  # other fixers
    "entity &amp; R&D and AT&T’s",
    "combining e\u0301 accent and • bullets “x”",  # NFC makes é: checked again
    "control\x07char and ‘single’",
]


@pytest.mark.shared_data
@pytest.mark.parametrize("path,column", [(RATED_CVS, "cv_text"), (RESUMES, "Resume")])
def test_repair_equals_ftfy_on_real_cvs(path, column):
    texts = pd.read_csv(path, usecols=[column])[column].dropna().astype(str).tolist()
    assert [text_repair.repair(t) for t in texts] == [ftfy.fix_text(t) for t in texts]


def test_repair_equals_ftfy_on_edge_cases():
    for text in EDGE_CASES:
        assert text_repair.repair(text) == ftfy.fix_text(text), text
    assert text_repair.may_hold_mojibake("cafÃ© au lait") and not text_repair.may_hold_mojibake("café • “quoted”")


@pytest.mark.shared_data
def test_most_rated_cvs_take_the_fast_path():
    texts = pd.read_csv(RATED_CVS, usecols=["cv_text"])["cv_text"].dropna().tolist()
    fast = [
        t
        for t in texts
        if not t.isascii() and text_repair.repair(t) == text_repair.fixes.uncurl_quotes(t).replace("\r\n", "\n")
    ]
    assert len(fast) > 0.8 * len(texts)


def study_cleaning(raw: str) -> str:
    """The cleaning as first written: every step applied to every text."""
    text = re.sub(r"<[^>]{0,200}>", " ", html.unescape(ftfy.fix_text(raw)))
    text = re.sub(r"(?:https?://|www\.)\S+", " ", text, flags=re.IGNORECASE).lower()
    text = re.sub(r"(?<![\w.])\d{1,2}(?![\w.])", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.shared_data
def test_clean_text_equals_the_plain_cleaning_on_real_cvs():
    texts = pd.read_csv(RATED_CVS, usecols=["cv_text"])["cv_text"].dropna().tolist()
    texts += pd.read_csv(RESUMES, usecols=["Resume"])["Resume"].drop_duplicates().tolist()
    texts += EDGE_CASES + [
        "x12 12x _12 12_ .12 12. (12) 123 9 ١٢",
        "WWW.Example.com and HTTPS://a.b/c?d",
        "\u00a0a\u2003b\x1cc\x85 ",
    ]
    settings = IngestSettings()
    assert [clean_text(t, settings) for t in texts] == [study_cleaning(t) for t in texts]
