"""The cleaning rules: one function per rule, used by runs, by `apply` and by the headcount's keyword annotators
alike, so a text is cleaned, rejected, hashed and labelled the same way wherever it is read."""

from __future__ import annotations

import hashlib
import html
import re

import pandas as pd

from ml_headcount.config import IngestSettings
from ml_headcount.corpus import text_repair
from ml_headcount.io.tables import CONTROL, is_missing

_BINARY_LABELS = {
    "1": "1",
    "0": "0",
    "1.0": "1",
    "0.0": "0",
    "yes": "1",
    "no": "0",
    "y": "1",
    "n": "0",
    "true": "1",
    "false": "0",
}

_TAG = re.compile(r"<[^>]{0,200}>")

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)

# a 1-2 digit number not touching a word character or a dot; written to start with \d so re scans for digits
_SHORT_NUMBER = re.compile(r"\d(?<=(?<![\w.])\d)\d?(?![\w.])")

_LETTER = re.compile(r"[^\W\d_]")


def clean_text(raw: str, settings: IngestSettings) -> str:
    """Repair encodings, strip HTML, URLs and control characters, apply the study's normalisation."""
    text = text_repair.repair(raw)  # = ftfy.fix_text(raw), fast where ftfy would only uncurl quotes
    text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "://" in text or "www." in text.lower():  # every URL match holds one of them
        text = _URL.sub(" ", text)
    text = CONTROL.sub(" ", text)
    if settings.lowercase:
        text = text.lower()
    if settings.drop_short_numbers:
        text = _SHORT_NUMBER.sub(" ", text)
    return " ".join(text.split())  # str.split's whitespace is re's \s: runs become one space, ends stripped


def raw_text_problem(raw_text, settings: IngestSettings) -> str | None:
    """Why a raw cell cannot be a CV text, or None: one rule for runs and for `apply`."""
    if is_missing(raw_text) or (isinstance(raw_text, str) and not raw_text.strip()):
        return "empty text"
    if not isinstance(raw_text, str):
        return f"non-text value ({type(raw_text).__name__})"
    if len(raw_text) > settings.max_text_chars:
        return f"text longer than {settings.max_text_chars} characters (ingest.max_text_chars)"
    return None


def clean_text_problem(text: str, settings: IngestSettings) -> str | None:
    """Why a cleaned text cannot be used, or None."""
    if not _LETTER.search(text):
        return "no letters after cleaning (non-text)"
    if len(text) < settings.min_text_chars:
        return f"text shorter than {settings.min_text_chars} characters after cleaning"
    return None


def text_hash(text: str) -> str:
    """The sha256 of a cleaned text: what deduplication compares."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cv_id(text_hash: str) -> str:
    """A CV's id: the first 16 hex digits of its cleaned text's sha256, so the same text has the same id in every
    run, dataset and profile table."""
    return text_hash[:16]


def same_label(first: str, second: str) -> bool:
    """Whether two raw labels say the same, yes/no spellings aside ("Yes" and "1" do)."""
    return _BINARY_LABELS.get(first.lower(), first) == _BINARY_LABELS.get(second.lower(), second)


def normalise_labels(raw: pd.Series) -> pd.Series:
    """0/1, yes/no, true/false become "1"/"0"; any other strings are categories as given."""
    as_text = raw.map(lambda v: "" if is_missing(v) else str(v).strip())
    present = set(as_text[as_text != ""].str.lower())
    if present and present <= set(_BINARY_LABELS):
        return as_text.map(lambda v: _BINARY_LABELS.get(v.lower(), ""))
    return as_text
