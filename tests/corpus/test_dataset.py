"""The registered dataset: append-only, deduplicated across files and runs, every file processed once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ml_headcount.config import InboxSettings, IngestSettings, StorageSettings
from ml_headcount.corpus.dataset import Inbox, RegisteredDataset, register_file
from ml_headcount.corpus.ingest import ingest
from ml_headcount.io.storage import ArtifactStore

ML = [
    "Machine learning researcher training deep neural networks in PyTorch.",
    "Research scientist working on transformers and reinforcement learning.",
    "PhD in machine learning, generative models and deep learning theory.",
]
SALES = [
    "Sales manager for enterprise accounts, negotiating contracts and quotas.",
    "Account executive growing the revenue pipeline with key clients.",
]


@pytest.fixture
def inbox_dir(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def make(tmp_path: Path, inbox_dir: Path, quarantine: str | None = "quarantine") -> tuple[Inbox, RegisteredDataset]:
    storage = StorageSettings(url=str(tmp_path / "artifacts"))
    inbox = Inbox(InboxSettings(url=str(inbox_dir), quarantine=quarantine), storage)
    return inbox, RegisteredDataset(ArtifactStore(storage), "cvs")


def drop(inbox_dir: Path, name: str, rows: list[tuple[str, str]]) -> None:
    pd.DataFrame(rows, columns=["cv_text", "category"]).to_csv(inbox_dir / name, index=False)


def ingest_inbox(inbox: Inbox, dataset: RegisteredDataset, ingestion_id: str) -> list:
    return [register_file(dataset, inbox, f, IngestSettings(), ingestion_id) for f in dataset.pending(inbox)]


def test_cvs_are_deduplicated_within_and_across_files_and_runs(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (ML[1], "ml"), (ML[0].upper(), "ml"), (SALES[0], "sales")])
    drop(inbox_dir, "b.csv", [(ML[1], "ml"), (SALES[1], "sales")])
    first = ingest_inbox(inbox, dataset, "run-1")
    assert [(o.registered, o.duplicates) for o in first] == [(3, 1), (1, 1)]

    drop(inbox_dir, "c.csv", [(SALES[0], "ml"), (ML[2], "ml")])  # a later run: one CV known, with another label
    (second,) = ingest_inbox(inbox, dataset, "run-2")
    assert (second.registered, second.duplicates) == (1, 1)

    cvs = dataset.cvs()
    assert len(cvs) == cvs["text_hash"].nunique() == 5
    assert cvs.set_index("source_file")["ingestion_id"].to_dict() == {
        str(inbox_dir / "a.csv"): "run-1",
        str(inbox_dir / "b.csv"): "run-1",
        str(inbox_dir / "c.csv"): "run-2",
    }
    reasons = dataset.rejected().set_index(["source_file", "source_row"])["reason"]
    assert reasons[(str(inbox_dir / "a.csv"), 3)] == "duplicate of row 1"
    assert reasons[(str(inbox_dir / "b.csv"), 1)] == f"already registered from {inbox_dir / 'a.csv'} row 2"
    assert reasons[(str(inbox_dir / "c.csv"), 1)].endswith("with a different label ('sales' kept)")


def test_a_file_is_recorded_once_and_never_ingested_twice(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (SALES[0], "sales")])
    ingest_inbox(inbox, dataset, "run-1")

    assert dataset.pending(inbox) == []
    assert ingest_inbox(inbox, dataset, "run-2") == []
    files = dataset.files()
    assert files[["file", "status", "registered"]].to_dict("records") == [
        {"file": str(inbox_dir / "a.csv"), "status": "registered", "registered": 2}
    ]
    assert len(dataset.cvs()) == 2


def test_a_changed_file_is_noticed_and_only_its_new_cvs_appended(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (SALES[0], "sales")])
    ingest_inbox(inbox, dataset, "run-1")
    first_sha256 = dataset.files()["sha256"].iloc[0]

    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (ML[1], "ml")])  # one row kept, one replaced
    (pending,) = dataset.pending(inbox)
    assert pending.changed_from == first_sha256
    (outcome,) = ingest_inbox(inbox, dataset, "run-2")

    assert (outcome.registered, outcome.duplicates, outcome.changed_from) == (1, 1, first_sha256)
    # append-only: the row the new version dropped stays registered
    assert sorted(dataset.cvs()["text"]) == sorted(t.lower() for t in [ML[0], SALES[0], ML[1]])
    assert dataset.files()["file"].tolist() == [str(inbox_dir / "a.csv")] * 2


def test_a_malformed_file_is_quarantined_and_does_not_block_the_others(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "good.csv", [(ML[0], "ml"), (SALES[0], "sales")])
    (inbox_dir / "bad.csv").write_text("name,age\nalice,30\n")
    (inbox_dir / ".partial-upload.csv").write_text("not yet complete")

    outcomes = {Path(o.file).name: o for o in ingest_inbox(inbox, dataset, "run-1")}

    assert set(outcomes) == {"bad.csv", "good.csv"}
    assert outcomes["good.csv"].registered == 2
    bad = outcomes["bad.csv"]
    assert bad.status == "quarantined" and "no text column found" in bad.error
    moved = inbox_dir / "quarantine" / "run-1" / "bad.csv"
    assert bad.moved_to == str(moved) and moved.exists() and not (inbox_dir / "bad.csv").exists()
    assert "no text column found" in (moved.parent / "bad.csv.reason.txt").read_text()
    assert dataset.pending(inbox) == []  # the quarantine folder is not an input


def test_without_quarantine_a_malformed_file_is_reported_once_and_left_in_place(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir, quarantine=None)
    (inbox_dir / "bad.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")

    (outcome,) = ingest_inbox(inbox, dataset, "run-1")

    assert outcome.status == "quarantined" and outcome.moved_to == "" and "cannot be read as xlsx" in outcome.error
    assert (inbox_dir / "bad.xlsx").exists()
    assert dataset.pending(inbox) == []


def test_rejected_rows_are_kept_with_reasons_and_their_source(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(ML[0], "ml"), ("", "ml"), ("too short", "ml"), (SALES[0], "")])

    (outcome,) = ingest_inbox(inbox, dataset, "run-1")

    assert (outcome.rows, outcome.registered, outcome.rejected) == (4, 1, 3)
    rejected = dataset.rejected()
    assert rejected[["source_row", "reason", "ingestion_id"]].to_dict("records") == [
        {"source_row": 2, "reason": "empty text", "ingestion_id": "run-1"},
        {"source_row": 3, "reason": "text shorter than 20 characters after cleaning", "ingestion_id": "run-1"},
        {"source_row": 4, "reason": "missing label", "ingestion_id": "run-1"},
    ]
    assert rejected["source_file"].unique().tolist() == [str(inbox_dir / "a.csv")]
    assert rejected["raw_text"].iloc[1] == "too short"


def test_an_interrupted_registration_is_redone_without_double_counting(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (SALES[0], "sales"), ("", "ml")])
    ingest_inbox(inbox, dataset, "run-1")
    (tmp_path / "artifacts" / dataset.files_key).unlink()  # as if the run had died before recording the file

    (retried,) = ingest_inbox(inbox, dataset, "run-2")

    assert (retried.registered, retried.duplicates) == (2, 0)
    assert len(dataset.cvs()) == 2 and len(dataset.rejected()) == 1


def test_the_keyword_flow_reads_the_dataset_with_the_core_ingestion_code(tmp_path, inbox_dir):
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(t, "ml") for t in ML] + [(t, "sales") for t in SALES])
    ingest_inbox(inbox, dataset, "run-1")

    result = ingest(dataset.location, IngestSettings())

    assert (result.text_column, result.label_column) == ("text", "category")
    assert result.cvs["cv_id"].tolist() == dataset.cvs()["cv_id"].tolist()
    assert len(result.rejected) == 0


def test_inbox_and_dataset_in_s3(bucket, s3_endpoint):
    import s3fs

    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    table = pd.DataFrame({"cv_text": ML[:2] + SALES[:1], "category": ["ml", "ml", "sales"]})
    s3.pipe(f"{bucket}/inbox/a.csv", table.to_csv(index=False).encode())
    s3.pipe(f"{bucket}/inbox/bad.csv", b"name,age\nalice,30\n")
    storage = StorageSettings(url=f"s3://{bucket}/ml")
    inbox = Inbox(InboxSettings(url=f"s3://{bucket}/inbox"), storage)
    dataset = RegisteredDataset(ArtifactStore(storage), "cvs")

    outcomes = {Path(o.file).name: o for o in ingest_inbox(inbox, dataset, "run-1")}

    assert outcomes["a.csv"].registered == 3 and outcomes["a.csv"].file == f"s3://{bucket}/inbox/a.csv"
    assert outcomes["bad.csv"].moved_to == f"s3://{bucket}/inbox/quarantine/run-1/bad.csv"
    assert sorted(s3.find(f"{bucket}/inbox")) == [
        f"{bucket}/inbox/a.csv",
        f"{bucket}/inbox/quarantine/run-1/bad.csv",
        f"{bucket}/inbox/quarantine/run-1/bad.csv.reason.txt",
    ]
    assert dataset.pending(inbox) == []
    assert dataset.location == f"s3://{bucket}/ml/datasets/cvs/cvs.parquet"
    assert len(ingest(dataset.location, IngestSettings(), ArtifactStore(storage).options).cvs) == 3


def test_glob_named_files_in_s3_are_quarantined_by_exact_key_and_the_others_registered(bucket, s3_endpoint):
    import s3fs

    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    good = pd.DataFrame({"cv_text": ML[:2] + SALES[:1], "category": ["ml", "ml", "sales"]}).to_csv(index=False).encode()
    s3.pipe(f"{bucket}/inbox/good.csv", good)
    s3.pipe(
        f"{bucket}/inbox/other.csv",
        pd.DataFrame({"cv_text": [ML[2], SALES[1]], "category": ["ml", "sales"]}).to_csv(index=False).encode(),
    )
    s3.pipe(f"{bucket}/inbox/*.csv", b"name,age\nalice,30\n")  # malformed, and named like a glob
    s3.pipe(f"{bucket}/inbox/[bad].csv", b"name,age\nbob,40\n")
    storage = StorageSettings(url=f"s3://{bucket}/ml")
    inbox = Inbox(InboxSettings(url=f"s3://{bucket}/inbox"), storage)
    dataset = RegisteredDataset(ArtifactStore(storage), "cvs")

    outcomes = {Path(o.file).name: o for o in ingest_inbox(inbox, dataset, "run-1")}

    assert {n: o.status for n, o in outcomes.items()} == {
        "*.csv": "quarantined",
        "[bad].csv": "quarantined",
        "good.csv": "registered",
        "other.csv": "registered",
    }
    assert outcomes["good.csv"].registered == 3 and outcomes["other.csv"].registered == 2
    assert sorted(s3.find(f"{bucket}/inbox")) == sorted(
        [f"{bucket}/inbox/good.csv", f"{bucket}/inbox/other.csv"]
        + [
            f"{bucket}/inbox/quarantine/run-1/{n}{suffix}"
            for n in ("*.csv", "[bad].csv")
            for suffix in ("", ".reason.txt")
        ]
    )
    assert ingest_inbox(inbox, dataset, "run-2") == []  # the next hourly run finds nothing to do, and does not fail


def failing_to_read(monkeypatch, name: str, error: Exception) -> None:
    """Reading the inbox file `name` raises `error` (a fault, not bad content); the other files read as usual."""
    from ml_headcount.corpus import dataset as dataset_module

    real = dataset_module.ingest_file

    def ingest_file(url, *args, **kwargs):
        if url.endswith(name):
            raise error
        return real(url, *args, **kwargs)

    monkeypatch.setattr(dataset_module, "ingest_file", ingest_file)


def test_a_file_whose_registration_fails_does_not_stop_the_others(tmp_path, inbox_dir, monkeypatch):
    """Not malformed, but failing (here: out of memory while parsing): not quarantined, left for the next ingestion."""
    inbox, dataset = make(tmp_path, inbox_dir)
    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (SALES[0], "sales")])
    drop(inbox_dir, "huge.csv", [(ML[1], "ml"), (SALES[1], "sales")])
    failing_to_read(monkeypatch, "huge.csv", MemoryError("simulated"))
    results = {}
    for file in dataset.pending(inbox):
        try:
            results[file.key] = register_file(dataset, inbox, file, IngestSettings(), "run-1").status
        except MemoryError:
            results[file.key] = "failed"
    assert results == {"a.csv": "registered", "huge.csv": "failed"}
    assert (inbox_dir / "huge.csv").exists() and not (inbox_dir / "quarantine").exists()
    assert [f.key for f in dataset.pending(inbox)] == ["huge.csv"]


def test_unsafe_dataset_names_are_refused(tmp_path):
    from ml_headcount.errors import InputError

    for name in ["..", ".", "a/b", ""]:
        with pytest.raises(InputError, match="invalid dataset name"):
            RegisteredDataset(ArtifactStore(StorageSettings(url=str(tmp_path))), name)


def test_the_ingestion_flow_registers_the_other_files_when_one_fails(prefect_harness, tmp_path, inbox_dir, monkeypatch):
    from flows.cv_ingestion import cv_ingestion
    from ml_headcount.config import Settings

    drop(inbox_dir, "a.csv", [(ML[0], "ml"), (SALES[0], "sales")])
    drop(inbox_dir, "b.csv", [(ML[1], "ml"), (SALES[1], "sales")])
    (inbox_dir / "c.csv").write_text("name,age\nalice,30\n")
    failing_to_read(monkeypatch, "a.csv", KeyError("simulated bug"))
    settings = Settings(storage={"url": str(tmp_path / "artifacts")}, inbox={"url": str(inbox_dir)})

    with pytest.raises(RuntimeError, match="1 of 3 inbox files could not be registered"):
        cv_ingestion(settings, keywords_deployment=None)

    _, dataset = make(tmp_path, inbox_dir)
    assert dict(zip(dataset.files()["file"].map(lambda f: Path(f).name), dataset.files()["status"])) == {
        "b.csv": "registered",
        "c.csv": "quarantined",
    }
    assert len(dataset.cvs()) == 2 and (inbox_dir / "a.csv").exists()
