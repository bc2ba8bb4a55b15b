"""The calibration benchmark's Dawid-Skene baseline (benchmarks/headcount_calibration.py) is crowd-kit's DawidSkene:
the benchmark groups profiles by pattern so that d's 200,000-employee organisations fit, and must give what crowd-kit
gives on the same profiles one by one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from ml_headcount.headcount.annotators import MISSING, PatternSpace
from ml_headcount.headcount.evidence import PatternEvidence, group_profiles

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "headcount_calibration.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("headcount_calibration", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _annotations(truth, sensitivity, specificity, missing, rng):
    said = np.where(
        truth[:, None], rng.random((len(truth), 2)) < sensitivity, rng.random((len(truth), 2)) >= specificity
    )
    values = said.astype(np.int8)
    values[rng.random(values.shape) < missing] = MISSING
    unrated = (values == MISSING).all(axis=1)
    values[unrated, 0] = said[unrated, 0]  # every profile rated by one annotator at least
    return values


def _crowd_kit_shares(labels, validation_values, organisation, values, n_org):
    tasks = [f"v{i}" for i in range(len(labels))] + [f"p{i}" for i in range(len(values))]
    every = np.concatenate([validation_values, values])
    rows = [
        (tasks[t], f"a{j}", int(every[t, j])) for t in range(len(tasks)) for j in range(2) if every[t, j] != MISSING
    ]
    data = pd.DataFrame(rows, columns=["task", "worker", "label"])
    golden = pd.Series(labels.astype(int), index=tasks[: len(labels)])
    probas = DawidSkene(n_iter=100).fit(data, true_labels=golden).probas_
    expert = probas.loc[tasks[len(labels) :], 1].to_numpy()
    return np.bincount(organisation, weights=expert, minlength=n_org) / np.bincount(organisation, minlength=n_org)


# crowd-kit 1.4.2 uses pandas keywords (inplace, copy) that this pandas deprecates; nothing of ours
@pytest.mark.filterwarnings("ignore::DeprecationWarning:crowdkit.*")
def test_the_dawid_skene_baseline_is_crowd_kits_grouped_by_pattern():
    rng = np.random.default_rng(3)
    labels = rng.random(200) < 0.35
    validation_values = _annotations(labels, [0.85, 0.7], [0.9, 0.8], 0.1, rng)
    organisation = np.repeat(np.arange(6), 250)
    expert = rng.random(len(organisation)) < np.array([0.02, 0.1, 0.2, 0.3, 0.45, 0.6])[organisation]
    values = _annotations(expert, [0.75, 0.6], [0.95, 0.9], 0.3, rng)  # the population's rates are not the validation's
    space = PatternSpace(2)
    evidence = PatternEvidence(group_profiles(organisation, values, space, 6), space, 6)

    grouped = _benchmark().dawid_skene(evidence, space, labels, validation_values)

    one_by_one = _crowd_kit_shares(labels, validation_values, organisation, values, 6)
    np.testing.assert_allclose(grouped, one_by_one, atol=0.003)  # the benchmark smooths its M-step by half a count
    assert np.ptp(one_by_one) > 0.2  # organisations that differ, so the comparison can fail


@pytest.mark.shared_data
def test_the_calibration_benchmark_runs_every_scenario_at_a_tiny_size():
    """Its figures live in docs/calibration.md; this proves that the script still runs and prints its last line."""
    import subprocess

    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--seeds", "1", "--organisations", "4", "--draws", "20"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert [part.split()[0] for part in last.split(" | ")] == [f"scenario={s}" for s in "abcdef"], last
    assert "outside80=" in last and "coverage80=" in last
