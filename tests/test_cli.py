"""The README's first command: the CLI on the bundled demo data, in a fresh process."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import REPO


def test_demo_run_prints_its_location_and_learns_separating_keywords(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        # a fresh model cache: the model is converted again, as on a first run, with all its library noise
        ML_HEADCOUNT_EXTRACTION__MODEL_CACHE_DIR=str(tmp_path / "models"),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "run",
            "examples/demo_cvs.csv",
            "--storage-url",
            str(tmp_path / "artifacts"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = Path(result.stdout.strip().splitlines()[-1])
    assert run.parent == tmp_path / "artifacts" / "runs"
    assert (run / "report.html").exists()

    # the run's own story, quietly: no library warning, progress bar, Prefect banner or per-task state line
    lines = (result.stdout + result.stderr).splitlines()
    for noise in ("Warning", "warnings.warn", "Loading weights", "loss_type", "prefect.io/docs", "Finished in state"):
        assert not any(noise in line for line in lines), (noise, lines)
    # off a terminal, progress is a few plain lines (none redrawn) whatever the machine's speed, and the run ends
    # with its labelled summary: the positive category first, its lists' quality with intervals, its broad query
    story = result.stderr.splitlines()
    assert len(story) <= 25 and "\r" not in result.stderr, story
    summary = story[story.index(next(line for line in story if line.startswith("Run "))) :]
    assert summary[0].endswith("40 CVs (2 rows rejected), 1,200 keywords extracted."), summary
    assert summary[1] == "ML expert (1), 20 CVs. Cross-validated balanced accuracy (80 % interval):", summary
    assert summary[2].startswith("  strict list, ") and summary[4].startswith("  broad query: "), summary
    assert (
        summary[5].startswith("not ML expert (0), 20 CVs: strict 0.") and summary[6] == f"Report: {run / 'report.html'}"
    )

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["ingest"]["cvs"] == 40 and manifest["ingest"]["duplicates"] == 1
    assert manifest["ingest"]["repaired_encoding"] == 1
    rejected = pd.read_csv(run / "rejected.csv")
    assert sorted(rejected["reason"]) == ["duplicate of row 6", "empty text", "missing label"]

    lists = json.loads((run / "keyword_lists.json").read_text())
    for category in ("0", "1"):
        assert lists[category]["broad"]["keywords"]
        assert lists[category]["broad"]["in_sample_sensitivity"] >= 0.9
        assert lists[category]["broad"]["in_sample_specificity"] >= 0.9
    assert "naïve" in pd.read_parquet(run / "cvs.parquet")["text"].str.cat()


def test_on_a_terminal_progress_is_one_bar_redrawn_in_place(tmp_path):
    """Under a pseudo-terminal the run's progress redraws one line (carriage returns, a bar) and its summary follows
    on clean lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
    )
    command = [sys.executable, "-m", "flows.cli", "run", "examples/demo_cvs.csv", "--mode", "fast"]
    terminal, child = pty.openpty()
    process = subprocess.Popen(
        [*command, "--storage-url", str(tmp_path / "artifacts")], cwd=REPO, env=env, stdout=child, stderr=child
    )
    os.close(child)
    output = _read_until_closed(terminal).decode()
    assert process.wait(timeout=60) == 0, output[-3000:]
    redraws = output.count("\r\x1b[K")
    assert redraws >= 4, output  # one per progress record: stages starting, extraction's shards
    assert "] 100% extraction: 40/40 CVs" in output, output  # the bar, filled
    lines = output.replace("\r\n", "\n").split("\n")
    assert any(line.startswith("ML expert (1), 20 CVs") for line in lines), lines
    assert lines[-2].startswith(str(tmp_path / "artifacts" / "runs")), lines  # the location, last, on its own line


def _read_until_closed(terminal: int) -> bytes:
    """Everything written to the pseudo-terminal until its last writer closes it (EIO on Linux)."""
    chunks = []
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(terminal)
    return b"".join(chunks)


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


# What a user error may cost before its one line: the settings' and storage's own libraries, nothing that starts
# slowly (Prefect's client, the model's stack, table engines, Modal). Asserted by name, not by seconds, so a loaded
# machine cannot fail it and one stray import at module level cannot pass it.
HEAVY_MODULES = (
    "prefect",
    "torch",
    "sentence_transformers",
    "keybert",
    "sklearn",
    "scipy",
    "pandas",
    "pyarrow",
    "numpy",
    "modal",
    "s3fs",
    "openvino",
)

REPORT_HEAVY_IMPORTS = """
import json, sys
from flows.cli import main
heavy = sorted(m for m in sys.argv[1].split(",") if m in sys.modules)
code = main(json.loads(sys.argv[2]))
print(json.dumps({"code": code, "at_import": heavy,
                  "after": sorted(m for m in sys.argv[1].split(",") if m in sys.modules)}))
"""


def test_user_errors_are_reported_before_prefect_or_any_heavy_library_is_imported(tmp_path):
    """No Prefect server can be reached or started here: an error found before Prefect is the only way to pass."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL="http://127.0.0.1:9/api",
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
    )
    storage = ["--storage-url", str(tmp_path / "artifacts")]
    (tmp_path / "typo.yaml").write_text("extraction: {top_n: 0}\n")
    cases = {
        "missing file": (["run", "no-such-cvs.csv", *storage], "no-such-cvs.csv: file not found"),
        "a directory": (["run", str(tmp_path), *storage], "is a directory"),
        "bad settings": (
            ["run", "examples/demo_cvs.csv", "--config", str(tmp_path / "typo.yaml"), *storage],
            "top_n and shard_size must be positive",
        ),
        "bad run id": (["run", "examples/demo_cvs.csv", "--run-id", "../x", *storage], "invalid run id '../x'"),
        "unusable storage": (
            ["run", "examples/demo_cvs.csv", "--storage-url", "/proc/no-such/artifacts"],
            "/proc/no-such/artifacts",
        ),
        "no such run": (["apply", "no-such-run", "examples/demo_cvs.csv", *storage], "no complete run there"),
        "missing validation": (
            ["estimate", "--validation", "nope.csv", "--counts", "examples/headcount_counts.csv", *storage],
            "nope.csv: file not found",
        ),
    }
    for name, (args, message) in cases.items():
        result = subprocess.run(
            [sys.executable, "-c", REPORT_HEAVY_IMPORTS, ",".join(HEAVY_MODULES), json.dumps(args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        report = json.loads(result.stdout.splitlines()[-1])
        assert report == {"code": 2, "at_import": [], "after": []}, (name, report, result.stderr[-2000:])
        assert result.stderr.count("\n") == 1 and message in result.stderr, (name, result.stderr)


def test_a_user_error_inside_a_flow_is_one_error_line_with_prefects_own_records_left_out(tmp_path):
    """A table of one category is found only once the flow reads its rows: Prefect's engine then logs the task's and
    the flow's failure, which the console leaves out at the default verbosity (the command says it once) and shows
    with -v."""
    table = tmp_path / "people.csv"
    table.write_text("cv_text,category\nMachine learning researcher training deep models,1\n")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    args = ["run", str(table), "--storage-url", str(tmp_path / "artifacts")]
    result = cli(*args, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    naming = [line for line in result.stderr.splitlines() if "yields 1 usable categories" in line]
    assert len(naming) == 1 and naming[0].startswith("ml-headcount: error: "), result.stderr[-3000:]
    assert " ERROR " not in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    verbose = cli(*args, "-v", env=env, timeout=300)
    assert verbose.returncode == 2 and "Finished in state Failed" in verbose.stderr, verbose.stderr[-3000:]
    assert "Traceback" not in verbose.stderr, verbose.stderr[-3000:]


def test_version_help_and_flags():
    assert cli("--version").stdout.strip() == "ml-headcount 0.1.0"
    top = cli("--help").stdout
    assert "examples:" in top and "ml-headcount run examples/demo_cvs.csv" in top
    for command in ("run", "apply", "estimate", "modal-check"):
        assert "example:\n  ml-headcount " + command in cli(command, "--help").stdout, command
    run_help = cli("run", "--help").stdout
    assert all(flag in run_help for flag in ("--mode", "--top-n", "--workers", "--json", "--verbose", "--quiet"))
    assert "with 80 % intervals" in cli("estimate", "--help").stdout and "80 % intervals" in top  # not "80 %%"


def test_a_temporary_server_that_does_not_start_is_one_line_and_exit_1(tmp_path):
    """Issue 20, finding 9: the user's startup limit is respected, and running out of it is no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="15",  # long enough for uvicorn to log its failure
        # a database the server cannot open: it never answers
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/prefect.db",
    )
    result = cli("run", "examples/demo_cvs.csv", "--storage-url", str(tmp_path / "artifacts"), env=env, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("ml-headcount: error:")]
    assert "temporary server did not start within 15 s" in line
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in line
    assert not (tmp_path / "artifacts" / "runs").exists()


def test_the_temporary_server_gets_180_s_unless_the_user_says_otherwise(monkeypatch):
    from flows.console import default_server_startup

    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    default_server_startup()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "180"
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "42")
    default_server_startup()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "42"


def test_estimate_json_is_one_object_on_stdout_and_quiet_is_silent(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    result = cli(
        "estimate",
        "--validation",
        "examples/headcount_validation.csv",
        "--counts",
        "examples/headcount_counts.csv",
        "--draws",
        "100",
        "--storage-url",
        str(tmp_path / "artifacts"),
        "--json",
        "-q",
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    answer = json.loads(result.stdout)
    assert Path(answer["location"]).parent == tmp_path / "artifacts" / "estimates"
    assert answer["summary"]["mode"] == "counts" and answer["summary"]["settings"]["draws"] == 100
    assert (Path(answer["location"]) / "report.html").exists()


def test_credentials_in_an_s3_url_and_a_url_that_cannot_be_written_are_one_line_before_prefect(tmp_path):
    """Issue 32, items 7 and 14: an s3:// URL with user info ended in botocore's traceback with the secret in it, an
    HTTP storage URL with user info in aiohttp's (InvalidUrlClientError), `apply -o http://...` in fsspec's
    NotImplementedError; all exit 1. S3 credentials come from the environment; nothing but a local path or s3:// is
    written to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL="http://127.0.0.1:9/api",
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
    )
    storage = ["--storage-url", str(tmp_path / "artifacts")]
    counts = ["--counts", "examples/headcount_counts.csv"]
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzz9"  # AWS secret keys may hold '/'
    cases = {
        "s3 input": (
            ["estimate", "--validation", f"s3://AKIAKEY:{secret}@bucket/val.csv", *counts, *storage],
            "s3://bucket/val.csv: credentials in an s3:// URL are refused",
        ),
        "s3 storage": (
            ["run", "examples/demo_cvs.csv", "--storage-url", f"s3://AKIAKEY:{secret}@bucket/ml"],
            "s3://bucket/ml: credentials in an s3:// URL are refused",
        ),
        "http storage": (
            ["run", "examples/demo_cvs.csv", "--storage-url", f"http://user:{secret}@127.0.0.1:9/store"],
            "http://127.0.0.1:9/store: the storage must be a local path or an s3:// URL",
        ),
        "http output": (
            ["apply", "no-such-run", "examples/demo_cvs.csv", "-o", "http://127.0.0.1:9/matches.csv", *storage],
            "http://127.0.0.1:9/matches.csv: --output must be a local path or an s3:// URL",
        ),
    }
    for name, (args, message) in cases.items():
        result = cli(*args, env=env)
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert result.stderr.count("\n") == 1 and message in result.stderr, (name, result.stderr)
        assert "wJalr" not in result.stdout + result.stderr and "CYzz9" not in result.stdout + result.stderr, name
