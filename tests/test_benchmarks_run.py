"""Every script in benchmarks/ runs, at a tiny size, and prints its last line: a rename elsewhere broke two of them
(extraction.py and apply_throughput.py imported benchmarks.filter_quality after it became list_quality.py) and
nothing noticed. Their figures live in the docs; these runs only prove the scripts still work end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

DEMO = str(REPO / "examples" / "demo_cvs.csv")

# script -> [(arguments at a tiny size, {tmp} and {run} filled in; how its last line starts), ...]
TINY = {
    "apply_throughput.py": [
        (["--run", "{run}", "--rows", "200", "--chars", "300", "--chunk-rows", "100"], "profiles_per_s=")
    ],
    "cores.py": [(["--limit", "2", "--shard-size", "2", "--only", "1 core"], "best=1 core")],
    "extraction.py": [(["--limit", "2", "--chunk", "2", "--input", DEMO, "--store", "{tmp}/store"], "speedup=")],
    "headcount_calibration.py": [
        (["--seeds", "1", "--organisations", "4", "--draws", "50", "--scenarios", "a"], "scenario=a coverage80=")
    ],
    "headcount_speed.py": [
        (["--organisations", "20", "--profiles", "2000", "--draws", "50"], "error_rates=population organisations=20"),
        (["--counts", "--organisations", "20", "--draws", "50"], "counts error_rates=population organisations=20"),
        (
            ["--counts", "--with-and", "--organisations", "20", "--draws", "50"],
            "counts with_and error_rates=population organisations=20",
        ),
    ],
    "ingest_memory.py": [(["--mb", "1", "--dir", "{tmp}"], "file_mb=")],
    "list_quality.py": [
        (["--input", DEMO, "--storage-url", "{tmp}/lq", "--repeats", "1"], "lockbox_broad_balanced="),
        (
            ["--input", DEMO, "--storage-url", "{tmp}/lq", "--replay", "1", "--variants", "default"],
            "replay_new_cv_balanced=",
        ),
    ],
    "make_corpus.py": [(["--sizes", "20", "--out", "{tmp}", "--sources", "10"], "{tmp}/cvs_20.csv: 20 CVs")],
    "scale.py": [(["--sizes", "20,40", "--sources", "10", "--warm-max", "20", "--work", "{tmp}"], "linear_ratio=")],
    "screening_error.py": [(["--cvs", "2"], "max_similarity_error=")],  # ingest needs both categories: 2 rows
}
# run by the others: design_replay.py by list_quality.py --replay, fill_cache.py by scale.py
RUN_BY_ANOTHER = {"design_replay.py", "fill_cache.py"}


def run_script(argv: list[str], timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def last_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, result.stderr[-3000:]
    return lines[-1]


def test_every_benchmark_has_a_tiny_run_here():
    scripts = {path.name for path in (REPO / "benchmarks").glob("*.py")}
    assert scripts == set(TINY) | RUN_BY_ANOTHER


@pytest.mark.parametrize("script", sorted((REPO / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_the_benchmark_starts(script):
    result = run_script([sys.executable, str(script), "--help"], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_the_benchmark_runs_at_a_tiny_size(script, tmp_path, request):
    for arguments, start in TINY[script]:
        run = str(request.getfixturevalue("demo_run")) if "{run}" in arguments else ""
        filled = [a.format(tmp=tmp_path, run=run) for a in arguments]
        line = last_line(run_script([sys.executable, f"benchmarks/{script}", *filled]))
        assert line.startswith(start.format(tmp=tmp_path)), line


@pytest.mark.slow
def test_the_gpu_script_runs_end_to_end_on_cpu(tmp_path):
    """benchmarks/gpu_extraction.sh, prepared for a lent GPU machine, on CPU with two CVs: every step runs."""
    env = {**os.environ, "OUT": str(tmp_path), "INPUT": DEMO, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_extraction.sh", "2"], cwd=REPO, capture_output=True, text=True, timeout=2400, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    log = (tmp_path / "gpu_extraction.txt").read_text()
    assert "passed" in log and log.count("CVs/s") >= 2, log[-3000:]
