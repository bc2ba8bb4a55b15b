"""Replay of the learner's design selection on random development/test splits (`list_quality.py --replay N`).

Cross-validation on the CVs a learner's design was chosen on cannot see that choice. The replay makes the choice
again, where it can be seen: for each of N seeded stratified splits of the rated CVs into a development part (80 %)
and a test part (20 %), every variant of the learner is cross-validated on the development part only (5 folds, one
fold seed), the variant with the best development figure wins, and every variant's lists learned on the whole
development part are matched on the test part. Per variant and for the replayed choice it reports the mean
development (cross-validated) figure, the mean test figure (what new CVs see) and its spread over the splits, and
the optimism (development minus test). The test parts overlap the CVs on which the default learner was designed
(the rated CVs), so the replay measures the selection among these variants, not the earlier design work.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from ml_headcount.config import Settings
from ml_headcount.lists.evidence import Corpus
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.lists.learners import learn
from ml_headcount.lists.quality import heldout_matches, list_matches

# name -> lists settings that differ from the run's; each a design choice of the default learner taken away, or a
# learner with fewer hand-set knobs
VARIANTS = {
    "default": {},
    "with exclusions (up to 3)": {"max_exclusions": 3},  # the default until this replay
    "no employer rule": {"min_employers": 1},
    "fewest knobs (w = 1; penalty 1; no exclusions)": {"broad_weights": [1.0], "penalties": [1.0], "max_exclusions": 0},
    "study": {"method": "study"},
}
SPLIT_SEED = 1000  # split s uses fold seed SPLIT_SEED + s; its test part is fold 0 of 5


def rows_of(corpus: Corpus, rows: np.ndarray) -> Corpus:
    """The corpus of the CVs at `rows` (the vocabulary stays; learners use only the keywords of their CVs)."""
    cvs = corpus.cvs.iloc[rows].reset_index(drop=True)
    return dataclasses.replace(
        corpus,
        cvs=cvs,
        keywords=corpus.keywords[corpus.keywords["cv_id"].isin(set(cvs["cv_id"]))],
        counts=corpus.counts[rows],
        extracted=corpus.extracted[rows],
        part_present=corpus.part_present[rows],
        part_in_company=corpus.part_in_company[rows],
        employers=corpus.employers[rows],
        phrase_present=corpus.phrase_present[rows],
    )


def _rates(matched: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    return float(matched[positive].mean()), float((~matched[~positive]).mean())


def replay_split(
    corpus: Corpus, settings: Settings, category: str, split: int, list_name: str, variants: list[str]
) -> list[dict]:
    """One split: per variant, its development cross-validated and test (sensitivity, specificity) of `list_name`."""
    labels = corpus.cvs["category"].to_numpy().astype(str)
    test = stratified_folds(corpus.cvs["cv_id"].to_numpy(), labels, 5, SPLIT_SEED + split) == 0
    development, held = rows_of(corpus, np.flatnonzero(~test)), np.flatnonzero(test)
    dev_labels = labels[~test]
    folds = stratified_folds(development.cvs["cv_id"].to_numpy(), dev_labels, settings.lists.folds, SPLIT_SEED + split)
    rows = []
    for name in variants:
        variant = settings.lists.model_copy(update=VARIANTS[name])
        started = time.perf_counter()
        matches = heldout_matches(development, folds, variant, settings.scoring)[f"{category}/{list_name}"].to_numpy()
        lists = learn(development, None, variant, settings.scoring)[category][list_name]
        dev_se, dev_sp = _rates(matches > 0, dev_labels == category)
        test_se, test_sp = _rates(list_matches(corpus, held, lists), labels[held] == category)
        rows.append(
            {
                "split": split,
                "variant": name,
                "dev_sensitivity": dev_se,
                "dev_specificity": dev_sp,
                "test_sensitivity": test_se,
                "test_specificity": test_sp,
                "seconds": time.perf_counter() - started,
            }
        )
    return rows


def replay(
    corpus: Corpus, settings: Settings, category: str, splits: int, variants: list[str], list_name: str = "broad"
) -> pd.DataFrame:
    """Every split's rows for `variants` (names in VARIANTS, the default first), with the replayed choice (best
    development balanced accuracy) marked `chosen`."""
    rows = []
    for split in range(splits):
        rows += replay_split(corpus, settings, category, split, list_name, variants)
        done = ", ".join(
            f"{r['variant']} {(r['dev_sensitivity'] + r['dev_specificity']) / 2:.3f} / "
            f"{(r['test_sensitivity'] + r['test_specificity']) / 2:.3f}"
            for r in rows[-len(variants) :]
        )
        print(f"split {split}: balanced accuracy, development (cross-validated) / test: {done}", flush=True)
    table = pd.DataFrame(rows)
    table["dev_balanced"] = (table["dev_sensitivity"] + table["dev_specificity"]) / 2
    table["test_balanced"] = (table["test_sensitivity"] + table["test_specificity"]) / 2
    # the first best of each split: ties go to the earlier variant in VARIANTS (the default first)
    table["chosen"] = table.index.isin(table.groupby("split")["dev_balanced"].idxmax())
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant, and for the replayed choice: mean development and test figures, the test spread, the optimism."""
    groups = [(name, table[table["variant"] == name]) for name in table["variant"].unique()] + [
        ("replayed choice (best development figure)", table[table["chosen"]])
    ]
    rows = []
    for name, part in groups:
        gap = part["dev_balanced"] - part["test_balanced"]
        rows.append(
            {
                "learner": name,
                "splits": len(part),
                "dev CV balanced": part["dev_balanced"].mean(),
                "new-CV balanced (test)": part["test_balanced"].mean(),
                "test sd": part["test_balanced"].std(ddof=1),
                "test 10 %": part["test_balanced"].quantile(0.1),
                "test 90 %": part["test_balanced"].quantile(0.9),
                "optimism (dev - test)": gap.mean(),
                "optimism sd": gap.std(ddof=1),
                "sens. optimism": (part["dev_sensitivity"] - part["test_sensitivity"]).mean(),
                "spec. optimism": (part["dev_specificity"] - part["test_specificity"]).mean(),
                "seconds per split": part["seconds"].mean(),
            }
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":  # a module of list_quality.py; run alone it only says so
    argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Run it as: benchmarks/list_quality.py --replay N [--variants ...]"
    ).parse_args()
