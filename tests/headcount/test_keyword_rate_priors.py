"""A keyword run's lists as annotators whose rates' prior carries what a new sample of CVs sees of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ml_headcount.config import ExtractionSettings, IngestSettings, StorageSettings, load_settings
from ml_headcount.corpus.cleaning import clean_text, cv_id, text_hash
from ml_headcount.headcount.new_sample_rates import FEW_EXPERTS, run_rate_priors
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout

EXPERTS, OTHERS = 60, 60
_ROLES = ["engineer", "analyst", "manager", "scientist", "designer", "consultant"]


def _validation() -> pd.DataFrame:
    """Rated CVs, every one a CV the run learned its lists from."""
    texts = [
        f"{_ROLES[i % 6]} at company {chr(97 + i % 26)}{chr(97 + i // 26)} working on deep learning systems"
        if i < EXPERTS
        else f"{_ROLES[i % 6]} at firm {chr(97 + i % 26)}{chr(97 + i // 26)} in sales and accounting"
        for i in range(EXPERTS + OTHERS)
    ]
    return pd.DataFrame({"cv_text": texts, "category": ["1"] * EXPERTS + ["0"] * OTHERS})


def _run(root: Path, validation: pd.DataFrame, sensitivity: list[float], experts: int = EXPERTS) -> None:
    """A finished run `r1` under `root` whose broad list found half the experts and 2 of 60 others out-of-fold, and
    whose new-sample interval of its sensitivity is `sensitivity` (its specificity's [0.95, 0.98])."""
    store, run = ArtifactStore(StorageSettings(url=str(root))), RunLayout("r1")
    figures = {"sensitivity": 0.5, "specificity": 0.9667, "cvs": [experts, OTHERS]}
    new_sample = {
        "cvs": experts + OTHERS,
        "level": 0.8,
        "sensitivity": sensitivity,
        "specificity": [0.95, 0.98],
        "balanced_accuracy": [0.6, 0.8],
        "source": "set by the test",
    }
    broad = {"keywords": ["deep learning"], "cross_validated_phrase": figures, "new_sample": new_sample}
    store.write_json(run.keyword_lists, {"1": {"broad": broad}})
    parameters = {
        "ingest": IngestSettings().model_dump(),
        "extraction": ExtractionSettings().model_dump(),
        "lists": {"matcher": "phrase"},
    }
    store.write_json(run.manifest, {"parameters": parameters})
    ids = [cv_id(text_hash(clean_text(t, IngestSettings()))) for t in validation["cv_text"]]
    matched = np.zeros(len(ids), np.int8)
    matched[: EXPERTS // 2] = 1  # sensitivity 0.5
    matched[EXPERTS : EXPERTS + 2] = 1  # specificity 0.9667
    store.write_parquet(run.cvs, pd.DataFrame({"cv_id": ids}))
    store.write_parquet(run.heldout_matches, pd.DataFrame({"cv_id": ids, "1/broad@phrase": matched}))


def _counts(path: Path) -> None:
    """A search tool's counts of the broad list: six organisations, 2 % to 10 % of their employees matched."""
    pd.DataFrame(
        {
            "organisation": ["a", "b", "c", "d", "e", "f"],
            "employees": [2000, 1500, 800, 3000, 500, 1200],
            "1/broad": [60, 150, 40, 300, 50, 120],
        }
    ).to_csv(path, index=False)


def test_an_estimate_on_keyword_counts_widens_with_the_lists_new_sample_uncertainty(prefect_harness, tmp_path):
    """The same run, validation and counts; only the new-sample interval of the broad list's sensitivity differs
    (both centred on its cross-validated 0.5). Before, the estimate read only the out-of-fold matches: the two
    intervals were the same."""
    from flows.estimate import estimate_headcounts

    validation = _validation()
    validation_csv, counts_csv = tmp_path / "rated.csv", tmp_path / "counts.csv"
    validation.to_csv(validation_csv, index=False)
    _counts(counts_csv)
    summaries = {}
    for name, sensitivity in {"narrow": [0.45, 0.55], "wide": [0.15, 0.85]}.items():
        root = tmp_path / name
        _run(root, validation, sensitivity)
        settings = load_settings(storage={"url": str(root)}, headcount={"draws": 400})
        location = estimate_headcounts(
            str(validation_csv), counts_url=str(counts_csv), keywords_run="r1", settings=settings
        )
        summaries[name] = json.loads(Path(f"{location}/summary.json").read_text())
    widths = {name: summary["total"]["q90"] - summary["total"]["q10"] for name, summary in summaries.items()}
    assert widths["wide"] > 1.3 * widths["narrow"], widths  # 3079 against 1671 (seed 0)
    for summary in summaries.values():
        assert summary["model_annotators"] == ["1/broad"] and summary["keyword_rates"]["new_sample_prior"]


def test_a_new_sample_interval_below_the_cross_validated_rate_moves_the_prior_and_few_experts_warn(tmp_path):
    """The broad list's sensitivity, 0.5 out-of-fold, is [0.3, 0.4] on a new sample: its prior's centre moves to the
    interval's; lists learned from fewer than FEW_EXPERTS experts say so in one line."""
    validation = _validation()
    _run(tmp_path, validation, [0.3, 0.4])
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    priors = run_rate_priors(store, RunLayout("r1"), "1", 1.0)
    centre_shift, _ = priors.by_list["1/broad"]
    centre = 1 / (1 + np.exp(-centre_shift[0]))  # the shift from logit(0.5) = 0
    assert 0.3 < centre < 0.4 and abs(centre_shift[1]) < 0.1  # specificity [0.95, 0.98]: about the 0.9667 measured
    shift = priors.shift(["1/broad@phrase", "llm"])
    assert shift.centre_shift.shape == (2, 2) and shift.centre_shift[0, 0] < 0 and shift.centre_shift[0, 1] == 0
    assert priors.few_experts_line() is None  # 60 experts

    _run(tmp_path, validation, [0.3, 0.4], experts=FEW_EXPERTS - 1)
    line = run_rate_priors(store, RunLayout("r1"), "1", 1.0).few_experts_line()
    assert line is not None and "\n" not in line and f"{FEW_EXPERTS - 1} ML experts" in line
    half = run_rate_priors(store, RunLayout("r1"), "1", 0.5).by_list["1/broad"][0]
    assert np.allclose(half, run_rate_priors(store, RunLayout("r1"), "1", 1.0).by_list["1/broad"][0] / 2)


def test_a_list_inside_another_never_gets_a_higher_rate_than_it(tmp_path):
    """A strict list whose keywords are the broad list's has no design optimism of its own recorded, the broad one
    0.19: the strict list's sensitivity would stay at 0.5 and the broad one's fall below it, which no count can
    reconcile (on the demo run, whose two lists are one keyword, the estimate's total rose 4-fold)."""
    validation = _validation()
    _run(tmp_path, validation, [0.3, 0.4])
    store = ArtifactStore(StorageSettings(url=str(tmp_path)))
    lists = json.loads((tmp_path / "runs" / "r1" / "keyword_lists.json").read_text())
    broad = lists["1"]["broad"]
    broad["new_sample"]["design_optimism"] = {"sensitivity": 0.19, "specificity": 0.0, "sd": 0.05}
    strict = {**broad, "new_sample": {**broad["new_sample"], "design_optimism": {"sensitivity": 0.0}}}
    store.write_json(RunLayout("r1").keyword_lists, {"1": {"broad": broad, "strict": strict}})
    priors = run_rate_priors(store, RunLayout("r1"), "1", 1.0).by_list
    assert priors["1/broad"][0][0] == priors["1/strict"][0][0] < -0.7  # 0.5 -> 0.31 for both
