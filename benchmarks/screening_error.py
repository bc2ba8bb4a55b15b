"""How far a reduced-precision candidate vector moves the similarities MMR compares: the basis of `screen_margin`.

    uv run python benchmarks/screening_error.py [--cvs 12] [--input PATH] [--precision bfloat16]

Exact mode screens candidates in a cheaper precision (bfloat16 on CPU, float16 on
a GPU) and re-embeds in float32 only those within `extraction.screen_margin` of
a pick. That is safe while |(a - e) . u|, for a candidate's approximate vector a,
its exact vector e and every unit vector u that MMR compares it with (the CV's
vector and the other candidates'), stays below the margin. This measures it on
the first --cvs usable CVs of --input: each CV's candidates (the product's
tokenisation and stop words) embedded in both precisions on PyTorch (the
precision runs for real there; OpenVINO on a CPU without bfloat16 units would
return float32's vectors). The last line is
`max_similarity_error=<largest |(a - e) . u|> l2_median=<..> l2_max=<..> candidates=<n>`.
docs/performance.md reports 0.0021 over the 14,190 candidates of 12 CVs with
OpenVINO's bfloat16 on AMX units; PyTorch's bfloat16, measured here against every
candidate pair, gave 0.0044 on the first 12 rated CVs (15,009 candidates; L2 error
median 0.0051, max 0.0127): both under the default margin 0.0075, and every shard
checks its own error anyway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml_headcount.config import ExtractionSettings, IngestSettings  # noqa: E402
from ml_headcount.corpus.ingest import ingest  # noqa: E402
from ml_headcount.extraction import encoders  # noqa: E402
from ml_headcount.extraction.candidates import candidate_vectorizer  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "rated_cvs.csv"


def screening_errors(texts: list[str], settings: ExtractionSettings, precision: str) -> tuple[float, np.ndarray]:
    """The largest similarity error over every CV's candidates, and each candidate vector's L2 error."""
    exact_encoder = encoders.load_encoder(settings.model, settings.max_seq_length, "cpu", "torch", "float32", None)
    cheap_encoder = encoders.load_encoder(settings.model, settings.max_seq_length, "cpu", "torch", precision, None)
    largest, l2 = 0.0, []
    for text in texts:
        phrases = candidate_vectorizer(settings).fit([text]).get_feature_names_out().tolist()
        exact, cheap = exact_encoder.encode(phrases), cheap_encoder.encode(phrases)
        directions = np.vstack([exact_encoder.encode([text]), exact])  # the CV and every candidate, exactly
        largest = max(largest, float(np.abs((cheap - exact) @ directions.T).max()))
        l2.append(np.linalg.norm(cheap - exact, axis=1))
    return largest, np.concatenate(l2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cvs", type=int, default=12)
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--precision", choices=["bfloat16", "float16"], default="bfloat16")
    args = parser.parse_args()
    texts = ingest(args.input, IngestSettings(limit=args.cvs)).kept.table()["text"].tolist()
    largest, l2 = screening_errors(texts, ExtractionSettings(), args.precision)
    print(
        f"{len(texts)} CVs from {args.input}, {args.precision} against float32, default margin "
        f"{ExtractionSettings().screen_margin}"
    )
    print(
        f"max_similarity_error={largest:.4f} l2_median={np.median(l2):.4f} l2_max={l2.max():.4f} candidates={len(l2)}"
    )


if __name__ == "__main__":
    main()
