"""Where a run's artifacts live, and the rule that runs are immutable.

`runs/<run-id>/` holds one run; its `manifest.json` is written last, so a run
without one is incomplete (crashed or still going). `runs/latest.json` points
at the newest complete run and is the only key that ever moves, and only
forward (to a later completion time).

A run id is claimed before anything is written under it: `runs/<id>/claims/<n>.json`
created only if absent, so of two runs claiming one id exactly one wins. The
next generation `n+1` may be claimed (a killed run redone) only when the holder
of `n` is known to be gone: its process is dead on this host. A claim held on
another host stays until someone deletes it, as the error message says.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ml_headcount.environment import library_versions
from ml_headcount.errors import UserError
from ml_headcount.io.storage import ArtifactStore, check_name

MANIFEST = "manifest.json"
LATEST = "runs/latest.json"


# claims this process made: token -> the thread that made it (thread objects, unlike thread ids, are never reused);
# weak, so an entry goes with its thread and the table never outgrows the threads alive (a missing one is "gone")
_CLAIMING_THREADS: weakref.WeakValueDictionary[str, threading.Thread] = weakref.WeakValueDictionary()


class RunExistsError(UserError):
    """A complete run already has this id; runs are never overwritten."""


class RunClaimedError(RunExistsError):
    """Another run, possibly still going, holds this run id."""


def _artifact(name: str, doc: str = "") -> property:
    """The key of the artifact `name` in a layout: each artifact is named once, here."""
    return property(lambda layout: layout.key(name), doc=doc or f"The key of `{name}`.")


@dataclass(frozen=True)
class _Layout:
    """Keys under `<folder>/<run id>/`. Every run id, wherever it comes from (an option, latest.json, a run's
    location), is checked here, the one place a layout is made: it is one safe segment of a key, never a path."""

    run_id: str
    folder: ClassVar[str]
    what: ClassVar[str] = "run id"
    complete_marker: ClassVar[str] = MANIFEST

    def __post_init__(self):
        check_name(self.run_id, self.what)

    @property
    def prefix(self) -> str:
        """`<folder>/<run id>`: every key of the layout is below it."""
        return f"{self.folder}/{self.run_id}"

    @property
    def complete(self) -> str:
        """The key whose presence marks the run complete (written last, never overwritten)."""
        return self.key(self.complete_marker)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    report = _artifact("report.md")
    report_html = _artifact("report.html", "The report as one self-contained page (plots embedded, no network).")


@dataclass(frozen=True)
class RunLayout(_Layout):
    """The storage keys of one run's artifacts: each artifact is named here and nowhere else."""

    folder: ClassVar[str] = "runs"

    cvs = _artifact("cvs.parquet")
    rejected = _artifact("rejected.csv")
    keywords = _artifact("keywords.parquet")
    category_keywords = _artifact("category_keywords.csv")
    discriminative_keywords = _artifact("discriminative_keywords.csv")
    keyword_lists = _artifact("keyword_lists.json")
    heldout_matches = _artifact(
        "heldout_matches.parquet",
        "Per CV, whether it matched each list learned without its cross-validation fold (docs/lists.md).",
    )
    text_classifier = _artifact(
        "text_classifier.json",
        "The TF-IDF + logistic-regression annotator as JSON, with its quality (docs/lists.md; never pickle).",
    )
    queries = _artifact(
        "queries.json",
        "Every keyword list as a search query per dialect, with its quality per matcher (docs/lists.md).",
    )
    clusters = _artifact("clusters.json")
    top_keywords_plot = _artifact("top_keywords.png")
    manifest = _artifact(MANIFEST)
    cv_shards = _artifact(
        "cv_shards.parquet", "Which cached shard holds each of the run's CVs (cv_id, shard_id), as planning learned it."
    )

    def shard_texts(self, shard_id: str) -> str:
        """The cleaned texts of one shard this run sends to the model."""
        return self.key(f"shards/{shard_id}.parquet")


@dataclass(frozen=True)
class EstimateLayout(_Layout):
    """The storage keys of one headcount estimate, `estimates/<run-id>/`; summary.json is written last."""

    folder: ClassVar[str] = "estimates"
    what: ClassVar[str] = "estimate id"
    complete_marker: ClassVar[str] = "summary.json"

    estimates = _artifact("estimates.csv")
    annotators = _artifact("annotators.csv")
    forest_plot = _artifact("forest.png")
    summary = _artifact("summary.json")


def claim_estimate(store: ArtifactStore, run_id: str | None) -> EstimateLayout:
    """A layout for a new estimate, claimed atomically as a run is; a complete one (summary.json) is never
    overwritten."""
    return _claim(store, EstimateLayout(run_id if run_id is not None else new_run_id()))


def complete_estimate(store: ArtifactStore, estimate: EstimateLayout, summary: dict) -> None:
    """Write summary.json, which marks the estimate complete, unless another process completed it first."""
    if not store.create_if_absent(estimate.summary, (json.dumps(summary, indent=2, default=str) + "\n").encode()):
        raise RunExistsError(
            f"estimate {estimate.run_id!r} was completed by another process at {store.location(estimate.prefix)}"
        )


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: the UTC time to the second, then 6 random hex digits (two runs in one second differ)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def claim_run(store: ArtifactStore, run_id: str | None) -> RunLayout:
    """A layout for a new run, claimed atomically; an incomplete earlier run whose process is gone may be redone."""
    return _claim(store, RunLayout(run_id if run_id is not None else new_run_id()))


def _claim(store: ArtifactStore, run: _Layout) -> _Layout:
    _refuse_complete(store, run)
    claims = [k for k in store.list(f"{run.prefix}/claims") if re.fullmatch(r"\d{6}\.json", k.rsplit("/", 1)[-1])]
    generation = 0
    if claims:
        latest = claims[-1]
        holder = _holder(store, latest)
        if not _holder_is_gone(holder):
            raise _claimed(store, run, latest, holder)
        generation = int(latest.rsplit("/", 1)[-1].removesuffix(".json")) + 1
    key = f"{run.prefix}/claims/{generation:06d}.json"
    if not store.create_if_absent(key, json.dumps(_this_holder()).encode()):
        raise _claimed(store, run, key, _holder(store, key))
    _refuse_complete(store, run)  # completed between our first look and the claim
    return run


def _holder(store: ArtifactStore, key: str) -> dict:
    """A claim's holder; {} (a holder never known to be gone) when the claim is not one."""
    try:
        holder = json.loads(store.read_bytes(key))
    except (ValueError, RecursionError):
        return {}
    return holder if isinstance(holder, dict) else {}


def complete_run(store: ArtifactStore, run: RunLayout, manifest: dict) -> str:
    """Write the manifest (which marks the run complete; never over another), then move the latest pointer forward."""
    completed_at = datetime.now(UTC).isoformat(timespec="microseconds")
    data = (json.dumps({**manifest, "completed_at": completed_at}, indent=2, default=str) + "\n").encode()
    if not store.create_if_absent(run.manifest, data):
        raise RunExistsError(f"run {run.run_id!r} was completed by another process at {store.location(run.prefix)}")
    # the run's key, relative to the storage URL: a store copied or synced elsewhere still points at its own runs
    pointer = {"run_id": run.run_id, "location": run.prefix, "completed_at": completed_at}
    store.update(LATEST, lambda current: _later(current, pointer))
    return store.location(run.prefix)


def _later(current: bytes | None, pointer: dict) -> bytes | None:
    """The new pointer's bytes if it is later than the current one, else None (leave it). A current pointer that
    names no valid run id is no pointer: it is replaced."""
    held = latest_pointer(current)
    if held is not None and (str(held.get("completed_at", "")), held["run_id"]) >= (
        pointer["completed_at"],
        pointer["run_id"],
    ):
        return None
    return (json.dumps(pointer, indent=2) + "\n").encode()


def latest_pointer(data: bytes | None) -> dict | None:
    """latest.json's content if it is a pointer with a valid run id, else None."""
    try:
        held = json.loads(data) if data is not None else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(held, dict):
        return None
    try:
        check_name(held.get("run_id"), "run id")
    except UserError:
        return None
    return held


def _refuse_complete(store: ArtifactStore, run: _Layout) -> None:
    if store.exists(run.complete):
        kind = "estimate" if isinstance(run, EstimateLayout) else "run"
        raise RunExistsError(
            f"{kind} {run.run_id!r} is complete at {store.location(run.prefix)}; {kind}s are immutable, "
            "choose another --run-id"
        )


def _this_holder() -> dict:
    token = secrets.token_hex(8)
    _CLAIMING_THREADS[token] = threading.current_thread()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": token,
        "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _holder_is_gone(holder: dict) -> bool:
    """True only when certain: the holder ran on this host and its process (or, in this process, its thread) is gone."""
    if holder.get("host") != socket.gethostname():
        return False
    if not isinstance(holder.get("pid"), int):
        return False
    if holder.get("pid") != os.getpid():
        if os.name == "nt":  # os.kill(pid, 0) terminates the process there: never probe, the claim stays
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    # this process: a thread that is no longer running, or this very thread, which is evidently not running it now
    thread = _CLAIMING_THREADS.get(holder.get("token", ""))
    return thread is None or not thread.is_alive() or thread is threading.current_thread()


def _claimed(store: ArtifactStore, run: _Layout, key: str, holder: dict) -> RunClaimedError:
    kind = "estimate" if isinstance(run, EstimateLayout) else "run"
    return RunClaimedError(
        f"{kind} {run.run_id!r} is being written by another process "
        f"(host {holder.get('host')}, pid {holder.get('pid')}, "
        f"since {holder.get('claimed_at')}); choose another --run-id, or, if that process is gone, "
        f"delete {store.location(key)} and retry"
    )


def run_manifest(
    run: RunLayout,
    location: str,
    input_url: str,
    settings,
    ingest_summary: dict,
    extraction: dict,
    scoring: dict,
    clustering: dict[str, str],
    timings: dict[str, float],
) -> dict:
    """What a run was asked, what it found and what it ran on: written last, it marks the run complete. `location` is
    the run's key relative to the storage URL."""
    return {
        "run_id": run.run_id,
        "location": location,
        "input": {"url": input_url, "sha256": ingest_summary["input_sha256"]},
        "parameters": settings.model_dump(mode="json"),
        "ingest": ingest_summary,
        "extraction": extraction,
        "scoring": scoring,
        "clustering": clustering,  # the method per category
        "versions": library_versions(),
        "timings_s": timings,
    }
