"""`ml-headcount`: the command line over the flows.

The last line of `run`'s standard output is the run's location, so scripts can
capture it with `tail -n1`.
"""

from __future__ import annotations

import argparse
import json
import sys

from ml_headcount.config import load_settings
from ml_headcount.ingest import InputError
from ml_headcount.runs import RunExistsError
from ml_headcount.storage import StorageError

USER_ERRORS = (InputError, RunExistsError, StorageError)


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

    commands.add_parser("modal-check", help="run the Modal smoke test in an ephemeral app and print its report")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from flows.modal_backend import ModalSetupError, modal_check, require_modal_credentials  # --help does without these

    try:
        if args.command == "modal-check":
            output = json.dumps(modal_check(load_settings()), indent=2)
        else:
            settings = load_settings(args.config, **_overrides(args))
            if settings.backend == "modal":
                require_modal_credentials()  # in seconds, before Prefect starts a server; the flow checks again
            from flows.cv_keywords import cv_keywords

            output = cv_keywords(args.input, settings=settings, run_id=args.run_id)
    except (*USER_ERRORS, ModalSetupError) as error:
        print(f"ml-headcount: error: {error}", file=sys.stderr)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
