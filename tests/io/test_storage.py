"""The artifact store's guarantees that do not need S3: spreadsheet-safe CSVs, exact keys, redacted URLs, no way
out of a local store."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from ml_headcount.config import StorageSettings
from ml_headcount.io.storage import ArtifactStore, StorageError
from ml_headcount.io.urls import redact_url
from tests.conftest import REPO

FORMULAS = [
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "'quoted",
    "''twice",
    "plain",
    "-",
]


def test_csv_cells_a_spreadsheet_would_evaluate_are_escaped_and_read_back_exactly(tmp_path):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    table = pd.DataFrame({"category": FORMULAS, "keyword": FORMULAS[::-1], "score": [0.5] * len(FORMULAS)})

    store.write_csv("t.csv", table)

    written = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)  # what a spreadsheet gets
    assert not written["category"].str.match(r"[=+\-@\t\r]").any()
    assert written["category"].tolist()[:4] == ["'" + f for f in FORMULAS[:4]]
    pd.testing.assert_frame_equal(store.read_csv("t.csv"), table)


def test_keys_with_glob_characters_are_moved_exactly(tmp_path):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    for name in ["*.csv", "[bad].csv", "a.csv", "b.csv"]:
        store.write_text(f"inbox/{name}", name)
    store.move("inbox/*.csv", "aside/*.csv")
    store.move("inbox/[bad].csv", "aside/[bad].csv")
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["a.csv", "b.csv"]
    assert (tmp_path / "aside" / "*.csv").read_text() == "*.csv"


def test_update_leaves_or_replaces_atomically(tmp_path):
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    assert store.update("n", lambda current: b"1" if current is None else None) == b"1"
    assert store.update("n", lambda current: None) == b"1"
    assert store.update("n", lambda current: str(int(current) + 1).encode()) == b"2"
    assert store.create_if_absent("n", b"x") is False and store.read_bytes("n") == b"2"


def test_redact_url_strips_credentials_and_presigned_queries():
    assert (
        redact_url("https://user:pw@host.example/cvs.csv?X-Amz-Signature=abc&X-Amz-Credential=k#f")
        == "https://host.example/cvs.csv"
    )
    assert redact_url("s3://bucket/inbox/a.csv") == "s3://bucket/inbox/a.csv"
    # issue 32: a password with an unescaped '/' (AWS secret keys hold them) is user info too, not a path
    assert redact_url("s3://AKIA:wJalr/K7MDENG@bucket/ml") == "s3://bucket/ml"
    assert redact_url("http://u:a/b@127.0.0.1:9/store?x=1") == "http://127.0.0.1:9/store"
    assert redact_url("http://[::1]:8080/a@b.csv") == "http://[::1]:8080/a@b.csv"
    assert redact_url("s3://bucket/people/ada@example.org.csv") == "s3://bucket/people/ada@example.org.csv"
    assert redact_url("/data/cvs?.csv") == "/data/cvs?.csv"  # a local path is kept as it is


def test_a_symbolic_link_in_a_local_store_never_leads_writes_out_of_it(tmp_path):
    """`store/estimates/x -> /elsewhere` redirected `estimate --run-id x`'s writes out of the store: refused now, in
    one line naming the link's key, exit 2; nothing is written where the link points."""
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    (store / "estimates").mkdir(parents=True)
    elsewhere.mkdir()
    (store / "estimates" / "x").symlink_to(elsewhere)
    env = dict(os.environ, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    examples = REPO / "examples"
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "estimate", "--validation", str(examples / "headcount_validation.csv")]
        + ["--counts", str(examples / "headcount_counts.csv"), "--storage-url", str(store), "--run-id", "x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("ml-headcount: error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-3000:]
    assert re.fullmatch(
        rf"ml-headcount: error: {store}/estimates/x/\S+: a symbolic link in the store leads out of it, to "
        rf"{elsewhere}/\S+",
        errors[0],
    ), errors
    assert "Traceback" not in done.stderr and list(elsewhere.iterdir()) == []

    # reading through such a link is refused too, and a link that stays inside the store is followed
    plain = ArtifactStore(StorageSettings(url=str(store)))
    (elsewhere / "secret.json").write_text("{}")
    with pytest.raises(StorageError, match="leads out of it"):
        plain.read_json("estimates/x/secret.json")
    (store / "inside").symlink_to(store / "estimates")
    plain.write_json("inside/y/summary.json", {"ok": True})
    assert plain.read_json("estimates/y/summary.json") == {"ok": True}
