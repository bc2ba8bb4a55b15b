"""Time and peak memory of the pipeline's extraction stage against corpus size, cold and warm.

    uv run python benchmarks/scale.py CORPUS.csv [CORPUS.csv ...] [--mode fast] [--shard-size 32] [--store DIR]

For each corpus (see make_corpus.py): ingest it as the pipeline does, then run
the extraction stage as the cv-keywords flow's tasks do, without Prefect:
plan the shards the extraction cache does not cover, extract them one at a
time (each shard's keywords go to the cache before the next starts; nothing
corpus-wide but the texts is held), and assemble the run's keyword table from
the cache. Then the same stage again: the warm rerun, everything cached.
Reports seconds, CVs/s and the process's peak RSS per corpus. Each corpus gets
a fresh cache under --store (default: the system's temporary directory).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from extraction import PeakRss  # noqa: E402
from ml_headcount import extraction_cache  # noqa: E402
from ml_headcount.config import ExtractionSettings, IngestSettings, StorageSettings  # noqa: E402
from ml_headcount.ingest import ingest  # noqa: E402
from ml_headcount.keywords import extract_keywords, keywords_table  # noqa: E402
from ml_headcount.storage import ArtifactStore  # noqa: E402


def extraction_stage(store: ArtifactStore, settings: ExtractionSettings, cvs) -> tuple[int, int]:
    """(CVs extracted, keyword rows of the run): uncached-extraction-shards, shard-keywords, run-keywords-table."""
    texts = dict(zip(cvs["cv_id"], cvs["text"]))
    shards = extraction_cache.plan_shards(list(texts), extraction_cache.cached_shards(store, settings), settings)
    for shard in shards:
        results = extract_keywords([texts[i] for i in shard.cv_ids], settings)
        extraction_cache.store_shard(store, settings, shard, keywords_table(list(shard.cv_ids), results))
    return sum(len(s.cv_ids) for s in shards), len(extraction_cache.load_keywords(store, settings, list(texts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+")
    parser.add_argument("--mode", choices=["exact", "fast"], default="fast")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "ml-headcount-bench" / "store"))
    args = parser.parse_args()

    settings = ExtractionSettings(mode=args.mode, shard_size=args.shard_size)
    extract_keywords(["warm up: machine learning engineer"], settings)  # model load and conversion are not the stage's
    print(f"mode={args.mode} shard_size={args.shard_size} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    print("| CVs | cold s | CVs/s | warm s | warm/cold | peak RSS MB | keyword rows |")
    print("|---|---|---|---|---|---|---|")
    for corpus in args.corpora:
        cvs = ingest(corpus, IngestSettings()).cvs
        store = ArtifactStore(StorageSettings(url=str(Path(args.store) / f"{Path(corpus).stem}-{time.time_ns()}")))
        with PeakRss() as rss:
            began = time.perf_counter()
            extracted, rows = extraction_stage(store, settings, cvs)
            cold = time.perf_counter() - began
            began = time.perf_counter()
            again, warm_rows = extraction_stage(store, settings, cvs)
            warm = time.perf_counter() - began
        assert extracted == len(cvs) and again == 0 and warm_rows == rows
        print(f"| {len(cvs)} | {cold:.1f} | {len(cvs) / cold:.2f} | {warm:.2f} | {warm / cold:.2%} | {rss.peak / 2**20:.0f} | {rows} |",
              flush=True)


if __name__ == "__main__":
    main()
