"""Ingestion: formats, column mapping, cleaning, deduplication and every kind of bad row."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ml_headcount.config import IngestSettings
from ml_headcount.corpus.cleaning import clean_text, normalise_labels
from ml_headcount.corpus.ingest import ingest, ingest_table
from ml_headcount.errors import InputError
from tests.conftest import RESUMES

GOOD = "Trained transformer models for machine translation research at a university lab."
OTHER = "Managed enterprise client accounts and grew recurring revenue in retail."


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["profile_summary", "label"])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx", ".jsonl", ".parquet", ""])
def test_every_format_reads_to_the_same_cvs(tmp_path, suffix):
    table = frame([(GOOD, "yes"), (OTHER, "no")])
    path = tmp_path / f"cvs{suffix}"
    if suffix in (".csv", ""):
        table.to_csv(path, index=False)
    elif suffix == ".tsv":
        table.to_csv(path, sep="\t", index=False)
    elif suffix == ".xlsx":
        table.to_excel(path, index=False)
    elif suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True)
    else:
        table.to_parquet(path, index=False)
    result = ingest(str(path), IngestSettings())
    assert result.text_column == "profile_summary" and result.label_column == "label"
    assert result.cvs["category"].tolist() == ["1", "0"]
    assert result.cvs["text"].tolist() == [clean_text(GOOD, IngestSettings()), clean_text(OTHER, IngestSettings())]


def test_parquet_without_extension_is_recognised_by_content(tmp_path):
    path = tmp_path / "export"
    frame([(GOOD, 1), (OTHER, 0)]).to_parquet(path, index=False)
    assert len(ingest(str(path), IngestSettings()).cvs) == 2


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(InputError, match="broken.parquet.*cannot be read as parquet"):
        ingest(str(path), IngestSettings())


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match="nowhere.csv: file not found"):
        ingest(str(tmp_path / "nowhere.csv"), IngestSettings())


def test_no_text_column_names_the_file_and_the_columns_found(tmp_path):
    path = tmp_path / "people.csv"
    pd.DataFrame({"name": ["a"], "category": [1]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"people.csv: no text column found; columns found: \['name', 'category'\]"):
        ingest(str(path), IngestSettings())


def test_configured_column_that_does_not_exist_is_named(tmp_path):
    path = tmp_path / "cvs.csv"
    frame([(GOOD, 1), (OTHER, 0)]).to_csv(path, index=False)
    with pytest.raises(InputError, match="configured text column 'body' not found"):
        ingest(str(path), IngestSettings(text_column="body"))


def test_configured_columns_override_aliases(tmp_path):
    path = tmp_path / "cvs.csv"
    pd.DataFrame({"body": [GOOD, OTHER], "text": ["x", "y"], "group": ["a", "b"]}).to_csv(path, index=False)
    result = ingest(str(path), IngestSettings(text_column="body", label_column="group"))
    assert result.cvs["category"].tolist() == ["a", "b"]


def test_bad_rows_are_set_aside_with_reason_row_and_column(tmp_path):
    path = tmp_path / "cvs.jsonl"
    rows = [
        {"cv_text": GOOD, "category": 1},
        {"cv_text": "   \n ", "category": 0},
        {"cv_text": OTHER, "category": None},
        {"cv_text": ["a", "list"], "category": 1},
        {"cv_text": "12 34 99", "category": 0},
        {"cv_text": "tiny cv", "category": 0},
        {"cv_text": GOOD.upper(), "category": 0},  # same text after lowercasing, other label
        {"cv_text": OTHER, "category": 0},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = ingest(str(path), IngestSettings())
    rejected = result.rejected.set_index("source_row")
    assert rejected.loc[2, "reason"] == "empty text" and rejected.loc[2, "column"] == "cv_text"
    assert rejected.loc[3, "reason"] == "missing label" and rejected.loc[3, "column"] == "category"
    assert rejected.loc[4, "reason"] == "non-text value (list)"
    assert rejected.loc[5, "reason"] == "no letters after cleaning (non-text)"
    assert rejected.loc[6, "reason"].startswith("text shorter than 20 characters")
    assert rejected.loc[7, "reason"] == "duplicate of row 1 with a different label ('1' kept)"
    assert result.cvs["source_row"].tolist() == [1, 8]
    # every input row is accounted for, exactly once
    assert len(result.cvs) + len(result.rejected) == result.input_rows
    assert result.summary()["duplicates"] == 1 and result.summary()["rejected"] == 5


def test_cleaning_repairs_html_encodings_whitespace_and_short_numbers():
    raw = "Led&nbsp;research<br>on   NaÃ¯ve Bayes<br/>for 12 years, since 2015, see https://example.org/x"
    assert clean_text(raw, IngestSettings()) == "led research on naïve bayes for years, since 2015, see"


@pytest.mark.shared_data
def test_double_encoded_resume_set_is_repaired_and_deduplicated():
    result = ingest(str(RESUMES), IngestSettings())
    assert result.duplicates == 796 and len(result.cvs) == 166
    assert result.repaired_encoding > 0
    assert not result.cvs["text"].str.contains("Ã|â¢").any()
    assert result.cvs["category"].nunique() == 25


def test_labels_normalise_binary_spellings_and_keep_multiclass_strings():
    assert normalise_labels(pd.Series(["Yes", "no", "TRUE", "0", 1, None])).tolist() == ["1", "0", "1", "0", "1", ""]
    assert normalise_labels(pd.Series(["HR", "Data Science", "yes"])).tolist() == ["HR", "Data Science", "yes"]


def test_limit_keeps_first_usable_rows(tmp_path):
    path = tmp_path / "cvs.csv"
    frame([("", 1), (GOOD, 1), (OTHER, 0), (GOOD + " again", 1)]).to_csv(path, index=False)
    result = ingest(str(path), IngestSettings(limit=2))
    assert result.cvs["source_row"].tolist() == [2, 3]


def test_a_single_category_fails_with_the_file_and_column(tmp_path):
    path = tmp_path / "one.csv"
    frame([(GOOD, 1), (OTHER, 1)]).to_csv(path, index=False)
    with pytest.raises(InputError, match="one.csv: column 'label' yields 1 usable categories"):
        ingest(str(path), IngestSettings())


def test_profile_text_is_a_text_column():
    table = pd.DataFrame(
        {
            "profile_text": [
                "Machine learning researcher training neural networks",
                "Sales manager negotiating enterprise contracts",
            ],
            "category": ["1", "0"],
        }
    )
    cvs = ingest_table(table, "profiles.csv", IngestSettings()).cvs
    assert cvs["text"].tolist() == [
        "machine learning researcher training neural networks",
        "sales manager negotiating enterprise contracts",
    ]


def test_reading_a_csv_leaves_the_process_as_it_was(tmp_path):
    """The csv module's field limit is raised while a CSV is read (a long cell is read, then rejected as too long)
    and restored after: other code in the process, a user's own csv reader say, keeps its own limit."""
    import csv

    path = tmp_path / "cvs.csv"
    path.write_text(
        "cv_text,category\n"
        + "".join(
            f"machine learning researcher {i} training deep models,1\nsales manager {i} for accounts,0\n"
            for i in ("vision", "speech", "robotics")
        )
    )
    before = csv.field_size_limit()
    assert ingest(str(path), IngestSettings(max_text_chars=200_000)).summary()["cvs"] == 6
    assert csv.field_size_limit() == before


def test_importing_ingest_changes_nothing_in_the_process():
    """No decoding error handler is registered and no csv limit is set by importing the module: only a process that
    reads such a file registers the handler, and only while it reads is the limit raised."""
    import subprocess
    import sys

    code = (
        "import codecs, csv; limit = csv.field_size_limit(); import ml_headcount.corpus.ingest\n"
        "try:\n    codecs.lookup_error('ml-headcount-cp1252-fallback'); print('registered')\n"
        "except LookupError:\n    print('not registered')\n"
        "print(csv.field_size_limit() == limit)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["not", "registered", "True"]
