"""The keyword runs under a storage URL, one line each, and two runs' lists compared (`ml-headcount runs`).

A run is listed by what its manifest and keyword_lists.json say: its id, input, completion time, extraction mode,
and the chosen category's broad list (default: the one the lists are for, `lists.positive`) with its
cross-validated balanced accuracy and 80 % interval (on CVs the learner's design was chosen on, so optimistic there;
keyword_lists.json's `new_sample` holds the interval a new sample will see). Only complete runs are listed (a run
without a manifest is still going, or crashed). Each file is read through `read_artifact`, so a damaged one is one
line naming it, not a traceback.
"""

from __future__ import annotations

from pydantic import BaseModel, RootModel

from ml_headcount.errors import InputError
from ml_headcount.io.artifacts import read_artifact
from ml_headcount.io.storage import ArtifactStore, check_name
from ml_headcount.io.urls import redact_url
from ml_headcount.lists.figure_text import fmt, interval_text
from ml_headcount.lists.queries import positive_of
from ml_headcount.runs.finished import finished_run
from ml_headcount.runs.layout import RunLayout


class _Input(BaseModel):
    url: str


class _Extraction(BaseModel):
    mode: str = "exact"


class _Parameters(BaseModel):
    extraction: _Extraction = _Extraction()


class _Manifest(BaseModel):
    """manifest.json: what a run's line shows of it."""

    input: _Input
    completed_at: str
    parameters: _Parameters = _Parameters()


class _ListEntry(BaseModel):
    keywords: list[str]
    cross_validated: dict | None = None
    role: str | None = None  # `positive` for the category the lists are for (none in runs before roles)


class _Lists(RootModel[dict[str, dict[str, _ListEntry]]]):
    """keyword_lists.json: category -> list name -> its keywords and cross-validated quality."""


def list_runs(store: ArtifactStore, category: str | None = None) -> list[dict]:
    """Every complete run under the store, oldest first: id, input, completed, mode, and the broad list of `category`
    (default: the one the lists are for) with its size and cross-validated balanced accuracy."""
    rows = []
    for prefix in store.list("runs"):
        run_id = prefix.rstrip("/").rsplit("/", 1)[-1]
        if run_id.endswith(".json") or not _is_run_id(run_id) or not store.exists(f"runs/{run_id}/manifest.json"):
            continue  # latest.json, a folder no run could have made, or a run still going (or crashed)
        rows.append(run_row(store, run_id, category))
    return sorted(rows, key=lambda row: (row["completed"], row["run_id"]))


def _is_run_id(name: str) -> bool:
    try:
        check_name(name, "run id")
    except InputError:
        return False
    return True


def run_row(store: ArtifactStore, run_id: str, category: str | None) -> dict:
    """One complete run's line (as a dict) for `list_runs`."""
    run = RunLayout(run_id)
    manifest = read_artifact(store, run.manifest, _Manifest)
    lists = _lists(store, run)
    chosen = _category(lists, category, store.location(run.keyword_lists))
    broad = lists.get(chosen, {}).get("broad")
    return {
        "run_id": run_id,
        "input": redact_url(manifest.input.url),
        "completed": manifest.completed_at[:19].replace("T", " "),
        "mode": manifest.parameters.extraction.mode,
        "list": f"{chosen}/broad",
        "keywords": len(broad.keywords) if broad else None,
        "balanced_accuracy": _quality(broad),
    }


def compare_runs(store: ArtifactStore, first: str, second: str) -> list[dict]:
    """Per list of either run (`first`, `second`: ids or `latest`): the keywords `second` added and removed, and both
    runs' cross-validated balanced accuracy."""
    old, new = (_lists(store, finished_run(store, run)) for run in (first, second))
    names = sorted({(c, n) for lists in (old, new) for c, by_name in lists.items() for n in by_name})
    rows = []
    for category, name in names:
        before, after = old.get(category, {}).get(name), new.get(category, {}).get(name)
        kept, now = set(before.keywords if before else []), set(after.keywords if after else [])
        rows.append(
            {
                "list": f"{category}/{name}",
                "keywords": [len(kept) if before else None, len(now) if after else None],
                "added": sorted(now - kept),
                "removed": sorted(kept - now),
                "balanced_accuracy": [_quality(before), _quality(after)],
            }
        )
    return rows


def _lists(store: ArtifactStore, run: RunLayout) -> dict[str, dict[str, _ListEntry]]:
    try:
        return read_artifact(store, run.keyword_lists, _Lists).root
    except FileNotFoundError:
        raise InputError(f"{store.location(run.prefix)}: the run lacks keyword_lists.json") from None


def _category(lists: dict, category: str | None, where: str) -> str:
    """`category`, else the one the lists are for (role `positive`); in a run without roles, the one category other
    than 0, else "1"."""
    if category is not None:
        if category not in lists:
            raise InputError(f"{where}: no category {category!r}; categories: {sorted(lists)}")
        return category
    positive = positive_of({c: {n: e.model_dump() for n, e in by_name.items()} for c, by_name in lists.items()})
    if positive is not None:
        return positive
    others = [c for c in lists if c != "0"]
    return others[0] if len(others) == 1 else "1"


def _quality(entry: _ListEntry | None) -> dict | None:
    """The list's cross-validated balanced accuracy and its 80 % interval (None where too few CVs gave none)."""
    validated = (entry.cross_validated or {}) if entry else {}
    if "balanced_accuracy" not in validated:
        return None
    return {"value": validated["balanced_accuracy"], "interval": validated.get("balanced_accuracy_interval")}


def quality_text(quality: dict | None) -> str:
    """`0.780 [0.720, 0.830]` as every report writes it, or `-` where the run has no cross-validated figure."""
    if quality is None:
        return "-"
    return interval_text(quality["value"], quality["interval"]) if quality["interval"] else fmt(quality["value"])


def runs_table(rows: list[dict]) -> str:
    """The runs as an aligned text table, its quality column labelled cross-validated."""
    header = ["run id", "input", "completed (UTC)", "mode", "list", "keywords", "balanced accuracy (cross-validated)"]
    cells = [
        [r["run_id"], r["input"], r["completed"], r["mode"], r["list"], str(r["keywords"] or 0)]
        + [quality_text(r["balanced_accuracy"])]
        for r in rows
    ]
    return _aligned([header, *cells]) if cells else "no complete run here"


def comparison_text(rows: list[dict], first: str, second: str) -> str:
    """Per list: sizes, cross-validated quality of both runs, the keywords added and removed."""
    lines = [f"{first} -> {second} (balanced accuracy cross-validated, 80 % interval)"]
    for row in rows:
        sizes = " -> ".join("-" if n is None else str(n) for n in row["keywords"])
        quality = " -> ".join(quality_text(q) for q in row["balanced_accuracy"])
        lines.append(f"{row['list']}: {sizes} keywords; balanced accuracy {quality}")
        lines.append(f"  added: {', '.join(row['added']) or '-'}")
        lines.append(f"  removed: {', '.join(row['removed']) or '-'}")
    return "\n".join(lines)


def _aligned(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table)
