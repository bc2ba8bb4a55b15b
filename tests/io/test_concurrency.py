"""Runs and ingestions at the same time, on local storage and on a real S3 server (moto's): nothing lost, one winner."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from ml_headcount.config import InboxSettings, IngestSettings, StorageSettings
from ml_headcount.corpus.cleaning import clean_text
from ml_headcount.corpus.dataset import Inbox, RegisteredDataset, register_file
from ml_headcount.errors import InputError
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import (
    LATEST,
    RunClaimedError,
    RunExistsError,
    claim_estimate,
    claim_run,
    complete_estimate,
    complete_run,
)

WORDS = [
    "python",
    "pytorch",
    "research",
    "statistics",
    "sales",
    "accounts",
    "marketing",
    "finance",
    "cloud",
    "kubernetes",
    "design",
    "clients",
]


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> StorageSettings:
    if request.param == "local":
        return StorageSettings(url=str(tmp_path / "artifacts"))
    bucket = request.getfixturevalue("bucket")
    return StorageSettings(url=f"s3://{bucket}/ml")


def together(n: int, work) -> list:
    """`work(i)` in n threads released at once; each thread stays alive until all are done (a claim's holder lives)."""
    start, finish = threading.Barrier(n), threading.Barrier(n)

    def run(i):
        start.wait()
        try:
            return work(i)
        except Exception as error:  # noqa: BLE001 - the test inspects what each contender got
            return error
        finally:
            finish.wait()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_create_if_absent_has_exactly_one_winner(storage):
    store = ArtifactStore(storage)
    for round_ in range(5):
        won = together(4, lambda i, key=f"claims/{round_}.json": store.create_if_absent(key, f"contender {i}".encode()))
        assert won.count(True) == 1, won
        assert store.read_bytes(f"claims/{round_}.json").decode() == f"contender {won.index(True)}"


def test_two_claims_of_one_run_id_exactly_one_wins(storage):
    store = ArtifactStore(storage)
    for round_ in range(3):
        outcomes = together(2, lambda i, run_id=f"shared-{round_}": claim_run(store, run_id))
        winners = [o for o in outcomes if not isinstance(o, Exception)]
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert isinstance(losers[0], RunClaimedError) and "is being written by another process" in str(losers[0])


def test_two_estimates_with_one_id_exactly_one_proceeds_and_completes_once(storage):
    store = ArtifactStore(storage)
    outcomes = together(2, lambda i: claim_estimate(store, "shared"))
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1 and isinstance(losers[0], RunClaimedError), outcomes
    assert "estimate 'shared' is being written by another process" in str(losers[0])
    complete_estimate(store, winners[0], {"run_id": "shared", "first": True})
    with pytest.raises(RunExistsError, match="completed by another process"):
        complete_estimate(store, winners[0], {"run_id": "shared"})
    with pytest.raises(RunExistsError, match="estimate 'shared' is complete"):
        claim_estimate(store, "shared")
    assert store.read_json("estimates/shared/summary.json")["first"] is True


def test_a_complete_run_is_never_claimed_or_completed_again(storage):
    store = ArtifactStore(storage)
    run = claim_run(store, "done")
    complete_run(store, run, {"run_id": "done"})
    with pytest.raises(RunExistsError, match="is complete"):
        claim_run(store, "done")
    with pytest.raises(RunExistsError, match="completed by another process"):
        complete_run(store, run, {"run_id": "done", "second": True})
    assert "second" not in store.read_json("runs/done/manifest.json")


def test_a_run_whose_claimant_is_gone_may_be_redone(storage):
    store = ArtifactStore(storage)
    together(1, lambda i: claim_run(store, "crashed"))  # its thread has ended, as a killed run's process would
    assert claim_run(store, "crashed").run_id == "crashed"
    assert store.list("runs/crashed/claims") == ["runs/crashed/claims/000000.json", "runs/crashed/claims/000001.json"]


@pytest.mark.parametrize("run_id", ["..", ".", "a/b", "-x", "", "x y", "*", "ok\n"])
def test_unsafe_run_ids_are_refused_clearly(tmp_path, run_id):
    with pytest.raises(InputError, match="invalid run id"):
        claim_run(ArtifactStore(StorageSettings(url=str(tmp_path))), run_id)
    assert not any(tmp_path.iterdir())


def test_a_latest_pointer_that_names_no_run_id_is_replaced_and_never_followed(storage):
    from ml_headcount.runs.finished import resolve_run_id

    store = ArtifactStore(storage)
    for planted in (b'{"run_id": "../../other/runs/x", "completed_at": "9999"}', b"[" * 100_000, b"not json", b'["x"]'):
        store.write_bytes(LATEST, planted)
        with pytest.raises(InputError, match="latest.json: names no valid run id"):
            resolve_run_id(store, "latest")
        complete_run(store, claim_run(store, f"r{len(planted)}"), {})
        assert store.read_json(LATEST)["run_id"] == f"r{len(planted)}"
    with pytest.raises(InputError, match="invalid run id"):
        resolve_run_id(store, "../x")


def test_latest_only_moves_forward(storage):
    store = ArtifactStore(storage)
    store.write_json(LATEST, {"run_id": "future", "location": "x", "completed_at": "2999-01-01T00:00:00.000000+00:00"})
    complete_run(store, claim_run(store, "now"), {"run_id": "now"})
    assert store.read_json(LATEST)["run_id"] == "future"  # an older completion never replaces a newer one

    store.write_json(LATEST, {"run_id": "past", "location": "x", "completed_at": "2000-01-01T00:00:00.000000+00:00"})
    runs = [claim_run(store, f"r{i}") for i in range(6)]
    together(6, lambda i: complete_run(store, runs[i], {"run_id": runs[i].run_id}))
    completed = {r.run_id: store.read_json(f"runs/{r.run_id}/manifest.json")["completed_at"] for r in runs}
    latest = store.read_json(LATEST)
    assert latest["completed_at"] == max(completed.values()) and completed[latest["run_id"]] == latest["completed_at"]


def test_concurrent_ingestions_lose_no_cv(storage, tmp_path):
    """Two ingestions register files at once, with CVs in common: every distinct CV is registered exactly once."""
    if storage.url.startswith("s3://"):
        inbox_settings = InboxSettings(url=storage.url.rsplit("/", 1)[0] + "/inbox")
    else:
        (tmp_path / "inbox").mkdir()
        inbox_settings = InboxSettings(url=str(tmp_path / "inbox"))
    inbox = Inbox(inbox_settings, storage)
    texts = [
        f"candidate {i} works on {WORDS[i % 12]} and {WORDS[(i * 5) % 12]} daily, profile number {i * 7919}"
        for i in range(60)
    ]
    files = {}
    for f in range(8):  # overlapping slices: files 2k and 2k+1 share five CVs
        rows = texts[f * 6 : f * 6 + 11]
        files[f"part-{f}.csv"] = pd.DataFrame(
            {"cv_text": rows, "category": ["ml" if i % 2 else "other" for i in range(len(rows))]}
        )
        inbox.store.write_text(f"part-{f}.csv", files[f"part-{f}.csv"].to_csv(index=False))
    dataset = RegisteredDataset(ArtifactStore(storage), "cvs")
    pending = sorted(dataset.pending(inbox), key=lambda f: f.key)

    together(2, lambda i: [register_file(dataset, inbox, f, IngestSettings(), f"ingestion-{i}") for f in pending[i::2]])

    cvs = dataset.cvs()
    expected = {clean_text(t, IngestSettings()) for table in files.values() for t in table["cv_text"]}
    assert len(cvs) == cvs["text_hash"].nunique() == len(expected)
    assert set(cvs["text"]) == expected
    assert sorted(Path(f).name for f in dataset.files()["file"]) == sorted(files)
    # every row of every file is a CV or a rejected row (here: already registered / duplicate)
    per_file = (
        dataset.cvs().groupby("source_file").size().add(dataset.rejected().groupby("source_file").size(), fill_value=0)
    )
    assert per_file.sort_index().tolist() == [len(files[Path(f).name]) for f in sorted(per_file.index)]
    json.dumps(dataset.files().to_dict("records"))  # the commit records are plain data
