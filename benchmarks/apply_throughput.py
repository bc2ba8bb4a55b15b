"""Throughput and memory of `ml-headcount apply` on a generated table of profiles.

    uv run python benchmarks/apply_throughput.py --run RUN_LOCATION [--rows 20000,80000] [--chars 2500]

The table is made of real CV sentences (from ../shared/data/rated_cvs.csv)
recombined at random into profiles of about --chars characters, written as
Parquet under /tmp (never into the repository). For each size it runs the
product's apply path (`ml_headcount.lists.apply.apply_run_lists`, the code
behind the CLI and the cv-apply flow) in this one process and prints
profiles/s, by wall clock and per CPU second of the process (= per core: the
path is single-threaded; on a shared machine the CPU figure is the stable one),
and the peak resident memory; memory that does not grow with the
row count is what "bounded" means. It also times the two halves on one chunk:
cleaning (`ingest.clean_text`, the run's cleaning) and matching
(`matching.KeywordMatcher`). The last line is
`profiles_per_s=<end to end per CPU second, largest size> matcher_profiles_per_s=<x> peak_rss_mb=<largest size>`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extraction import PeakRss  # noqa: E402
from ml_headcount.config import IngestSettings, ListSettings  # noqa: E402
from ml_headcount.corpus.cleaning import clean_text  # noqa: E402
from ml_headcount.io.storage import ArtifactStore, StorageSettings  # noqa: E402
from ml_headcount.lists.apply import apply_run_lists  # noqa: E402
from ml_headcount.lists.run_lists import load_run_lists  # noqa: E402
from ml_headcount.runs.finished import split_run_reference  # noqa: E402
from ml_headcount.scoring.matching import KeywordMatcher  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "rated_cvs.csv"
_SENTENCE_END = re.compile(r"(?<=[.!?|])\s+")


def generate_profiles(path: Path, rows: int, chars: int, seed: int) -> None:
    """Profiles of ~chars characters, each a random recombination of real CV sentences, in row groups of 10,000."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sentences = [
        s for text in pd.read_csv(SOURCE, usecols=["cv_text"])["cv_text"] for s in _SENTENCE_END.split(str(text)) if s
    ]
    lengths = np.array([len(s) + 1 for s in sentences])
    rng = np.random.default_rng(seed)
    per_profile = max(1, int(round(chars / lengths.mean())))
    with pq.ParquetWriter(path, pa.schema([("profile_summary", pa.string())])) as writer:
        for start in range(0, rows, 10_000):
            count = min(10_000, rows - start)
            picks = rng.integers(0, len(sentences), size=(count, per_profile))
            profiles = [" ".join(sentences[i] for i in row) for row in picks]
            writer.write_table(pa.table({"profile_summary": profiles}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished run's location (as `ml-headcount run` prints it)")
    parser.add_argument("--rows", default="20000,80000", help="comma-separated table sizes")
    parser.add_argument("--chars", type=int, default=2500)
    parser.add_argument("--chunk-rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    storage_url, run_id = split_run_reference(args.run, "./artifacts")
    run_lists = load_run_lists(ArtifactStore(StorageSettings(url=storage_url)), run_id)
    print(f"run {run_lists.run_id}: lists {dict((n, len(k)) for n, k in run_lists.lists.items())}")
    workdir = Path(tempfile.mkdtemp(prefix="ml-headcount-apply-"))
    results = []
    for rows in [int(r) for r in args.rows.split(",")]:
        table = workdir / f"profiles-{rows}.parquet"
        generate_profiles(table, rows, args.chars, args.seed)
        with PeakRss() as memory:
            started, cpu_started = time.perf_counter(), time.process_time()
            summary = apply_run_lists(
                str(table),
                run_lists,
                str(workdir / f"matches-{rows}.parquet"),
                IngestSettings(),
                # the lists alone, as the benchmark has always timed them (not the run's classifier)
                ListSettings(apply_chunk_rows=args.chunk_rows, text_classifier=False),
            )
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        results.append((rows, rows / cpu_seconds, memory.peak / 2**20))
        print(
            f"{rows} profiles: {seconds:.1f} s wall ({rows / seconds:.0f} profiles/s), {cpu_seconds:.1f} CPU s "
            f"({rows / cpu_seconds:.0f} profiles per CPU second), peak RSS {memory.peak / 2**20:.0f} MB, "
            f"matched {summary['matched']}"
        )

    sample = (
        pd.read_parquet(workdir / f"profiles-{results[0][0]}.parquet")["profile_summary"].head(args.chunk_rows).tolist()
    )
    started = time.process_time()
    cleaned = [clean_text(text, run_lists.ingest) for text in sample]
    cleaning = len(sample) / (time.process_time() - started)
    matcher = KeywordMatcher(run_lists.lists, run_lists.extraction)
    started = time.process_time()
    matcher.match(cleaned)
    matching = len(sample) / (time.process_time() - started)
    print(
        f"one chunk of {len(sample)}: cleaning {cleaning:.0f} profiles/s, matching {matching:.0f} profiles/s "
        f"(mean {np.mean([len(t) for t in sample]):.0f} characters)"
    )
    print(f"profiles_per_s={results[-1][1]:.0f} matcher_profiles_per_s={matching:.0f} peak_rss_mb={results[-1][2]:.0f}")


if __name__ == "__main__":
    main()
