"""Keyword lists on CVs they never saw: the study's rule, the default learner, the TF-IDF + logistic regression.

    uv run python benchmarks/list_quality.py [--input PATH] [--storage-url URL] [--category 1] [--repeats 5]
                                               [--no-lockbox] [--mode exact|fast] [--replay N]

First a lockbox is set aside: 20 % of the CVs of each category, chosen by the
sha256 of a fixed salt and the cleaned text (`lockbox_rows`); no design
decision looked at it. On the other 80 % (the development CVs), every method
is cross-validated with the product's own code (`ml_headcount.lists.folds`,
`ml_headcount.lists.quality`), with --repeats fold seeds: lists are learned on
k-1 folds and matched on the held-out fold, with the product's matcher and
with phrase search of the list's query (the matcher of a search tool). The
run's TF-IDF + logistic-regression annotator (`ml_headcount.lists.text_classifier`:
1-2-grams of the cleaned texts, balanced class weights, threshold 0.5) is
trained and scored on the first seed's folds. Last, the default learner's lists learned on every
development CV are matched once on the lockbox. Extracted keywords come from
the content-keyed cache under --storage-url (a run on the same input fills
it); CVs it lacks are extracted here first. The last line is
`lockbox_broad_balanced=<l> cv_broad_balanced=<c> seed_spread=<s> phrase_cv_broad_balanced=<p>`
for the broad list of --category (`lockbox_broad_balanced=hidden` with --no-lockbox).

With --replay N it does something else: the design selection replayed on N random development/test splits of all
the CVs (`design_replay.py`): every learner variant cross-validated on each development part, the best one chosen,
each scored on the test part. It prints the expected figure on new CVs and its spread per variant and for the
replayed choice; the last line is `replay_new_cv_balanced=<m> replay_sd=<s> replay_optimism=<o>
default_new_cv_balanced=<d>`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from design_replay import VARIANTS, replay, summary  # noqa: E402

from ml_headcount.config import Settings, load_settings  # noqa: E402
from ml_headcount.corpus.ingest import ingest  # noqa: E402
from ml_headcount.extraction import cache as extraction_cache  # noqa: E402
from ml_headcount.extraction.extractor import KeywordExtractor, keywords_table  # noqa: E402
from ml_headcount.io.storage import ArtifactStore  # noqa: E402
from ml_headcount.lists import text_classifier  # noqa: E402
from ml_headcount.lists.eligibility import organisation_name_share  # noqa: E402
from ml_headcount.lists.evidence import Corpus, build_corpus  # noqa: E402
from ml_headcount.lists.folds import stratified_folds  # noqa: E402
from ml_headcount.lists.learners import LIST_NAMES, learn  # noqa: E402
from ml_headcount.lists.quality import MATCHERS, cross_validate, phrase_list_matches  # noqa: E402
from ml_headcount.scoring.keyword_list import list_column  # noqa: E402
from ml_headcount.scoring.matching import KeywordMatcher, exclusions_of  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "rated_cvs.csv"
# The lockbox: CVs that no design decision looked at; its figure is computed once, at the end (docs/lists.md).
LOCKBOX_SHARE = 0.2
LOCKBOX_SALT = "ml-headcount lockbox 2026-12, issue 22: "


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
    print(
        f"{settings.extraction.mode} mode keywords of {len(texts)} CVs: {len(texts) - extracted} from the "
        "extraction cache "
        f"({store.location(extraction_cache.cache_prefix(settings.extraction))}), {extracted} extracted now"
    )
    return extraction_cache.load_keywords(store, settings.extraction, texts)


def balanced_accuracy(matched: np.ndarray, positive: np.ndarray) -> tuple[float, float, float]:
    sensitivity, specificity = matched[positive].mean(), (~matched[~positive]).mean()
    return float(sensitivity), float(specificity), float((sensitivity + specificity) / 2)


def lockbox_rows(cvs: pd.DataFrame, share: float = LOCKBOX_SHARE, salt: str = LOCKBOX_SALT) -> np.ndarray:
    """Rows of the lockbox: within each category, the round(share * n) CVs whose sha256(salt + cleaned text) is
    smallest. The rule reads no text beyond its hash, no label beyond the category, and no figure of any method."""
    digest = cvs["text"].map(lambda text: hashlib.sha256(f"{salt}{text}".encode()).hexdigest())
    chosen = [group.sort_values().index[: round(share * len(group))] for _, group in digest.groupby(cvs["category"])]
    return np.sort(np.concatenate([cvs.index.get_indexer(c) for c in chosen]))


def with_list_settings(settings: Settings, **update) -> Settings:
    return settings.model_copy(update={"lists": settings.lists.model_copy(update=update)})


def lockbox_quality(development: Corpus, lockbox: pd.DataFrame, settings: Settings, category: str) -> dict[str, tuple]:
    """(sensitivity, specificity, balanced) per matcher of the broad and strict lists learned on every development CV,
    and of the TF-IDF classifier learned on them, on the lockbox CVs."""
    lists = learn(development, None, settings.lists, settings.scoring)[category]
    texts, positive = lockbox["text"].tolist(), lockbox["category"].to_numpy().astype(str) == category
    product = KeywordMatcher({name: lists[name] for name in LIST_NAMES}, settings.extraction).match(texts)
    result = {}
    for i, name in enumerate(LIST_NAMES):
        result[("product", name)] = balanced_accuracy(product[:, i], positive)
        result[("phrase", name)] = balanced_accuracy(phrase_list_matches(texts, lists[name]), positive)
    model = text_classifier.fit(
        development.cvs["text"].tolist(), development.cvs["category"].to_numpy().astype(str), settings.lists.seed
    )
    result[("classifier", text_classifier.NAME)] = balanced_accuracy(
        model.annotate(texts)[text_classifier.column(category)] > 0, positive
    )
    return result


def print_replay(corpus: Corpus, settings: Settings, category: str, splits: int, variants: list[str]) -> None:
    """The replayed design selection on `splits` development/test splits of all the corpus's CVs, and its summary."""
    started = time.perf_counter()
    table = replay(corpus, settings, category, splits, variants)
    result = summary(table)
    print(
        f"design selection replayed on {splits} stratified 80/20 splits of {len(corpus.cvs)} CVs "
        f"({time.perf_counter() - started:.0f} s); broad list of category {category}; choices per variant: "
        f"{table[table['chosen']]['variant'].value_counts().to_dict()}"
    )
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(result.round(4).to_string(index=False))
    chosen, default = result.iloc[-1], result[result["learner"] == "default"].iloc[0]
    print(
        f"replay_new_cv_balanced={chosen['new-CV balanced (test)']:.4f} replay_sd={chosen['test sd']:.4f} "
        f"replay_optimism={chosen['optimism (dev - test)']:.4f} "
        f"default_new_cv_balanced={default['new-CV balanced (test)']:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument(
        "--storage-url", default="/tmp/ml-headcount-filter-quality", help="where the extraction cache is (or goes)"
    )
    parser.add_argument("--category", default="1")
    parser.add_argument("--config", help="settings file (extraction, scoring and lists sections apply)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="fold seeds (lists.seed, +1, ...) of the cross-validation"
    )
    parser.add_argument("--no-lockbox", action="store_true", help="development runs: never compute the lockbox figures")
    parser.add_argument("--mode", choices=["exact", "fast"], help="extraction mode (default: the settings', exact)")
    parser.add_argument("--replay", type=int, metavar="N", help="replay the design selection on N splits instead")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"--replay: comma-separated learners of {list(VARIANTS)}"
    )
    args = parser.parse_args()

    extraction = {"mode": args.mode} if args.mode else {}
    settings = with_list_settings(
        load_settings(args.config, storage={"url": args.storage_url}, extraction=extraction),
        cv_repeats=args.repeats,
        text_classifier=False,
    )
    cvs = ingest(args.input, settings.ingest).cvs.reset_index(drop=True)
    keywords = cached_keywords(cvs, settings)
    if args.replay:
        variants = [name.strip() for name in args.variants.split(",")]
        if unknown := set(variants) - set(VARIANTS):
            parser.error(f"--variants: unknown {sorted(unknown)}; known: {list(VARIANTS)}")
        print_replay(build_corpus(cvs, keywords, settings.extraction), settings, args.category, args.replay, variants)
        return
    locked = lockbox_rows(cvs)
    development_cvs = cvs.drop(index=locked).reset_index(drop=True)
    corpus = build_corpus(
        development_cvs, keywords[keywords["cv_id"].isin(development_cvs["cv_id"])], settings.extraction
    )
    labels = corpus.cvs["category"].to_numpy().astype(str)
    positive = labels == args.category
    folds = stratified_folds(corpus.cvs["cv_id"].to_numpy(), labels, settings.lists.folds, settings.lists.seed)
    print(
        f"{len(cvs)} CVs: lockbox {len(locked)} (20 % per category, sha256 rule), development {len(corpus.cvs)} "
        f"({positive.sum()} in category {args.category}); {settings.lists.folds} folds, fold seeds "
        f"{settings.lists.seed}..{settings.lists.seed + args.repeats - 1}"
    )

    rows, summary = [], {}
    for method in ("study", "selected"):
        method_settings = with_list_settings(settings, method=method, text_classifier=False)  # timed on its own, below
        started = time.perf_counter()
        result = cross_validate(corpus, method_settings.lists, method_settings.scoring)
        elapsed = time.perf_counter() - started
        in_sample = learn(corpus, None, method_settings.lists, method_settings.scoring)[args.category]
        for name in LIST_NAMES:
            seeds = result.seeds[args.category][name]
            for matcher in MATCHERS:
                matched = result.heldout_matches[list_column(args.category, name, matcher)].to_numpy() > 0
                sensitivity, specificity, balanced = balanced_accuracy(matched, positive)
                per_seed = seeds[f"{matcher}_balanced_accuracy"]
                rows.append(
                    {
                        "method": method,
                        "list": name,
                        "matcher": matcher,
                        "cv_sensitivity": sensitivity,
                        "cv_specificity": specificity,
                        "cv_balanced": balanced,
                        "seed_mean": float(np.mean(per_seed)),
                        "seed_spread": max(per_seed) - min(per_seed),
                        "keywords (all dev CVs)": len(in_sample[name]),
                        "organisation names": organisation_name_share(corpus, in_sample[name], settings.lists),
                        "cv_seconds": round(elapsed, 1),
                    }
                )
                summary[(method, name, matcher)] = (sensitivity, specificity, balanced, max(per_seed) - min(per_seed))
        stable = result.stability[args.category]["broad"]
        chosen = {name: result.exclusion_stability[args.category][name] for name in LIST_NAMES}
        print(
            f"{method} lists learned on all development CVs: broad {in_sample['broad'][:15]} strict "
            f"{in_sample['strict'][:15]}; exclusions (AND NOT): "
            f"{ {name: exclusions_of(in_sample[name]) for name in LIST_NAMES} }; exclusions the fold lists chose "
            f"(share of them): {chosen}"
        )
        print(
            f"{method} broad-list stability over "
            f"{len(result.seeds[args.category]['broad']['fold_seeds']) * settings.lists.folds} fold lists: "
            f"{dict(list(stable.items())[:12])}"
        )

    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    decision = text_classifier.heldout_decisions(corpus.cvs["text"].tolist(), labels, folds, settings.lists.seed)
    classifier_seconds = round(time.perf_counter() - started, 1)
    sensitivity, specificity, reference = balanced_accuracy(decision[args.category] >= 0, positive)
    rows.append(
        {
            "method": "tf-idf + logistic regression (the run's annotator)",
            "list": "-",
            "cv_sensitivity": sensitivity,
            "cv_specificity": specificity,
            "cv_balanced": reference,
            "roc_auc": roc_auc_score(positive, decision[args.category]),
            "cv_seconds": classifier_seconds,
        }
    )
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(pd.DataFrame(rows).round(4).to_string(index=False))
    lockbox = "hidden"
    if not args.no_lockbox:
        boxed = lockbox_quality(
            corpus, cvs.iloc[locked], with_list_settings(settings, method="selected"), args.category
        )
        for (matcher, name), (se, sp, ba) in boxed.items():
            print(f"lockbox {name} ({matcher}): sensitivity {se:.4f} specificity {sp:.4f} balanced {ba:.4f}")
        lockbox = f"{boxed[('product', 'broad')][2]:.4f}"
        print(
            f"lockbox_phrase_broad_balanced={boxed[('phrase', 'broad')][2]:.4f} "
            f"lockbox_classifier_balanced={boxed[('classifier', text_classifier.NAME)][2]:.4f} "
            f"lockbox_strict_specificity={boxed[('product', 'strict')][1]:.4f}"
        )
    broad = summary[("selected", "broad", "product")]
    print(
        f"study_cv_balanced={summary[('study', 'broad', 'product')][2]:.4f} reference_cv_balanced={reference:.4f} "
        f"strict_cv_specificity={summary[('selected', 'strict', 'product')][1]:.4f}"
    )
    print(
        f"lockbox_broad_balanced={lockbox} cv_broad_balanced={broad[2]:.4f} seed_spread={broad[3]:.4f} "
        f"phrase_cv_broad_balanced={summary[('selected', 'broad', 'phrase')][2]:.4f}"
    )


if __name__ == "__main__":
    main()
