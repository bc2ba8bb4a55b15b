"""Local extraction CVs/s on 1 core and on 2: inference threads in one process, or one process (one model) per core.

    uv run python benchmarks/cores.py [--limit 24] [--shard-size 12] [--only '2 cores, processes']

Three layouts extract the same first --limit rated CVs (exact mode, shards of
--shard-size), each in fresh processes pinned with CPU affinity (OpenVINO,
PyTorch and NumPy size their thread pools by the CPUs a process may use):
- 1 core: one process on CPU 0;
- 2 cores, threads: one process on CPUs 0-1;
- 2 cores, processes: two processes, one per CPU, each with half the shards.
Model loading is excluded (each process warms up first, then times its
shards). CVs/s = CVs / the slowest process's extraction seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(first: int, count: int, shard_size: int) -> None:
    """Child: extract rated CVs [first, first + count) in shards; prints its extraction seconds as JSON."""
    import time

    sys.path.insert(0, str(ROOT))
    from ml_headcount.config import ExtractionSettings, IngestSettings
    from ml_headcount.corpus.ingest import ingest
    from ml_headcount.extraction.extractor import KeywordExtractor

    settings = ExtractionSettings(shard_size=shard_size)
    texts = (
        ingest(str(ROOT.parent / "shared" / "data" / "rated_cvs.csv"), IngestSettings())
        .cvs["text"]
        .tolist()[first : first + count]
    )
    extractor = KeywordExtractor(settings)
    extractor.extract(["warm up: machine learning engineer"])
    began = time.perf_counter()
    for i in range(0, len(texts), shard_size):
        extractor.extract(texts[i : i + shard_size])
    print(
        json.dumps({"seconds": time.perf_counter() - began, "cvs": len(texts), "cpus": sorted(os.sched_getaffinity(0))})
    )


def layout(groups: list[tuple[str, int, int]], shard_size: int) -> float:
    """Run one worker per (cpus, first, count) at once; CVs/s over the slowest."""
    processes = [
        subprocess.Popen(
            ["taskset", "-c", cpus, sys.executable, __file__, "--worker", str(first), str(count), str(shard_size)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for cpus, first, count in groups
    ]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    return sum(r["cvs"] for r in results) / max(r["seconds"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--shard-size", type=int, default=12)
    parser.add_argument(
        "--only", default=None, help="run only the layout of this name (the ratio is then to the best run)"
    )
    args = parser.parse_args()
    n, half = args.limit, args.limit // 2
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} CVs={n} shard_size={args.shard_size}", flush=True)
    layouts = {
        "1 core": [("0", 0, n)],
        "2 cores, threads": [("0,1", 0, n)],
        "2 cores, processes": [("0", 0, half), ("1", half, n - half)],
    }
    rates = {}
    for name, groups in layouts.items():
        if args.only in (None, name):
            rates[name] = layout(groups, args.shard_size)
            ratio = f"{rates[name] / rates['1 core']:.2f}x" if "1 core" in rates else ""
            print(f"| {name} | {rates[name]:.3f} CVs/s | {ratio} | load {os.getloadavg()[0]:.1f} |", flush=True)
    print(f"best={max(rates, key=rates.get)} load_after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*map(int, sys.argv[2:5]))
    else:
        main()
