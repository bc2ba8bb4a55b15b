"""`ml-headcount runs`: the keyword runs under a storage URL, or two runs' lists compared; it needs no Prefect."""

from __future__ import annotations

import argparse
import json


def add_arguments(runs: argparse.ArgumentParser) -> None:
    """The command's arguments: the storage URL, --compare, --category, --json."""
    runs.add_argument("storage_url", nargs="?", help="where the runs are (default ./artifacts; s3://bucket/prefix)")
    runs.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="what RUN_B's lists added and removed")
    runs.add_argument("--category", help="the category whose broad list is shown (default: the one the lists are for)")
    runs.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def runs(args: argparse.Namespace) -> tuple[str, int]:
    """The runs as a table, or two runs' lists compared (one JSON object with --json)."""
    from ml_headcount.config import load_settings
    from ml_headcount.io.storage import ArtifactStore
    from ml_headcount.runs import listing

    settings = load_settings(**({"storage": {"url": args.storage_url}} if args.storage_url else {}))
    store = ArtifactStore(settings.storage)
    if args.compare:
        rows = listing.compare_runs(store, *args.compare)
        text = listing.comparison_text(rows, *args.compare)
        return (json.dumps({"compare": args.compare, "lists": rows}) if args.json else text), 0
    rows = listing.list_runs(store, args.category)
    return (json.dumps({"runs": rows}) if args.json else listing.runs_table(rows)), 0
