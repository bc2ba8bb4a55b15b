"""Keyword lists on CVs they never saw: the study's rule, the default learner and a TF-IDF + logistic-regression reference.

    uv run python benchmarks/filter_quality.py [--input PATH] [--storage-url URL] [--category 1]

All three are measured on the same stratified folds, made by the product's own
code (`ml_headcount.folds`, `ml_headcount.filter_quality`): lists are learned on
k-1 folds with the product's scoring and matched on the held-out fold, and the
reference classifier (TF-IDF of 1-2-grams of the cleaned texts, logistic
regression with balanced class weights, threshold 0.5) is trained and scored
on the same splits. Extracted keywords come from the content-keyed cache under
--storage-url (a run on the same input fills it); CVs it lacks are extracted
here first. The last line is
`study_cv_balanced=<x> cv_balanced=<y> reference_cv_balanced=<z> strict_cv_specificity=<s>`
for the broad lists (strict for the last figure) of --category.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml_headcount import extraction_cache  # noqa: E402
from ml_headcount.config import Settings, load_settings  # noqa: E402
from ml_headcount.filter_quality import cross_validate, match_column  # noqa: E402
from ml_headcount.folds import stratified_folds  # noqa: E402
from ml_headcount.ingest import ingest  # noqa: E402
from ml_headcount.keyword_filters import build_corpus, learn, organisation_name_share  # noqa: E402
from ml_headcount.keywords import KeywordExtractor, keywords_table  # noqa: E402
from ml_headcount.storage import ArtifactStore  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "rated_cvs.csv"


def cached_keywords(cvs: pd.DataFrame, settings: Settings, extractor: KeywordExtractor | None = None) -> pd.DataFrame:
    """Every CV's keywords from the extraction cache, extracting (and caching) the CVs it lacks (with `extractor`
    when given, e.g. one already loaded). Prints how many came from the cache."""
    store = ArtifactStore(settings.storage)
    store.verify()
    texts = cvs.set_index("cv_id")["text"]
    cached = extraction_cache.cached_shards(store, settings.extraction)
    shards = extraction_cache.plan_shards(texts.index.tolist(), cached, settings.extraction)
    if shards and extractor is None:
        extractor = KeywordExtractor(settings.extraction)
    for number, shard in enumerate(shards, start=1):
        results = extractor.extract(texts.loc[list(shard.cv_ids)].tolist())
        extraction_cache.store_shard(store, settings.extraction, shard, keywords_table(list(shard.cv_ids), results))
        print(f"extracted shard {number}/{len(shards)}", file=sys.stderr)
    extracted = sum(len(s.cv_ids) for s in shards)
    print(f"{settings.extraction.mode} mode keywords of {len(texts)} CVs: {len(texts) - extracted} from the extraction cache "
          f"({store.location(extraction_cache.cache_prefix(settings.extraction))}), {extracted} extracted now")
    return extraction_cache.load_keywords(store, settings.extraction, texts)


def reference_heldout(texts: list[str], positive: np.ndarray, folds: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out decisions and probabilities of TF-IDF (1-2-grams) + logistic regression on the same folds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    probability = np.zeros(len(texts))
    for fold in np.unique(folds):
        train, held = folds != fold, folds == fold
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        model = LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)
        model.fit(vectorizer.fit_transform([t for t, keep in zip(texts, train) if keep]), positive[train])
        probability[held] = model.predict_proba(vectorizer.transform([t for t, keep in zip(texts, held) if keep]))[:, 1]
    return probability >= 0.5, probability


def balanced_accuracy(matched: np.ndarray, positive: np.ndarray) -> tuple[float, float, float]:
    sensitivity, specificity = matched[positive].mean(), (~matched[~positive]).mean()
    return float(sensitivity), float(specificity), float((sensitivity + specificity) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--storage-url", default="/tmp/ml-headcount-filter-quality", help="where the extraction cache is (or goes)")
    parser.add_argument("--category", default="1")
    parser.add_argument("--config", help="settings file (extraction, scoring and filters sections apply)")
    args = parser.parse_args()

    settings = load_settings(args.config, storage={"url": args.storage_url})
    cvs = ingest(args.input, settings.ingest).cvs
    keywords = cached_keywords(cvs, settings)
    corpus = build_corpus(cvs, keywords, settings.extraction)
    labels = corpus.cvs["category"].to_numpy().astype(str)
    positive = labels == args.category
    folds = stratified_folds(corpus.cvs["cv_id"].to_numpy(), labels, settings.filters.folds, settings.filters.seed)
    print(f"{len(cvs)} CVs ({positive.sum()} in category {args.category}), {settings.filters.folds} folds, seed {settings.filters.seed}")

    rows = []
    summary = {}
    for method in ("study", "selected"):
        method_settings = settings.model_copy(update={"filters": settings.filters.model_copy(update={"method": method})})
        started = time.perf_counter()
        result = cross_validate(corpus, method_settings, folds)
        elapsed = time.perf_counter() - started
        in_sample = learn(corpus, None, method_settings)[args.category]
        for name in ("broad", "strict"):
            matched = result.heldout_matches[match_column(args.category, name)].to_numpy() > 0
            sensitivity, specificity, balanced = balanced_accuracy(matched, positive)
            quality = result.quality[args.category][name]
            rows.append({
                "method": method, "list": name, "cv_sensitivity": sensitivity, "cv_specificity": specificity,
                "cv_balanced": balanced, "balanced_80%": quality["balanced_accuracy_interval"],
                "keywords (all CVs)": len(in_sample[name]),
                "organisation names": organisation_name_share(corpus, in_sample[name], settings.filters),
                "cv_seconds": round(elapsed, 1),
            })
            summary[(method, name)] = (sensitivity, specificity, balanced)
        print(f"{method} lists learned on all CVs: broad {in_sample['broad'][:15]} strict {in_sample['strict'][:15]}")

    from sklearn.metrics import roc_auc_score

    decided, probability = reference_heldout(corpus.cvs["text"].tolist(), positive, folds, settings.filters.seed)
    sensitivity, specificity, reference = balanced_accuracy(decided, positive)
    rows.append({"method": "reference tf-idf + logistic regression", "list": "-", "cv_sensitivity": sensitivity,
                 "cv_specificity": specificity, "cv_balanced": reference, "roc_auc": roc_auc_score(positive, probability)})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).round(4).to_string(index=False))
    print(
        f"study_cv_balanced={summary[('study', 'broad')][2]:.4f} cv_balanced={summary[('selected', 'broad')][2]:.4f} "
        f"reference_cv_balanced={reference:.4f} strict_cv_specificity={summary[('selected', 'strict')][1]:.4f}"
    )


if __name__ == "__main__":
    main()
