"""Build synthetic CV corpora of any size by recombining sentences of real CVs.

    uv run python benchmarks/make_corpus.py [--sizes 1000,10000,100000] [--input PATH] [--out DIR] [--seed 0]

Each synthetic CV takes a category with the real corpus's frequencies, then as
many sentences as a random real CV of that category has, drawn from all real
CVs of that category. The files (`cvs_<size>.csv`, columns cv_text and
category) go to a directory outside the repository (default: the system's
temporary directory): generated data is never committed.

Caveat for what it measures: the n-grams of such a corpus repeat far more than
those of real CVs (every sentence is a real one, reused), so the phrase
embedding caches hit more often than they would on 100k real CVs.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "rated_cvs.csv"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "ml-headcount-bench" / "corpora"
# sentence ends, line breaks and the <br> the raw CVs use between entries
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|<br\s*/?>|\n+", re.IGNORECASE)


def sentences_by_category(table: pd.DataFrame) -> dict[str, list[list[str]]]:
    """Per category, each real CV as its list of non-empty sentences."""
    out: dict[str, list[list[str]]] = {}
    for text, category in zip(table["cv_text"].astype(str), table["category"].astype(str)):
        parts = [s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()]
        if parts:
            out.setdefault(category, []).append(parts)
    return out


def synthetic_corpus(cvs: dict[str, list[list[str]]], size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    categories = sorted(cvs)
    weights = np.array([len(cvs[c]) for c in categories], dtype=float)
    pools = {c: [s for cv in cvs[c] for s in cv] for c in categories}
    rows = []
    for category in rng.choice(categories, size=size, p=weights / weights.sum()):
        length = len(cvs[category][rng.integers(len(cvs[category]))])
        pool = pools[category]
        rows.append((" ".join(pool[i] for i in rng.integers(len(pool), size=length)), category))
    return pd.DataFrame(rows, columns=["cv_text", "category"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cvs = sentences_by_category(pd.read_csv(args.input, usecols=["cv_text", "category"], dtype=str, keep_default_na=False))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        path = out / f"cvs_{size}.csv"
        synthetic_corpus(cvs, size, args.seed + size).to_csv(path, index=False)
        print(f"{path}: {size} CVs, {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
