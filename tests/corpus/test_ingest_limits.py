"""What one input can cost: memory bounded by settings, a bad row costing its row, nothing retried that cannot heal.

The files here are small; each shows that a bound holds (a setting with a stated default in
ml_headcount/config/), not how much a bomb would have cost without it. docs/bad-input.md lists them.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from ml_headcount.config import InboxSettings, IngestSettings, StorageSettings
from ml_headcount.corpus.dataset import Inbox, RegisteredDataset, register_file
from ml_headcount.corpus.ingest import ingest, ingest_file
from ml_headcount.errors import InputChangedError, InputError
from ml_headcount.io.storage import ArtifactStore
from tasks.policies import is_transient
from tests.conftest import REPO
from tests.test_bad_input import ML, OTHER, csv_text

# a CV whose 1,000-character raw text a rejected row keeps, repeated: each copy is a duplicate
LONG = ML[0] + " " + " ".join(f"publication on topic {chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(40))


def test_every_bound_is_a_setting_with_a_stated_default():
    fields = IngestSettings.model_fields
    for name, default in {
        "max_columns": 1000,
        "max_whole_file_bytes": 256 * 2**20,
        "max_xlsx_bytes": 256 * 2**20,
        "chunk_rows": 10_000,
        "max_text_chars": 100_000,
        "max_row_chars": 2_000_000,
        "chunk_bytes": 64 * 2**20,
    }.items():
        assert fields[name].default == default and fields[name].description, name


PEAK_OF_INGEST = """
import sys, tracemalloc
from pathlib import Path
import pyarrow as pa
from ml_headcount.config import IngestSettings
from ml_headcount.corpus.ingest import ingest
tracemalloc.start()
result = ingest(sys.argv[1], IngestSettings(chunk_rows=2000), spill=Path(sys.argv[2]) if sys.argv[2] else None)
assert result.duplicates == 60_000
print(tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory())
"""


def peak_of_ingest(path: Path, spill: Path | None) -> int:
    """The peak memory a fresh process allocates while it ingests `path` (bytes): Python's heap (tracemalloc) plus
    Arrow's pool (pandas keeps strings there)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_OF_INGEST, str(path), str(spill or "")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def test_duplicate_rows_are_spilled_not_accumulated(tmp_path):
    """60,000 duplicates (a 0.1 MB .csv.gz) whose rejected rows keep 60 MB of raw text: spilled to disk a chunk at a
    time, they cost a few MB of peak memory; kept in memory (no spill given), all of it."""
    rows = [(LONG, "1"), (OTHER[0], "0")] + [(LONG, "1")] * 60_000
    path = tmp_path / "dups.csv.gz"
    path.write_bytes(gzip.compress(csv_text(rows).encode()))
    kept_text = 60_000 * 1000
    spilled, in_memory = peak_of_ingest(path, tmp_path / "cvs.parquet"), peak_of_ingest(path, None)
    assert spilled < kept_text / 2 and in_memory - spilled > 0.8 * kept_text, (spilled, in_memory)

    result = ingest(str(path), IngestSettings(chunk_rows=2000), spill=tmp_path / "again.parquet")
    assert (tmp_path / "again.rejected.parquet").exists() and sum(
        len(b) for b in result.rejected_rows.batches()
    ) == 60_000
    assert result.rejected["raw_text"].str.len().eq(1000).all() and result.summary()["cvs"] == 2


def test_a_header_past_the_column_cap_costs_nothing_like_its_width_in_rows(tmp_path):
    """The audit's 1-million-column header: refused as soon as it is read, before any row is padded to it."""
    path = tmp_path / "wide.csv"
    path.write_text(
        ",".join(["cv_text", "category", *(f"c{i}" for i in range(1_000_000))])
        + "\n"
        + "".join(f"{ML[0]} {i},1\n" for i in range(200))
    )
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"the header has 1,000,002 columns, over ingest.max_columns \(1,000\)"):
            ingest(str(path), IngestSettings(max_row_chars=10**8))  # the 8 MB header is no longer a row too long
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300e6, f"peak {peak / 1e6:.0f} MB (the audit measured 5.1 GB)"


def test_the_whole_file_cap_stops_reading_at_the_cap(tmp_path):
    """A zipped Parquet that inflates to ~100 MB is refused after reading the cap, in a few MB of memory."""
    import io
    import zipfile

    table = pd.DataFrame({"cv_text": [f"{i:05d}" + "x" * 100_000 for i in range(1000)], "category": ["1"] * 1000})
    buffer = io.BytesIO()
    table.to_parquet(buffer, compression=None, use_dictionary=False)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cvs.parquet", buffer.getvalue())
    assert path.stat().st_size < 1e6 < 1e8 < len(buffer.getvalue())
    with pytest.raises(InputError, match="decompresses to more than 1,000,000 bytes") as raised:
        ingest(str(path), IngestSettings(max_whole_file_bytes=1_000_000))
    assert "ingest.max_whole_file_bytes" in str(raised.value)


def test_a_json_file_nested_too_deeply_is_quarantined_not_retried(tmp_path):
    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    (inbox_dir / "deep.json").write_text("[" * 200_000)
    storage = StorageSettings(url=str(tmp_path / "artifacts"))
    inbox = Inbox(InboxSettings(url=str(inbox_dir)), storage)
    dataset = RegisteredDataset(ArtifactStore(storage), "cvs")
    (pending,) = dataset.pending(inbox)
    outcome = register_file(dataset, inbox, pending, IngestSettings(), "run-1")
    assert outcome.status == "quarantined" and "nested too deeply" in outcome.error
    assert (inbox_dir / "quarantine" / "run-1" / "deep.json").exists() and dataset.pending(inbox) == []


class _State:
    def __init__(self, error):
        self.data = error


@pytest.mark.parametrize(
    "error, transient",
    [
        (MemoryError(), False),
        (RecursionError(), False),
        (OSError("connection reset"), True),
        (TimeoutError(), True),
    ],
)
def test_memory_and_recursion_errors_are_not_retried(error, transient):
    assert is_transient(None, None, _State(error)) is transient


def test_a_file_appended_to_while_it_is_read_is_refused_not_recorded_under_the_wrong_digest(tmp_path, monkeypatch):
    import ml_headcount.corpus.ingest as ingest_module

    path = tmp_path / "growing.csv"
    path.write_text(csv_text())
    hashed = ingest_module.stream_sha256

    def hash_then_append(handle):
        digest = hashed(handle)
        with open(path, "a") as appending:
            appending.write(f"{OTHER[1]} appended,0\n")
        return digest

    monkeypatch.setattr(ingest_module, "stream_sha256", hash_then_append)
    with pytest.raises(InputChangedError, match="changed while it was read"):
        ingest(str(path), IngestSettings())
    monkeypatch.setattr(ingest_module, "stream_sha256", hashed)
    assert ingest(str(path), IngestSettings()).summary()["cvs"] == 5


def test_values_right_of_the_last_header_cell_of_a_sheet_are_not_columns(tmp_path):
    """An XLSX sheet formatted far to the right (its dimension 16,384 columns wide) is read by its header's width."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["cv_text", "category"])
    for text, label in [(ML[0], "1"), (OTHER[0], "0")]:
        sheet.append([text, label])
    sheet.cell(row=1, column=16_000).value = None
    sheet.cell(row=2, column=16_000).number_format = "0.00"
    path = tmp_path / "formatted.xlsx"
    book.save(path)
    assert ingest(str(path), IngestSettings()).summary()["cvs"] == 2


def _gzip_csv_with_one_long_line(path: Path, chars: int) -> None:
    """A .csv.gz (a few MB) whose last line, without a newline, is `chars` characters: written in pieces."""
    piece = "word " * (2**20 // 5)
    with gzip.open(path, "wt", compresslevel=1) as out:
        out.write(f"cv_text,category\n{ML[0]},1\n")
        for _ in range(chars // len(piece)):
            out.write(piece)
        out.write(",0")


def _parquet_with_one_large_cell(path: Path, chars: int) -> None:
    """A zstd Parquet (a few KB) whose second row's text is `chars` characters, in a row group of its own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"cv_text": [ML[0], "x" * chars], "category": ["1", "0"]})
    pq.write_table(table, path, compression="zstd", row_group_size=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, write", [("long.csv.gz", _gzip_csv_with_one_long_line), ("cell.parquet", _parquet_with_one_large_cell)]
)
def test_a_compressed_row_of_hundreds_of_mb_is_rejected_without_being_held(name, write, tmp_path):
    """A 256 MB row inside a small file is rejected before it is inflated: `run`'s peak RSS (the ~310 MB a run costs
    before it reads a row) stays under 450 MB; it was 0.9 GB (.csv.gz, 300 MB line) and 1.5 GB (Parquet)."""
    path = tmp_path / name
    write(path, 256 * 2**20)
    assert path.stat().st_size < 5e6
    env = dict(os.environ, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "flows.cli", "run", str(path), "--storage-url", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    errors = [line for line in done.stderr.splitlines() if line.startswith("ml-headcount: error:")]
    assert done.returncode == 2 and errors == [
        f"ml-headcount: error: {path}: column 'category' yields 1 usable categories (['1']) after cleaning; "
        "at least 2 are needed to find discriminative keywords"
    ], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert peak_kb < 450_000, f"peak RSS {peak_kb / 1000:.0f} MB"


def test_a_row_over_max_row_chars_costs_that_row_only(tmp_path):
    """A CSV line, a quoted record over several lines and a JSONL line, each over ingest.max_row_chars, are rejected
    as their rows; every later row is read and keeps its number."""
    settings = IngestSettings(max_row_chars=2000)
    long = "long words " * 500
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text(
        f'cv_text,category\n{ML[0]},1\n{long},1\n"{ML[1]}\n{long}\n{long}, still quoted",0\n{OTHER[0]},0\n'
        f'"{OTHER[1]}",0\n'
    )
    jsonl_path = tmp_path / "rows.jsonl"
    jsonl_path.write_text(
        "".join(
            json.dumps({"cv_text": text, "category": label}) + "\n"
            for text, label in [(ML[0], "1"), (long, "1"), (OTHER[0], "0"), (OTHER[1], "0")]
        )
    )
    reason = "a row longer than 2,000 characters (ingest.max_row_chars)"
    for path, rejected, kept in [(csv_path, [2, 3], [1, 4, 5]), (jsonl_path, [2], [1, 3, 4])]:
        result = ingest(str(path), settings)
        assert result.rejected["source_row"].tolist() == rejected and set(result.rejected["reason"]) == {reason}
        assert result.cvs["source_row"].tolist() == kept, path
        assert result.rejected["raw_text"].str.len().max() <= 1000


def test_a_parquet_row_group_of_rows_over_max_row_chars_is_not_read(tmp_path):
    path = tmp_path / "cell.parquet"
    _parquet_with_one_large_cell(path, 5000)
    result = ingest_file(str(path), IngestSettings(max_row_chars=2000))
    assert result.rejected["source_row"].tolist() == [2] and result.cvs["source_row"].tolist() == [1]
    assert result.rejected["reason"].iloc[0].startswith("in a Parquet row group of 1 rows and ")
