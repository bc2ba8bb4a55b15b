"""Outputs of a whole stage kept under `cache/<stage>/<key>/`, so a rerun on unchanged input copies them.

Ingestion and scoring are cached this way (extraction and clustering have
their own caches). The key hashes what decides the outputs: the content of the
stage's inputs, its settings and `STAGE_CACHE_VERSION` (raise it whenever
ingestion's or scoring's code changes what they write). An entry holds the
stage's artifacts, in open formats only, and `summary.json`, written last: an
entry without it is incomplete and ignored. A hit copies the artifacts into
the run and returns the summary; it never deserialises anything but JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import PurePosixPath

from ml_headcount.io.storage import ArtifactStore

STAGE_CACHE_VERSION = 1
SUMMARY = "summary.json"


def stage_key(stage: str, *parts) -> str:
    """A key from everything that decides a stage's outputs (JSON-serialisable parts)."""
    text = json.dumps([stage, STAGE_CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_stage(store: ArtifactStore, stage: str, key: str, artifacts: list[str], compute: Callable[[], dict]) -> tuple[dict, bool]:
    """(summary, whether it came from the cache). `artifacts` are the run's keys the stage writes; `compute()` writes
    them and returns the summary. Entries are named by the artifacts' file names."""
    prefix = f"cache/{stage}/{key}"
    names = [PurePosixPath(artifact).name for artifact in artifacts]
    summary = _complete_entry(store, prefix, names)
    if summary is not None:
        for name, artifact in zip(names, artifacts):
            store.copy(f"{prefix}/{name}", artifact)
        return summary, True
    summary = compute()
    for name, artifact in zip(names, artifacts):
        store.copy(artifact, f"{prefix}/{name}")
    store.write_json(f"{prefix}/{SUMMARY}", summary)
    return summary, False


def _complete_entry(store: ArtifactStore, prefix: str, names: list[str]) -> dict | None:
    try:
        summary = json.loads(store.read_bytes(f"{prefix}/{SUMMARY}"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(summary, dict) or not all(store.exists(f"{prefix}/{name}") for name in names):
        return None
    return summary
