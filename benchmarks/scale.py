"""The whole cv-keywords flow against corpus size, per stage, everything but the model: time, peak RSS, warm share.

    uv run python benchmarks/scale.py [--sizes 10000,100000,1000000] [--sources 160] [--work DIR]

For each size: make a synthetic corpus (make_corpus.py), fill a fresh
extraction cache for it without the model (fill_cache.py: the model runs only
on the --sources real CVs; its CVs/s prices the extraction this skips), then
run `flows.cv_keywords.cv_keywords` on the local backend twice, each in its own
process with storage under --work: first with the extraction cache as a cold
run's extraction leaves it (index parts, no snapshot) and no stage cache, then
warm (ingestion and scoring copied from the first run's stage cache).

Per stage (ingest, plan, extract, assemble, score, cluster, report) the wall
seconds come from the run's manifest (`timings_s`). Peak RSS is the flow
process's own (getrusage of that child; the Prefect server it starts is not in
it). The cold time is the first run's stages plus what the model would have
taken for its CVs at the measured rate, and warm share = warm / cold.

The last line: `linear_ratio=<t(largest)/t(second largest)> peak_rss_gb=<max> warm_share=<at the largest>`,
t being the first run's stage total (the model excluded); with --sizes
10000,100000,1000000 that is t(1M)/t(100k).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["ingest", "plan", "extract", "assemble", "score", "cluster", "report"]


def flow_run(corpus: str, store: str, report: str) -> None:
    """In a child process: one cv-keywords run; its stage seconds go to `report` (JSON)."""
    from flows.cv_keywords import cv_keywords
    from ml_headcount.config import load_settings

    location = cv_keywords(corpus, settings=load_settings(storage={"url": store}))
    manifest = json.loads(Path(location, "manifest.json").read_text())
    Path(report).write_text(
        json.dumps(
            {
                "timings_s": manifest["timings_s"],
                "cvs": manifest["ingest"]["cvs"],
                "cvs_extracted": manifest["extraction"]["cvs_extracted"],
                "keywords": manifest["extraction"]["keywords"],
                "scored_keywords": manifest["scoring"]["scored_keywords"],
                "learning_cvs": manifest["scoring"]["learning_cvs"],
                "from_cache": {"ingest": manifest["ingest"]["from_cache"], "scores": manifest["scoring"]["from_cache"]},
            }
        )
    )


def child(arguments: list[str], env: dict) -> tuple[float, int]:
    """Run this script in a child process; (wall seconds, the child's peak RSS in bytes)."""
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, *arguments], env=env, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {arguments} failed with {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - began, usage.ru_maxrss * 1024


def measure(size: int, args, env: dict) -> dict:
    work = Path(args.work)
    corpora = work / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    store = work / f"store-{size}-{time.time_ns()}"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "make_corpus.py"),
            "--sizes",
            str(size),
            "--sources",
            str(args.sources),
            "--out",
            str(corpora),
        ],
        check=True,
        env=env,
        cwd=ROOT,
    )
    corpus = corpora / f"cvs_{size}.csv"
    fill_report = work / f"fill-{size}.json"
    fill_seconds, _ = child(["--fill", str(corpus), str(store), str(fill_report), str(args.sources)], env)
    filled = json.loads(fill_report.read_text())
    runs = {}
    for name in ("cold", "warm") if args.warm_max is None or size <= args.warm_max else ("cold",):
        report = work / f"{name}-{size}.json"
        wall, peak = child(["--flow-run", str(corpus), str(store), str(report)], env)
        runs[name] = {**json.loads(report.read_text()), "wall_s": wall, "peak_rss": peak}
    assert all(run["cvs_extracted"] == 0 for run in runs.values()), "the filled cache must cover every CV"
    stage_total = {name: sum(run["timings_s"].values()) for name, run in runs.items()}
    cold = runs["cold"]
    model_seconds = cold["cvs"] / (args.model_cvs_per_s or filled["model_cvs_per_s"])
    return {
        "size": size,
        "cvs": cold["cvs"],
        "fill_s": fill_seconds,
        "model_cvs_per_s": filled["model_cvs_per_s"],
        "runs": runs,
        "t": stage_total["cold"],
        "t_warm": stage_total.get("warm"),
        "model_s": model_seconds,
        "warm_share": stage_total["warm"] / (stage_total["cold"] + model_seconds) if "warm" in runs else None,
        "peak_rss": max(run["peak_rss"] for run in runs.values()),
    }


def fill_child(corpus: str, store: str, report: str, sources: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fill_cache import SOURCES_STORE, fill

    from ml_headcount.config import ExtractionSettings, StorageSettings
    from ml_headcount.io.storage import ArtifactStore

    stores = [ArtifactStore(StorageSettings(url=url)) for url in (store, str(SOURCES_STORE))]
    summary = fill(Path(corpus), *stores, ExtractionSettings(), int(sources))
    if not summary[
        "model_cvs_per_s"
    ]:  # the source CVs' keywords were cached: take the rate measured when they were not
        summary["model_cvs_per_s"] = json.loads((SOURCES_STORE / "model_rate.json").read_text())["cvs_per_s"]
    else:
        (SOURCES_STORE / "model_rate.json").write_text(json.dumps({"cvs_per_s": summary["model_cvs_per_s"]}))
    Path(report).write_text(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument(
        "--sources", type=int, default=160, help="real CVs the corpora recombine (the model runs on these)"
    )
    parser.add_argument(
        "--model-cvs-per-s",
        type=float,
        default=None,
        help="price the skipped extraction at this rate instead of the one measured on the sources",
    )
    parser.add_argument("--warm-max", type=int, default=None, help="no warm rerun for sizes above this")
    parser.add_argument(
        "--reuse", action="store_true", help="take a size's result saved by an earlier invocation under --work"
    )
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ml-headcount-bench"))
    args = parser.parse_args()

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFECT_HOME": str(Path(args.work) / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
    }
    print(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} sources={args.sources} "
        f"model_cvs_per_s={args.model_cvs_per_s or 'measured'}"
    )
    print(
        "| CVs | "
        + " | ".join(f"{s} s" for s in STAGES)
        + " | total s | warm s | model s (est.) | warm share | peak RSS GB |"
    )
    print("|---" * (len(STAGES) + 6) + "|")
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        saved = Path(args.work) / f"result-{size}.json"
        reused = args.reuse and saved.exists()
        if reused:
            result = json.loads(saved.read_text())
        else:
            result = measure(size, args, env)
            saved.write_text(json.dumps(result))
        results.append(result)
        timings = result["runs"]["cold"]["timings_s"]
        warm = "n/a" if result["t_warm"] is None else f"{result['t_warm']:.1f}"
        share = "n/a" if result["warm_share"] is None else f"{result['warm_share']:.2%}"
        print(
            f"| {result['cvs']} | "
            + " | ".join(f"{timings.get(s, 0.0):.1f}" for s in STAGES)
            + f" | {result['t']:.1f} | {warm} | {result['model_s']:.0f} | {share} | {result['peak_rss'] / 2**30:.2f} |"
            + (" (from an earlier invocation)" if reused else ""),
            flush=True,
        )
    ratio = results[-1]["t"] / results[-2]["t"] if len(results) > 1 else float("nan")
    warm_share = next((r["warm_share"] for r in reversed(results) if r["warm_share"] is not None), float("nan"))
    print(
        f"linear_ratio={ratio:.2f} peak_rss_gb={max(r['peak_rss'] for r in results) / 2**30:.2f} "
        f"warm_share={warm_share:.4f}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flow-run"]:
        flow_run(*sys.argv[2:5])
    elif sys.argv[1:2] == ["--fill"]:
        fill_child(*sys.argv[2:6])
    else:
        main()
