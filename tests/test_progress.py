"""A stage's progress line: its ETA while a batch runs."""

from __future__ import annotations

import time

from ml_headcount.progress import Progress


def test_the_eta_falls_while_a_batch_runs():
    """8 min 45 s ... 9 min 26 s during one shard of the 454 CVs: the ETA was the items left at done / elapsed, and
    the elapsed time of a running batch lowered that rate. It is now the rate at the last batch, less the time since."""
    progress = Progress("extraction", 1000)
    time.sleep(0.2)
    progress.advance(10)  # 50 CVs/s: 990 left, ~19.8 s
    first = progress.eta_s()
    time.sleep(0.3)  # the next batch running
    later = progress.eta_s()
    assert later < first and abs(first - later - 0.3) < 0.1, (first, later)
    assert progress.line().endswith(", ETA 19 s") or progress.line().endswith(", ETA 20 s"), progress.line()
