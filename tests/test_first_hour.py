"""A new user's first mistakes: a wrong column, a misspelt setting, a stopped server. Each is one line that names
what is wrong and how to fix it, before Prefect starts, and the fix it names is accepted."""

from __future__ import annotations

import json
import logging
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ml_headcount.config import load_settings
from ml_headcount.errors import InputError
from tests.conftest import REPO

VALIDATION = "examples/headcount_validation.csv"
RATED = str(REPO.parent / "shared" / "data" / "rated_cvs.csv")


def _closed_port_url() -> str:
    """The API URL of a server that is not running: a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


@pytest.fixture
def no_server_env(tmp_path) -> dict:
    """A Prefect server that cannot be reached and no temporary one: any command that gets as far as Prefect fails
    with 'unreachable' (exit 1), so a column error (exit 2) is one found before Prefect."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=_closed_port_url(),
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
    )
    return env


def _cli(*args: str, env: dict) -> tuple[int, list[str], list[str]]:
    """(exit status, the command's stderr lines, the modules it imported), the command run with -X importtime."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = result.stderr.splitlines()
    imported = [line.split("|")[-1].strip() for line in lines if line.startswith("import time:")]
    return result.returncode, [line for line in lines if not line.startswith("import time:")], imported


@pytest.fixture
def column_mistakes(tmp_path) -> dict[str, tuple[list[str], str, str, str]]:
    """The first hour's column mistakes: (command, what the message must name, the option it must suggest, the value
    that fixes it)."""
    (tmp_path / "cvs.csv").write_text(
        "body,kind\nTrained transformer language models on GPU clusters,1\nAudited the quarterly ledgers,0\n"
    )
    (tmp_path / "counts.csv").write_text("organisation,staff,keyword_filter\nAlder,400,63\n")
    (tmp_path / "population.csv").write_text("firm,employees,llm_a,llm_b,keyword_filter\nAlder,400,1,1,0\n")
    storage = ["--storage-url", str(tmp_path / "artifacts")]
    return {
        "text column": (["run", str(tmp_path / "cvs.csv"), *storage], "no text column", "--text-column", "body"),
        "label column": (
            ["run", str(tmp_path / "cvs.csv"), "--text-column", "body", *storage],
            "no label column",
            "--label-column",
            "kind",
        ),
        "employees column": (
            ["estimate", "--validation", VALIDATION, "--counts", str(tmp_path / "counts.csv"), *storage],
            "no employees column",
            "--employees-column",
            "staff",
        ),
        "organisation column": (
            ["estimate", "--validation", VALIDATION, "--population", str(tmp_path / "population.csv"), *storage],
            "no organisation column",
            "--org-column",
            "firm",
        ),
    }


def test_each_column_mistake_is_one_line_before_prefect_and_its_suggested_option_is_accepted(
    column_mistakes, no_server_env
):
    for name, (args, problem, option, value) in column_mistakes.items():
        code, lines, imported = _cli(*args, env=no_server_env)
        assert code == 2 and len(lines) == 1, (name, lines)
        table = args[1] if args[0] == "run" else args[4]
        assert lines[0].startswith(f"ml-headcount: error: {table}: {problem}"), (name, lines)
        assert not any(m == "prefect" or m.startswith("prefect.") for m in imported), name
        suggested = re.findall(r"--[a-z-]+-column", lines[0])
        assert suggested == [option], (name, lines[0])
        # the suggestion followed: that column is found, and (once every column is) the command reaches Prefect's server
        code, lines, _ = _cli(*args, option, value, env=no_server_env)
        assert problem not in lines[-1], (name, lines)
        reached_prefect = code == 1 and "is unreachable" in lines[-1]
        assert reached_prefect or (name == "text column" and "no label column" in lines[-1]), (name, lines)


def test_each_column_hints_setting_exists_and_fixes_the_table(column_mistakes):
    """The setting each message names beside its option (`ingest.text_column`, `headcount.org_column`, ...) is a
    setting, and setting it makes the same header check pass."""
    from ml_headcount import preflight

    for name, (args, _, _, value) in column_mistakes.items():
        # each CV case with the other column named, so that the column under test is the one missing
        given = {"text column": {"label_column": "kind"}, "label column": {"text_column": "body"}}.get(name, {})
        with pytest.raises(InputError) as refused:
            _check_columns(preflight, args, load_settings(ingest=given))
        section, field = re.search(r"\(([a-z]+)\.([a-z_]+)\)", str(refused.value)).groups()
        fixed = {"ingest": dict(given)}
        fixed.setdefault(section, {})[field] = value
        _check_columns(preflight, args, load_settings(**fixed))


def _check_columns(preflight, args: list[str], settings) -> None:
    if args[0] == "run":
        preflight.check_cv_columns(args[1], settings.ingest, settings.storage)
    else:
        mode = args[3].removeprefix("--")
        preflight.check_estimate_columns(
            args[2], args[4], mode, False, settings.headcount, settings.ingest, settings.storage
        )


@pytest.mark.shared_data
def test_a_validation_table_without_the_counts_annotator_names_that_column(tmp_path, no_server_env):
    """The real validation table (22 LLM annotators) with the demo counts table (one annotator, keyword_filter): the
    message names the one column that matches nothing, not the 24 columns of the validation table."""
    code, lines, imported = _cli(
        "estimate", "--validation", RATED, "--counts", "examples/headcount_counts.csv", env=no_server_env
    )
    assert code == 2 and len(lines) == 1, lines
    assert "annotator column 'keyword_filter' is not a column of the validation table" in lines[0], lines
    assert "prompt-2-gpt-5-2025-08-07" not in lines[0]  # not every column listed
    assert not any(m.startswith("prefect") for m in imported)
    # as it says: the counts table's annotator named as the validation's column of it is accepted
    counts = (REPO / "examples" / "headcount_counts.csv").read_text()
    (tmp_path / "counts.csv").write_text(counts.replace("keyword_filter", "prompt-1-gpt-5-2025-08-07", 1))
    args = ("estimate", "--validation", RATED, "--counts", str(tmp_path / "counts.csv"))
    code, lines, _ = _cli(*args, "--storage-url", str(tmp_path / "artifacts"), env=no_server_env)
    assert code == 1 and "is unreachable" in lines[-1], lines


def test_a_misspelt_setting_says_which_setting_was_meant_and_that_one_is_accepted(tmp_path):
    (tmp_path / "typo.yaml").write_text("extracton: {top_n: 5}\ningest: {text_colum: body}\n")
    with pytest.raises(Exception) as refused:
        load_settings(tmp_path / "typo.yaml")
    message = str(refused.value)
    assert "extracton: no such setting; did you mean 'extraction'?" in message
    assert "ingest.text_colum: no such setting; did you mean 'text_column'?" in message
    (tmp_path / "fixed.yaml").write_text("extraction: {top_n: 5}\ningest: {text_column: body}\n")
    settings = load_settings(tmp_path / "fixed.yaml")
    assert (settings.extraction.top_n, settings.ingest.text_column) == (5, "body")


def test_a_stopped_server_set_with_prefect_config_is_one_line_naming_it_and_the_way_back(tmp_path):
    """docs/deployments.md's `prefect config set PREFECT_API_URL=...`, then the server stopped (here: never started on
    that port): one line, exit 1, naming the URL and `prefect config unset PREFECT_API_URL`, which then works."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    url = _closed_port_url()
    prefect = [sys.executable, "-m", "prefect", "config"]
    subprocess.run([*prefect, "set", f"PREFECT_API_URL={url}"], env=env, check=True, capture_output=True)
    code, lines, _ = _cli(
        "estimate",
        "--validation",
        VALIDATION,
        "--counts",
        "examples/headcount_counts.csv",
        "--storage-url",
        str(tmp_path / "artifacts"),
        env=env,
    )
    assert code == 1 and len(lines) == 1, lines
    assert url in lines[0] and "is unreachable" in lines[0] and "prefect config unset PREFECT_API_URL" in lines[0]
    subprocess.run([*prefect, "unset", "PREFECT_API_URL"], env=env, check=True, capture_output=True, input=b"y\n")
    shown = subprocess.run([*prefect, "view"], env=env, check=True, capture_output=True, text=True).stdout
    assert "PREFECT_API_URL" not in shown


def test_apply_limit_matches_the_first_n_rows_only(prefect_harness, demo_run, tmp_path):
    from flows.cli import main

    output = tmp_path / "first.csv"
    assert main(["apply", str(demo_run), "examples/demo_cvs.csv", "--limit", "7", "--output", str(output)]) == 0
    matches = pd.read_csv(output)
    assert matches["source_row"].tolist() == list(range(1, 8))
    summary = json.loads(Path(f"{output}.summary.json").read_text())
    assert (summary["rows"], summary["limit"]) == (7, 7)


def test_runs_lists_each_run_and_compares_two_runs_lists(prefect_harness, demo_run, tmp_path, capsys):
    """The demo run, and a copy of it whose broad list lost one keyword and gained one: the list shows both runs with
    the positive category's broad list and its cross-validated quality; the comparison names the two keywords."""
    from flows.cli import main

    storage = demo_run.parent.parent
    lists = json.loads((demo_run / "keyword_lists.json").read_text())
    broad = lists["1"]["broad"]["keywords"]
    edited = tmp_path / "artifacts"
    shutil.copytree(storage / "runs", edited / "runs")
    shutil.copytree(demo_run, edited / "runs" / "edited")
    lists["1"]["broad"]["keywords"] = [*broad[1:], "a keyword no run learned"]
    (edited / "runs" / "edited" / "keyword_lists.json").write_text(json.dumps(lists))

    assert main(["runs", str(edited), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert sorted(r["run_id"] for r in rows) == sorted([demo_run.name, "edited"])
    row = next(r for r in rows if r["run_id"] == demo_run.name)
    assert row["input"].endswith("demo_cvs.csv") and row["mode"] == "exact" and row["list"] == "1/broad"
    assert row["keywords"] == len(broad)
    assert row["balanced_accuracy"]["value"] == lists["1"]["broad"]["cross_validated"]["balanced_accuracy"]
    assert main(["runs", str(edited)]) == 0
    table = capsys.readouterr().out
    assert "balanced accuracy (cross-validated)" in table and demo_run.name in table

    assert main(["runs", str(edited), "--compare", demo_run.name, "edited", "--json"]) == 0
    compared = {row["list"]: row for row in json.loads(capsys.readouterr().out)["lists"]}
    assert compared["1/broad"]["added"] == ["a keyword no run learned"]
    assert compared["1/broad"]["removed"] == [broad[0]]
    assert compared["1/strict"]["added"] == compared["1/strict"]["removed"] == []


def test_runs_shows_the_broad_list_of_the_category_the_lists_are_for(prefect_harness, demo_run, tmp_path, capsys):
    """A run whose lists are for category 0 (lists.positive=0: keyword_lists.json's role `positive`): `runs` shows its
    0/broad list, as the run's summary and reports lead with 0 (it showed 1/broad, the one category other than 0)."""
    from flows.cli import main

    lists = json.loads((demo_run / "keyword_lists.json").read_text())
    for category, by_name in lists.items():
        for entry in by_name.values():
            entry["role"] = "positive" if category == "0" else "complement of 0"
    copy = tmp_path / "artifacts" / "runs" / "zero-first"
    shutil.copytree(demo_run, copy)
    (copy / "keyword_lists.json").write_text(json.dumps(lists))

    assert main(["runs", str(tmp_path / "artifacts"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["runs"]
    assert row["list"] == "0/broad" and row["keywords"] == len(lists["0"]["broad"]["keywords"])


def test_the_python_example_runs_applies_and_estimates(prefect_harness, tmp_path):
    """examples/from_python.py as a user runs it: its three locations hold a run, matches of 20 rows, an estimate."""
    example = runpy.run_path(str(REPO / "examples" / "from_python.py"))
    locations = example["main"](str(tmp_path / "artifacts"))
    assert (Path(locations["run"]) / "manifest.json").exists()
    assert len(pd.read_parquet(locations["matches"])) == 20
    summary = json.loads((Path(locations["estimate"]) / "summary.json").read_text())
    assert summary["organisations"] == len(pd.read_csv(REPO / "examples" / "headcount_counts.csv"))


def test_an_ingestion_of_a_missing_inbox_folder_warns_that_it_does_not_exist(prefect_harness, tmp_path):
    """A missing ./inbox is not an empty one: the run still succeeds (nothing to register), with one warning line in
    its log (as the UI shows it: read back from the server)."""
    from flows.cv_ingestion import cv_ingestion
    from ml_headcount.config import Settings

    settings = Settings(storage={"url": str(tmp_path / "artifacts")}, inbox={"url": str(tmp_path / "inbox")})
    warning = f"{tmp_path / 'inbox'} does not exist: no file can arrive; create it (or set settings.inbox.url)"
    assert _warnings(cv_ingestion(settings, keywords_deployment=None, return_state=True)) == [warning]
    (tmp_path / "inbox").mkdir()
    assert _warnings(cv_ingestion(settings, keywords_deployment=None, return_state=True)) == []


def _warnings(state) -> list[str]:
    """The warnings a completed flow run logged, as the server stored them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    assert state.is_completed()
    APILogWorker.drain_all(timeout=30)
    flow_run = LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=flow_run))
    return [log.message for log in logs if log.level == logging.WARNING]


def test_user_docs_and_help_cite_no_internal_work_item():
    """What users read (README, docs/, examples/, the commands' help) says what holds, never 'issue 11' or '#19'."""
    from flows.cli import _parser

    internal = re.compile(r"\b(?:issue|item|ticket|task)s? ?#?\d+\b|(?<![\w&])#\d+\b", re.IGNORECASE)
    texts = {str(p.relative_to(REPO)): p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")]}
    texts |= {str(p.relative_to(REPO)): p.read_text() for p in (REPO / "examples").glob("*.py")}
    parser = _parser()
    texts["ml-headcount --help"] = parser.format_help()
    for name, command in parser._subparsers._group_actions[0].choices.items():
        texts[f"ml-headcount {name} --help"] = command.format_help()
    cited = {name: internal.findall(text) for name, text in texts.items() if internal.search(text)}
    assert cited == {}
