"""Keyword extraction measured against the study's method: speed on the first CVs, fast mode's quality on all.

    uv run python benchmarks/extraction.py [--limit N] [--input PATH] [--chunk C] [--levers] [--store PATH]

Methods, run over the same CVs in chunks of C, taking turns (the order rotates
per chunk) so that load from other processes on a shared machine hits them
alike:

- reference: the study's loop, one KeyBERT.extract_keywords call per CV with
  its parameters on the plain sentence-transformers model (PyTorch, float32);
- exact: the product's default mode, one call per chunk (= shard);
- fast: the product's fast mode;
- with --levers, also the steps between them, to say what each lever gives:
  KeyBERT batched over the shard, and exact mode without bfloat16 screening.

Models are loaded and warmed up before timing. Each mode keeps its in-process
embedding caches across chunks, as it would across a run's shards.

Speed and Jaccard are measured on the first --limit CVs. Fast mode is judged
by what a user gets, on every usable CV of the input whatever --limit says:
exact and fast keywords of all CVs (through the product's extraction cache
under --store, so a rerun extracts nothing), the category's broad list learned
from each with the default settings and cross-validated on the same folds
(`ml_headcount.lists.quality.cross_validate`). The last line is
`speedup=<exact/reference> jaccard=<exact vs reference> fast_speedup=<fast/reference>
fast_balanced_delta=<exact - fast cross-validated balanced accuracy of the broad list>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.list_quality import cached_keywords  # noqa: E402
from ml_headcount.config import ExtractionSettings, IngestSettings, Settings  # noqa: E402
from ml_headcount.corpus.ingest import ingest  # noqa: E402
from ml_headcount.extraction import extractor as keywords  # noqa: E402
from ml_headcount.extraction import mmr
from ml_headcount.extraction.candidates import candidate_vectorizer, stop_words  # noqa: E402
from ml_headcount.lists.evidence import build_corpus  # noqa: E402
from ml_headcount.lists.folds import stratified_folds  # noqa: E402
from ml_headcount.lists.quality import cross_validate  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "rated_cvs.csv"
DEFAULT_STORE = "/tmp/ml-headcount-bench/extraction-store"
WARM_UP = ["machine learning engineer with python and pytorch experience building recommendation systems"]


class PeakRss:
    """Highest resident set size seen while inside the block, sampled every 5 ms (native memory included)."""

    def __init__(self):
        self.peak = 0
        self._running = False

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, self.current())
            time.sleep(0.005)

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, self.current())


def reference_method(settings: ExtractionSettings):
    """The study's per-CV loop."""
    from keybert import KeyBERT

    model = KeyBERT(model=keywords.reference_model(settings))
    stop = stop_words(settings)

    def run(texts):
        return [
            model.extract_keywords(
                text,
                keyphrase_ngram_range=(settings.ngram_min, settings.ngram_max),
                stop_words=stop,
                top_n=settings.top_n,
                use_mmr=settings.use_mmr,
                diversity=settings.diversity,
            )
            for text in texts
        ]

    return run


def keybert_batched_method(settings: ExtractionSettings):
    """Lever 1: one KeyBERT call per shard (each distinct candidate embedded once per shard)."""
    from keybert import KeyBERT
    from keybert.backend import SentenceTransformerBackend

    model = KeyBERT(model=SentenceTransformerBackend(keywords.reference_model(settings), batch_size=64))

    def run(texts):
        results = model.extract_keywords(
            texts,
            vectorizer=candidate_vectorizer(settings),
            top_n=settings.top_n,
            use_mmr=settings.use_mmr,
            diversity=settings.diversity,
        )
        return results if len(texts) > 1 else [results]

    return run


def unscreened_method(extractor: keywords.KeywordExtractor):
    """Lever 2: OpenVINO float32 for every candidate, cached across shards, vectorised MMR; no bfloat16 screening."""
    settings = extractor.settings
    exact, encoder = extractor._phrases(settings.precision), extractor._encoder(settings.precision)

    def run(texts):
        vectorizer = candidate_vectorizer(settings)
        counts = vectorizer.fit_transform(texts).tocsr()
        counts.sort_indices()
        vocabulary = vectorizer.get_feature_names_out().tolist()
        vectors = exact.embed(vocabulary)
        out = []
        for doc_vector, row in zip(encoder.encode(texts), range(len(texts))):
            indices = counts.indices[counts.indptr[row] : counts.indptr[row + 1]]
            local, similarity = mmr.mmr(doc_vector, vectors[indices], settings.top_n, settings.diversity)
            out.append([(vocabulary[j], round(float(s), 4)) for j, s in zip(indices[local], similarity)])
        return out

    return run


def jaccard(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> float:
    sa, sb = {k for k, _ in a}, {k for k, _ in b}
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def list_quality(
    input_path: str, modes: dict[str, keywords.KeywordExtractor], store: str, category: str
) -> dict[str, dict]:
    """Cross-validated quality of the category's broad list learned from each mode's keywords of every usable CV.

    Default settings throughout, one set of folds for all modes; keywords come
    from the extraction cache under `store` (extracted there first if missing).
    """
    settings = Settings(storage={"url": store})
    cvs = ingest(input_path, settings.ingest).cvs.reset_index(drop=True)
    labels = cvs["category"].to_numpy().astype(str)
    folds = stratified_folds(cvs["cv_id"].to_numpy(), labels, settings.lists.folds, settings.lists.seed)
    quality = {}
    for mode, extractor in modes.items():
        mode_settings = settings.model_copy(update={"extraction": extractor.settings})
        corpus = build_corpus(cvs, cached_keywords(cvs, mode_settings, extractor), extractor.settings)
        quality[mode] = cross_validate(corpus, settings.lists, settings.scoring, folds).quality[category]["broad"]
    return quality


def markdown(table: pd.DataFrame) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="CVs to use (the first N usable ones).")
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--chunk", type=int, default=8, help="CVs per turn and per product call (shard).")
    parser.add_argument("--levers", action="store_true", help="Also measure the intermediate steps.")
    parser.add_argument(
        "--store", default=DEFAULT_STORE, help="Extraction cache of the full-set keywords (kept between runs)."
    )
    parser.add_argument("--category", default="1", help="Category whose broad list judges fast mode.")
    args = parser.parse_args()

    load_before = os.getloadavg()
    cvs = ingest(args.input, IngestSettings(limit=args.limit)).cvs
    texts = cvs["text"].tolist()
    exact_settings = ExtractionSettings(shard_size=args.chunk)
    fast_settings = exact_settings.model_copy(update={"mode": "fast"})
    lever_settings = exact_settings.model_copy(update={"screen_margin": 0.0})  # its own cache key, so its own caches

    extractors = {"exact": keywords.KeywordExtractor(exact_settings), "fast": keywords.KeywordExtractor(fast_settings)}
    factories = {"reference": lambda: reference_method(exact_settings)}
    if args.levers:
        extractors["openvino-f32"] = keywords.KeywordExtractor(lever_settings)
        factories["keybert-batched"] = lambda: keybert_batched_method(exact_settings)
        factories["openvino-f32"] = lambda: unscreened_method(extractors["openvino-f32"].load())
    factories["exact"] = lambda: extractors["exact"].load().extract
    factories["fast"] = lambda: extractors["fast"].load().extract

    methods, load_s = {}, {}
    for name, factory in factories.items():
        started = time.perf_counter()
        methods[name] = factory()
        methods[name](WARM_UP)
        load_s[name] = time.perf_counter() - started

    names = list(methods)
    results = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    peak = dict.fromkeys(names, 0)
    for turn, start in enumerate(range(0, len(texts), args.chunk)):
        chunk = texts[start : start + args.chunk]
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            with PeakRss() as rss:
                began = time.perf_counter()
                results[name].extend(methods[name](chunk))
                seconds[name] += time.perf_counter() - began
            peak[name] = max(peak[name], rss.peak)
        print(
            f"chunk {turn + 1}: {len(results['reference'])} CVs, " + ", ".join(f"{n} {seconds[n]:.1f}s" for n in names),
            flush=True,
        )

    reference = results["reference"]
    rows = []
    for name in names:
        jac = [jaccard(r, x) for r, x in zip(reference, results[name])]
        rows.append(
            {
                "method": name,
                "CVs/s": len(texts) / seconds[name],
                "speedup": seconds["reference"] / seconds[name],
                "jaccard_vs_reference": float(np.mean(jac)),
                "min_jaccard": float(np.min(jac)),
                "peak_rss_MB": peak[name] / 2**20,
                "load_s": load_s[name],
            }
        )
    table = pd.DataFrame(rows)
    load_after = os.getloadavg()
    print()
    print(
        f"{len(texts)} CVs from {args.input}, chunks of {args.chunk}; {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    for name, extractor in extractors.items():
        for precision, cache in sorted(extractor._phrase_caches.items()):
            print(f"{name}, {precision} phrase cache: {cache.misses} phrases embedded, {cache.hits} hits")
    print(markdown(table))
    print(f"peak GPU memory: {peak_gpu_memory_gb()}")

    print(
        f"\nFast mode judged on every usable CV of {args.input}: category {args.category}'s broad list, cross-validated"
    )
    quality = list_quality(
        args.input, {"exact": extractors["exact"], "fast": extractors["fast"]}, args.store, args.category
    )
    print(
        markdown(
            pd.DataFrame(
                [
                    {
                        "keywords": mode,
                        "cv_balanced_accuracy": q["balanced_accuracy"],
                        "80%_interval": q["balanced_accuracy_interval"],
                        "cv_sensitivity": q["sensitivity"],
                        "cv_specificity": q["specificity"],
                    }
                    for mode, q in quality.items()
                ]
            )
        )
    )
    row = table.set_index("method")
    delta = quality["exact"]["balanced_accuracy"] - quality["fast"]["balanced_accuracy"]
    print(
        f"speedup={row.at['exact', 'speedup']:.2f} jaccard={row.at['exact', 'jaccard_vs_reference']:.4f} "
        f"fast_speedup={row.at['fast', 'speedup']:.2f} fast_balanced_delta={delta:.4f}"
    )


def peak_gpu_memory_gb() -> str:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA"
    return f"{torch.cuda.max_memory_allocated() / 1e9:.2f} GB allocated at most, all methods"


if __name__ == "__main__":
    main()
