"""`ml-headcount`: the command line over the flows.

The last line of `run`'s standard output is the run's location, of `estimate`'s the
estimate's location, and of `apply`'s the location of its matches, so scripts can capture
them with `tail -n1`. A user error (bad input, settings, storage or
credentials) prints one line, `ml-headcount: error: ...`, and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ml_headcount.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml-headcount", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the cv-keywords flow on a CV table")
    run.add_argument("input", help="CSV, TSV, XLSX, JSONL or Parquet file: a path or an fsspec URL (s3://...)")
    run.add_argument("--storage-url", help="where artifacts and caches go (default ./artifacts)")
    run.add_argument("--config", help="YAML, TOML or JSON settings file")
    run.add_argument("--limit", type=int, help="keep the first N usable rows")
    run.add_argument("--run-id", help="name of the run (default: UTC time + random suffix)")
    run.add_argument("--backend", choices=["local", "modal"], help="where the model runs (default local)")

    estimate = commands.add_parser(
        "estimate", help="estimate each organisation's ML experts with 80 %% intervals (docs/headcount.md)"
    )
    estimate.add_argument("--validation", required=True, help="hand-labelled profiles with the annotator columns")
    source = estimate.add_mutually_exclusive_group(required=True)
    source.add_argument("--population", help="one row per employee profile: organisation, annotator columns and/or text")
    source.add_argument("--counts", help="one row per organisation: employees, profiles, matches per annotator")
    estimate.add_argument("--keywords", metavar="RUN", help="id of a finished keyword run whose lists become annotators")
    estimate.add_argument("--annotators", help="comma-separated annotator columns (default: all shared columns)")
    estimate.add_argument("--org-column", help="organisation column (default: detected)")
    estimate.add_argument("--positive", help="validation label of an ML expert (default 1)")
    estimate.add_argument("--draws", type=int, help="posterior draws (default 1000)")
    estimate.add_argument("--seed", type=int, help="random seed (default 0)")
    estimate.add_argument("--storage-url", help="where estimates/<run-id>/ goes (default ./artifacts)")
    estimate.add_argument("--config", help="YAML, TOML or JSON settings file (its headcount section)")
    estimate.add_argument("--run-id", help="name of the estimate (default: UTC time + random suffix)")
    apply = commands.add_parser("apply", help="apply a finished run's keyword lists to a CV or profile table (cv-filter flow)")
    apply.add_argument("run", help="the run's location as `run` prints it, or a run id or `latest` under --storage-url")
    apply.add_argument("input", help="CSV, TSV, XLSX, JSONL or Parquet file: a path or an fsspec URL (s3://...)")
    apply.add_argument("--output", help="where the matches go: .parquet, .csv or .jsonl (default <storage>/filtered/<run id>/)")
    apply.add_argument("--storage-url", help="where runs are, for a run id (default ./artifacts)")
    apply.add_argument("--config", help="YAML, TOML or JSON settings file (ingest and filters sections apply)")

    check = commands.add_parser(
        "modal-check", help="run what a Modal run uses (extraction on 2 shards, clustering) and print a JSON report"
    )
    check.add_argument("--config", help="YAML, TOML or JSON settings file (its modal and extraction sections are used)")
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    overrides: dict = {}
    if args.storage_url:
        overrides["storage"] = {"url": args.storage_url}
    if args.limit is not None:
        overrides["ingest"] = {"limit": args.limit}
    if args.backend:
        overrides["backend"] = args.backend
    return overrides


def _run(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings

    settings = load_settings(args.config, **_overrides(args))
    if settings.backend == "modal":
        from tasks.modal_backend import require_modal_credentials

        require_modal_credentials()  # in seconds, before Prefect starts a server; the flow checks again
    from flows.cv_keywords import cv_keywords

    return cv_keywords(_protected(args.input), settings=settings, run_id=args.run_id), 0


def _estimate(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings

    headcount = {key: value for key, value in {
        "annotators": args.annotators.split(",") if args.annotators else None, "org_column": args.org_column,
        "positive": args.positive, "draws": args.draws, "seed": args.seed,
    }.items() if value is not None}
    overrides = {"headcount": headcount, **({"storage": {"url": args.storage_url}} if args.storage_url else {})}
    settings = load_settings(args.config, **overrides)
    from flows.headcount import headcount as headcount_flow

    location = headcount_flow(_protected(args.validation), population_url=_protected(args.population),
                              counts_url=_protected(args.counts), keywords_run=args.keywords, settings=settings,
                              run_id=args.run_id)
    return location, 0


def _apply(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings

    settings = load_settings(args.config, **({"storage": {"url": args.storage_url}} if args.storage_url else {}))
    from flows.cv_filter import cv_filter

    summary = cv_filter(_protected(args.input), run=args.run, output_url=_protected(args.output), settings=settings)
    return f"{json.dumps(summary, indent=2)}\n{summary['output']}", 0


def _protected(url: str | None):
    """The URL as a flow gets it: masked in Prefect's records when it carries credentials."""
    from ml_headcount.ingest import protect

    return None if url is None else protect(url)


def _modal_check(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings
    from tasks.modal_backend import modal_check

    report = modal_check(load_settings(args.config))
    return json.dumps(report, indent=2), 0 if report["ok"] else 1


COMMANDS = {"run": _run, "apply": _apply, "estimate": _estimate, "modal-check": _modal_check}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # the temporary Prefect server a CLI run starts sends no usage telemetry unless the user's environment says so
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        output, code = COMMANDS[args.command](args)
    except UserError as error:
        print(f"ml-headcount: error: {error}", file=sys.stderr)
        return 2
    print(output)
    return code


if __name__ == "__main__":
    sys.exit(main())
