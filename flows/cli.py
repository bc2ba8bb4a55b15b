"""`ml-headcount`: the command line over the flows.

The last line of `run`'s standard output is the run's location, and of
`apply`'s the location of its matches, so scripts can capture them with
`tail -n1`. A user error (bad input, settings, storage or
credentials) prints one line, `ml-headcount: error: ...`, and exits 2.
"""

from __future__ import annotations

import argparse
import json
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

    return cv_keywords(args.input, settings=settings, run_id=args.run_id), 0


def _apply(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings

    settings = load_settings(args.config, **({"storage": {"url": args.storage_url}} if args.storage_url else {}))
    from flows.cv_filter import cv_filter

    summary = cv_filter(args.input, run=args.run, output_url=args.output, settings=settings)
    return f"{json.dumps(summary, indent=2)}\n{summary['output']}", 0


def _modal_check(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings
    from tasks.modal_backend import modal_check

    report = modal_check(load_settings(args.config))
    return json.dumps(report, indent=2), 0 if report["ok"] else 1


COMMANDS = {"run": _run, "apply": _apply, "modal-check": _modal_check}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        output, code = COMMANDS[args.command](args)
    except UserError as error:
        print(f"ml-headcount: error: {error}", file=sys.stderr)
        return 2
    print(output)
    return code


if __name__ == "__main__":
    sys.exit(main())
