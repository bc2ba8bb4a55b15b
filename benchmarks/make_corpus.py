"""Build synthetic CV corpora of any size by recombining sentences of real CVs.

    uv run python benchmarks/make_corpus.py [--sizes 1000,10000,100000] [--input PATH] [--out DIR] [--seed 0]
    [--sources N]

Each synthetic CV takes a category with the source CVs' frequencies, then as
many sentences as a random source CV of that category has, drawn from all
source CVs of that category. The files (`cvs_<size>.csv`, columns cv_text and
category, and `cvs_<size>.sentences.parquet`, which sentences each row is made
of, for benchmarks/fill_cache.py) go to a directory outside the repository
(default: the system's temporary directory): generated data is never committed.

Caveat for what it measures: the n-grams of such a corpus repeat far more than
those of real CVs (every sentence is a real one, reused), so the phrase
embedding caches hit more often than they would on 100k real CVs.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml_headcount.config import IngestSettings  # noqa: E402
from ml_headcount.corpus.cleaning import clean_text  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "rated_cvs.csv"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "ml-headcount-bench" / "corpora"
# sentence ends, line breaks and the <br> the raw CVs use between entries
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|<br\s*/?>|\n+", re.IGNORECASE)


def source_cvs(path: str | Path = DEFAULT_INPUT, sources: int | None = None) -> pd.DataFrame:
    """The real CVs a corpus recombines: the first `sources` of each category in proportion, or all of them."""
    table = pd.read_csv(path, usecols=["cv_text", "category"], dtype=str, keep_default_na=False)
    if sources is None or sources >= len(table):
        return table.reset_index(drop=True)
    share = sources / len(table)
    return (
        pd.concat(group.head(max(1, round(len(group) * share))) for _, group in table.groupby("category", sort=True))
        .sort_index()
        .reset_index(drop=True)
    )


def sentence_pool(sources: pd.DataFrame) -> pd.DataFrame:
    """Every sentence of the source CVs, cleaned as ingestion cleans: columns source (row in `sources`), category,
    sentence.

    Cleaned once here, so that a synthetic CV is already clean text: ingestion
    leaves it as it is, and its cv_id is the hash of the text as written.
    """
    settings = IngestSettings()
    rows = [
        (source, category, clean)
        for source, (text, category) in enumerate(zip(sources["cv_text"], sources["category"]))
        for part in _SENTENCE_BREAK.split(text)
        if (clean := clean_text(part, settings))
    ]
    return pd.DataFrame(rows, columns=["source", "category", "sentence"])


def synthetic_corpus(sources: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """`size` CVs (columns cv_text, category) and, for each, the rows of `sentence_pool(sources)` it is made of."""
    rng = np.random.default_rng(seed)
    pool = sentence_pool(sources)
    lengths = pool.groupby("source").size()
    by_category = {
        c: (group.index.to_numpy(), lengths[group["source"].unique()].to_numpy())
        for c, group in pool.groupby("category", sort=True)
    }
    categories = sorted(by_category)
    weights = np.array([len(by_category[c][1]) for c in categories], dtype=float)
    sentences = pool["sentence"].to_numpy()
    rows, provenance = [], []
    for category in rng.choice(categories, size=size, p=weights / weights.sum()):
        pool_rows, cv_lengths = by_category[category]
        picked = pool_rows[rng.integers(len(pool_rows), size=cv_lengths[rng.integers(len(cv_lengths))])]
        rows.append((" ".join(sentences[picked]), category))
        provenance.append(picked)
    return pd.DataFrame(rows, columns=["cv_text", "category"]), provenance


def write_corpus(sources: pd.DataFrame, size: int, seed: int, out: Path) -> Path:
    """`cvs_<size>.csv`, and beside it `cvs_<size>.sentences.parquet`: each row's sentence-pool rows."""
    table, provenance = synthetic_corpus(sources, size, seed)
    path = out / f"cvs_{size}.csv"
    table.to_csv(path, index=False)
    pd.DataFrame({"sentences": provenance}).to_parquet(provenance_path(path), index=False)
    return path


def provenance_path(corpus: Path) -> Path:
    return corpus.with_suffix(".sentences.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", type=int, default=None, help="real CVs to draw sentences from (default: all)")
    args = parser.parse_args()

    sources = source_cvs(args.input, args.sources)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        path = write_corpus(sources, size, args.seed + size, out)
        print(f"{path}: {size} CVs from {len(sources)} real ones, {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
