"""Peak memory of ingesting a large generated CSV: does it follow the chunk size or the file size?

    uv run python benchmarks/ingest_memory.py [--mb 1024] [--limit N] [--chunk-rows C] [--dir /tmp]

Writes a CSV of about --mb MiB of distinct CVs (from the demo CVs, each row made
unique) under --dir, ingests it in a fresh child process and reports that
process's peak RSS, then deletes the file. With --limit, the rows beyond the
limit are read and counted but not kept, so the peak shows what the streaming
reader itself costs; without it the kept CVs (the output) dominate. The last
line is `file_mb=... rows=... peak_rss_mb=... baseline_rss_mb=... seconds=...`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from ml_headcount.config import IngestSettings
from ml_headcount.corpus.ingest import ingest_file
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
result = ingest_file(sys.argv[1], IngestSettings(limit=json.loads(sys.argv[2]), chunk_rows=int(sys.argv[3])))
print(json.dumps({"rows": result.input_rows, "cvs": len(result.cvs), "beyond_limit": result.beyond_limit,
                  "seconds": round(time.perf_counter() - started, 1), "baseline_kb": baseline}))
"""


def write_csv(path: Path, megabytes: int) -> None:
    demo = pd.read_csv(REPO / "examples" / "demo_cvs.csv")
    texts, labels = demo.iloc[:, 0].astype(str).tolist(), demo.iloc[:, 1].astype(str).tolist()
    target, written, row = megabytes * 2**20, 0, 0
    with path.open("w", encoding="utf-8") as out:
        out.write(f"{demo.columns[0]},{demo.columns[1]}\n")
        while written < target:
            block = []
            for _ in range(10_000):
                i = row % len(texts)
                block.append(f'"{texts[i].replace(chr(34), chr(39))} (profile {row})",{labels[i]}\n')
                row += 1
            chunk = "".join(block)
            out.write(chunk)
            written += len(chunk.encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    path = Path(args.dir) / f"ml-headcount-ingest-{args.mb}mb.csv"
    try:
        write_csv(path, args.mb)
        size_mb = path.stat().st_size / 2**20
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), json.dumps(args.limit), str(args.chunk_rows)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(child))
        print(
            f"file_mb={size_mb:.0f} rows={child['rows']} cvs={child['cvs']} limit={args.limit} "
            f"chunk_rows={args.chunk_rows} peak_rss_mb={peak_mb:.0f} baseline_rss_mb={child['baseline_kb'] / 1024:.0f} "
            f"seconds={time.perf_counter() - started:.0f}"
        )
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
