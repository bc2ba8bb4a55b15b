"""`ml-headcount`: learn keyword lists that separate kinds of CVs, apply them, and estimate headcounts.

The last line of `run`'s standard output is the run's location, of `estimate`'s the
estimate's location, and of `apply`'s the location of its matches, so scripts can capture
them with `tail -n1`; `query` prints the query alone; with `--json` standard output is one JSON object instead.
Logs go to standard error. A user error (bad input, settings, storage or credentials) prints one line,
`ml-headcount: error: ...`, and exits 2, before any flow starts where it can be checked
first; an outage (Prefect's temporary server not starting) exits 1 with one line too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from importlib.metadata import version

from flows import runs_command
from flows.console import (
    PrefectServerError,
    console,
    default_server_startup,
    temporary_server,
)
from ml_headcount.errors import UserError

TABLE = "CSV, TSV, XLSX, JSON(L) or Parquet file, optionally compressed: a path or an fsspec URL (s3://...)"
RUN = "a run: its location as `run` prints it, its id under --storage-url, or `latest`"
EXAMPLES = """examples:
  ml-headcount run examples/demo_cvs.csv                     keyword lists of the demo CVs (~1 min)
  ml-headcount apply latest profiles.csv -o matches.parquet  the newest run's lists applied to a table
  ml-headcount estimate --validation examples/headcount_validation.csv \\
      --population examples/headcount_population.csv         ML experts per organisation

`ml-headcount COMMAND --help` describes each command; docs/ and README.md the rest."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-headcount",
        description=__doc__.splitlines()[0].replace("`", ""),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('ml-headcount')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        _run_parser,
        _apply_parser,
        _estimate_parser,
        _query_parser,
        _runs_parser,
        _modal_check_parser,
    ):
        add_command(commands)
    return parser


def _command(commands, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help.replace("%", "%%"),  # argparse %-formats a command's help, not its description
        description=help[0].upper() + help[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _output_options(command: argparse.ArgumentParser, json_output: bool = True) -> None:
    loudness = command.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=0,
        help="also show Prefect's engine lines (every task run's state)",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        help="show only errors and the result's location",
    )
    if json_output:
        command.add_argument(
            "--json", action="store_true", help="print one JSON object on stdout (logs stay on stderr)"
        )


def _storage_options(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--storage-url", help=f"{what} (default ./artifacts; s3://bucket/prefix works the same)")
    command.add_argument("--config", help="YAML, TOML or JSON settings file (see docs/usage.md, Settings)")


def _run_parser(commands) -> None:
    run = _command(
        commands,
        "run",
        "learn keyword lists that separate the categories of a labelled CV table",
        "ml-headcount run examples/demo_cvs.csv --mode fast --top-n 20",
    )
    run.add_argument("input", help=TABLE)
    _storage_options(run, "where artifacts and caches go")
    _column_options(run, with_label=True)
    run.add_argument("--limit", type=int, help="keep the first N usable rows")
    run.add_argument("--run-id", help="name of the run (default: UTC time + random suffix)")
    run.add_argument("--backend", choices=["local", "modal"], help="where the model runs (default local)")
    run.add_argument("--mode", choices=["exact", "fast"], help="exact: KeyBERT's keywords (default); fast: ~20x faster")
    run.add_argument("--top-n", type=int, help="keywords extracted per CV (default 30)")
    run.add_argument("--workers", type=int, help="processes for cleaning and counting (default: every CPU)")
    run.add_argument("--positive", help="the category the lists are for (default 1, else the rarest)")
    _output_options(run)
    run.set_defaults(handler=_run)


def _column_options(command: argparse.ArgumentParser, with_label: bool) -> None:
    command.add_argument("--text-column", help="the CV text column (default: detected: cv_text, resume, text, ...)")
    if with_label:
        command.add_argument("--label-column", help="the category column (default: detected: category, label, ...)")


def _ingest_overrides(args: argparse.Namespace) -> dict | None:
    """The ingest settings a command's options set (text and label column, limit)."""
    given = {
        "text_column": args.text_column,
        "label_column": getattr(args, "label_column", None),
        "limit": args.limit,
    }
    return {key: value for key, value in given.items() if value is not None} or None


def _apply_parser(commands) -> None:
    apply = _command(
        commands,
        "apply",
        "apply a finished run's keyword lists to a CV or profile table",
        "ml-headcount apply latest profiles.csv --output matches.parquet",
    )
    apply.add_argument("run", help=RUN)
    apply.add_argument("input", help=TABLE)
    _column_options(apply, with_label=False)
    apply.add_argument("--limit", type=int, help="match the first N rows only (a quick look at a large table)")
    apply.add_argument(
        "-o", "--output", help="where the matches go: .parquet, .csv or .jsonl (default <storage>/filtered/<run id>/)"
    )
    _storage_options(apply, "where runs are, for a run id")
    _output_options(apply)
    apply.set_defaults(handler=_apply)


def _estimate_parser(commands) -> None:
    estimate = _command(
        commands,
        "estimate",
        "estimate each organisation's ML experts with 80 % intervals (docs/headcount.md)",
        "ml-headcount estimate --validation examples/headcount_validation.csv --counts examples/headcount_counts.csv",
    )
    estimate.add_argument("--validation", required=True, help="hand-labelled profiles with the annotator columns")
    source = estimate.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--population", help="one row per employee profile: organisation, annotator columns and/or text"
    )
    source.add_argument("--counts", help="one row per organisation: employees, profiles, matches per annotator")
    source.add_argument("--patterns", help="one row per organisation and pattern of annotator values, with a count")
    estimate.add_argument("--keywords", metavar="RUN", help=f"{RUN}, whose lists become annotators")
    estimate.add_argument("--annotators", help="comma-separated annotator columns (default: all shared columns)")
    estimate.add_argument("--org-column", help="organisation column (default: detected: organisation, company, ...)")
    estimate.add_argument(
        "--employees-column", help="the population's or counts table's employees column (default: detected)"
    )
    for table, column, detected in (
        ("validation", "label", "category, label, ..."),
        ("validation", "text", "cv_text, profile_text, ..."),
        ("population", "text", "cv_text, profile_text, ..."),
    ):
        estimate.add_argument(
            f"--{table}-{column}-column", help=f"the {table} table's {column} column (default: detected: {detected})"
        )
    estimate.add_argument("--positive", help="validation label of an ML expert (default 1)")
    estimate.add_argument("--draws", type=int, help="posterior draws (default 1000)")
    estimate.add_argument("--seed", type=int, help="random seed (default 0)")
    estimate.add_argument(
        "--refuse-repairs",
        action="store_true",
        help="refuse a counts table that needs repairs instead of repairing it (docs/headcount.md)",
    )
    _storage_options(estimate, "where estimates/<run-id>/ goes")
    estimate.add_argument("--run-id", help="name of the estimate (default: UTC time + random suffix)")
    _output_options(estimate)
    estimate.set_defaults(handler=_estimate)


def _modal_check_parser(commands) -> None:
    check = _command(
        commands,
        "modal-check",
        "run what a Modal run uses (extraction on 2 shards, clustering) and print a JSON report",
        "ml-headcount modal-check --config settings.yaml",
    )
    check.add_argument("--config", help="YAML, TOML or JSON settings file (its modal and extraction sections are used)")
    check.set_defaults(handler=_modal_check)


def _settings(args: argparse.Namespace, **overrides):
    """The settings of a command: file < environment < its flags (only those given)."""
    from ml_headcount.config import load_settings

    if args.storage_url:
        overrides["storage"] = {"url": args.storage_url}
    return load_settings(args.config, **{k: v for k, v in overrides.items() if v not in (None, {})})


@contextmanager
def _flow_console(args: argparse.Namespace):
    """Around a flow call: the console at the command's verbosity and Prefect's temporary server started in time."""
    with console(args.verbosity), temporary_server():
        yield


def _run(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount import preflight

    extraction = {k: v for k, v in {"mode": args.mode, "top_n": args.top_n}.items() if v is not None}
    settings = _settings(
        args,
        backend=args.backend,
        workers=args.workers,
        extraction=extraction,
        ingest=_ingest_overrides(args),
        lists={"positive": args.positive} if args.positive is not None else None,
    )
    preflight.check_run_id(args.run_id)
    preflight.check_input(args.input, settings.storage)
    store = preflight.check_storage(settings.storage)
    # last: reading a header costs the most (its reader's imports)
    preflight.check_cv_columns(args.input, settings.ingest, settings.storage)
    if settings.backend == "modal":
        from modal_workers.client import require_modal_credentials

        require_modal_credentials()  # the flow checks again
    with _flow_console(args):
        from flows.cv_keywords import cv_keywords

        # no flow retry here: the user sees the failure now (tasks retry what is transient)
        location = cv_keywords(_protected(args.input), settings=settings, run_id=args.run_id)
    from ml_headcount.runs.layout import RunLayout
    from ml_headcount.runs.summary import run_summary, run_summary_lines

    run = RunLayout(location.rstrip("/").rsplit("/", 1)[-1])
    manifest = store.read_json(run.manifest)
    queries = store.read_json(run.queries) if store.exists(run.queries) else None
    summary = run_summary(manifest, store.read_json(run.keyword_lists), queries)
    _say(args, run_summary_lines(summary) + [f"Report: {store.location(run.report_html)}"])
    if not args.json:
        return location, 0
    return json.dumps({"location": location, "summary": summary, "manifest": manifest}), 0


def _say(args: argparse.Namespace, lines: list[str]) -> None:
    """The command's closing summary on standard error (standard output stays the location or the JSON); not with -q."""
    if args.verbosity >= 0:
        print("\n".join(lines), file=sys.stderr, flush=True)


def _estimate(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount import preflight
    from ml_headcount.runs.finished import run_store

    headcount_overrides = {
        key: value
        for key, value in {
            "annotators": args.annotators.split(",") if args.annotators else None,
            "org_column": args.org_column,
            "employees_column": args.employees_column,
            "validation_label_column": args.validation_label_column,
            "validation_text_column": args.validation_text_column,
            "population_text_column": args.population_text_column,
            "positive": args.positive,
            "draws": args.draws,
            "seed": args.seed,
            "repair_counts": False if args.refuse_repairs else None,
        }.items()
        if value is not None
    }
    settings = _settings(args, headcount=headcount_overrides)
    preflight.check_run_id(args.run_id, "estimate id")
    mode, population = next((m, url) for m in ("population", "counts", "patterns") if (url := getattr(args, m)))
    for table in (args.validation, population):
        preflight.check_input(table, settings.storage)
    store = preflight.check_storage(settings.storage)
    if args.keywords:
        preflight.check_run_lists(*run_store(args.keywords, settings.storage))
    preflight.check_estimate_columns(
        args.validation, population, mode, bool(args.keywords), settings.headcount, settings.ingest, settings.storage
    )
    with _flow_console(args):
        from flows.estimate import estimate_headcounts

        location = estimate_headcounts(
            _protected(args.validation),
            population_url=_protected(args.population),
            counts_url=_protected(args.counts),
            patterns_url=_protected(args.patterns),
            keywords_run=args.keywords,
            settings=settings,
            run_id=args.run_id,
        )
    from ml_headcount.runs.layout import EstimateLayout
    from ml_headcount.runs.summary import estimate_summary_lines

    layout = EstimateLayout(location.rstrip("/").rsplit("/", 1)[-1])
    summary = store.read_json(layout.summary)
    _say(args, estimate_summary_lines(summary) + [f"Report: {store.location(layout.report_html)}"])
    if not args.json:
        return location, 0
    return json.dumps({"location": location, "summary": summary}), 0


def _apply(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount import preflight
    from ml_headcount.runs.finished import run_store

    settings = _settings(args, ingest=_ingest_overrides(args))
    preflight.check_input(args.input, settings.storage)
    if args.output:
        preflight.check_output(args.output, settings.storage)
    preflight.check_run_lists(*run_store(args.run, settings.storage))
    preflight.check_cv_columns(args.input, settings.ingest, settings.storage, with_label=False)
    with _flow_console(args):
        from flows.cv_apply import cv_apply

        summary = cv_apply(
            _protected(args.input), run_reference=args.run, output_url=_protected(args.output), settings=settings
        )
    from ml_headcount.runs.summary import apply_summary_lines

    _say(args, apply_summary_lines(summary))
    return (json.dumps(summary) if args.json else summary["output"]), 0


def _query_parser(commands) -> None:
    query = _command(
        commands,
        "query",
        "print one of a run's keyword lists as a search query (docs/lists.md)",
        "ml-headcount query ./artifacts/runs/dev --dialect lucene --list strict",
    )
    query.add_argument("run", help="the run's location as `run` prints it, or a run id or `latest` under --storage-url")
    query.add_argument("--dialect", default="boolean", help="boolean (LinkedIn-style, SQLite FTS5), lucene, postgres")
    query.add_argument("--category", help="the list's category (default: the one the run's lists are for)")
    query.add_argument("--list", default="broad", help="strict or broad (default broad)")
    query.add_argument("--storage-url", help="where runs are, for a run id (default ./artifacts)")
    query.set_defaults(handler=_query)


def _query(args: argparse.Namespace) -> tuple[str, int]:
    """The query alone on standard output, ready to paste into the search tool."""
    from ml_headcount.config import load_settings
    from ml_headcount.lists.run_lists import run_query
    from ml_headcount.runs.finished import run_store

    settings = load_settings(**({"storage": {"url": args.storage_url}} if args.storage_url else {}))
    store, run_id = run_store(args.run, settings.storage)
    return run_query(store, run_id, args.dialect, args.category, args.list), 0


def _runs_parser(commands) -> None:
    runs = _command(
        commands,
        "runs",
        "list the keyword runs under a storage URL, or compare two runs' lists",
        "ml-headcount runs ./artifacts --compare <older-run-id> latest",
    )
    runs_command.add_arguments(runs)
    runs.set_defaults(handler=runs_command.runs)


def _protected(url: str | None):
    """The URL as a flow gets it: masked in Prefect's records when it carries credentials."""
    from ml_headcount.io.urls import protect

    return None if url is None else protect(url)


def _modal_check(args: argparse.Namespace) -> tuple[str, int]:
    from ml_headcount.config import load_settings
    from modal_workers.client import modal_check

    report = modal_check(load_settings(args.config))
    return json.dumps(report, indent=2), 0 if report["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    """Run the `ml-headcount` command with `argv`; returns its exit status (0, 1 for an outage, 2 for a user error)."""
    args = _parser().parse_args(argv)
    # the temporary Prefect server a CLI run starts sends no usage telemetry unless the user's environment says so
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    default_server_startup()
    try:
        output, code = args.handler(args)
    except UserError as error:
        print(f"ml-headcount: error: {error}", file=sys.stderr)
        return 2
    except PrefectServerError as error:
        print(f"ml-headcount: error: {error}", file=sys.stderr)
        return 1
    print(output)
    return code


if __name__ == "__main__":
    sys.exit(main())
