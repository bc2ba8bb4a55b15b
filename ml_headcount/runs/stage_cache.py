"""Outputs of a whole stage kept under `cache/<stage>/<key>/`, so a rerun on unchanged input copies them.

Ingestion, scoring and clustering are cached this way (extraction has its own
cache, per shard). The key hashes what decides the outputs: the content of the
stage's inputs, its settings and `STAGE_CACHE_VERSION` (raise it whenever
ingest's or scoring's code changes what they write). An entry holds the
stage's artifacts, in open formats only, and `summary.json`, written last: an
entry without it is incomplete and ignored.

Anyone who can write to the storage can write an entry, and the keys can be
computed from any manifest, so a hit is trusted only as far as it is checked:
`summary.json` records the sha256 of every artifact and the fields the key was
made of (`expect`); a hit copies the artifacts into the run, then checks the
copies' digests and those fields, and (`check`) whatever a stage can verify of
their content against its own input. An entry that fails is ignored, recomputed
and replaced, and reported (`StageResult.rejected`, then the run's manifest).
Nothing but JSON is ever deserialised from an entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ml_headcount.io.storage import ArtifactStore, TooLargeError

# 2: summary.json holds {"summary", "sha256"} and entries are verified on a hit
STAGE_CACHE_VERSION = 2
SUMMARY = "summary.json"
MAX_SUMMARY_BYTES = 16 * 2**20  # a summary is a few KB; more is not a summary, and is not read
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass
class StageResult:
    """A stage's summary, whether it came from a cache entry, and the entries that failed their checks."""

    summary: dict
    cached: bool
    rejected: list[dict] = field(default_factory=list)  # {"entry": location, "reason": why it was not used}


def stage_key(stage: str, *parts) -> str:
    """A key from everything that decides a stage's outputs (JSON-serialisable parts)."""
    text = json.dumps([stage, STAGE_CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_stage(
    store: ArtifactStore,
    stage: str,
    key: str,
    artifacts: list[str],
    compute: Callable[[], dict],
    expect: dict | None = None,
    key_of: Callable[[dict], str] | None = None,
    check: Callable[[], str | None] | None = None,
) -> StageResult:
    """The stage's summary, from the entry under `key` when it passes its checks, else from `compute()`.

    `artifacts` are the run's keys the stage writes; `compute()` writes them and
    returns the summary. `expect`: summary fields a hit must have these values of
    (what the key was made of). `key_of(summary)`: the key a computed result is
    stored under, when the computation itself learns what its key is made of (the
    input's digest, taken as it was read). `check()`: why the copied artifacts are not this run's result (None when
    they are), for a stage that can verify them against its input. Entries are named by the artifacts' file names.
    """
    names = [PurePosixPath(artifact).name for artifact in artifacts]
    prefix = f"cache/{stage}/{key}"
    rejected: list[dict] = []
    entry = _entry(store, prefix, names, expect or {}, rejected)
    if entry is not None:
        summary, digests = entry
        for name, artifact in zip(names, artifacts):
            store.copy(f"{prefix}/{name}", artifact)
        # the copies are what the run uses: they are what is checked (an entry changed meanwhile cannot slip in)
        wrong = [name for name, artifact in zip(names, artifacts) if store.sha256(artifact) != digests[name]]
        problem = f"{', '.join(wrong)} differ from the sha256 in {SUMMARY}" if wrong else None
        if problem is None and check is not None:
            problem = check()
        if problem is None:
            return StageResult(summary, True)
        rejected.append({"entry": store.location(prefix), "reason": problem})
    summary = compute()
    digests = {name: store.sha256(artifact) for name, artifact in zip(names, artifacts)}
    prefix = f"cache/{stage}/{key_of(summary) if key_of else key}"
    for name, artifact in zip(names, artifacts):
        store.copy(artifact, f"{prefix}/{name}")
    store.write_json(f"{prefix}/{SUMMARY}", {"summary": summary, "sha256": digests})
    return StageResult(summary, False, rejected)


def _entry(
    store: ArtifactStore, prefix: str, names: list[str], expect: dict, rejected: list[dict]
) -> tuple[dict, dict] | None:
    """(summary, sha256 per artifact) of a complete, well-formed entry; None when there is none or it is unusable."""
    try:
        data = store.read_bounded(f"{prefix}/{SUMMARY}", MAX_SUMMARY_BYTES)
    except FileNotFoundError:
        return None
    except TooLargeError as error:
        rejected.append({"entry": store.location(prefix), "reason": str(error)})
        return None
    problem = None
    try:
        entry = json.loads(data)
    except (ValueError, RecursionError):
        entry, problem = None, f"{SUMMARY} is not JSON"
    if problem is None:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("summary"), dict)
            or not isinstance(entry.get("sha256"), dict)
        ):
            problem = f"{SUMMARY} is not an entry summary ({{summary, sha256}})"
        elif set(entry["sha256"]) != set(names) or not all(
            isinstance(d, str) and _DIGEST.fullmatch(d) for d in entry["sha256"].values()
        ):
            problem = f"{SUMMARY} does not hold a sha256 for exactly {names}"
        elif any(entry["summary"].get(field) != value for field, value in expect.items()):
            problem = f"{SUMMARY} is for other input: " + ", ".join(
                f"{field} {entry['summary'].get(field)!r}, not {value!r}"
                for field, value in expect.items()
                if entry["summary"].get(field) != value
            )
        elif missing := [name for name in names if not store.exists(f"{prefix}/{name}")]:
            problem = f"{', '.join(missing)} missing"
    if problem:
        rejected.append({"entry": store.location(prefix), "reason": problem})
        return None
    return entry["summary"], entry["sha256"]
