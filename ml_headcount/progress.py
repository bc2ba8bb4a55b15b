"""Progress of a long stage as a person reads it: done of total, rate, ETA, said at least every few seconds.

Its lines are log records marked `PROGRESS` (`progress_log`): the command line draws them as one bar on a terminal
and thins them out elsewhere (flows.progress_line); the Prefect UI gets each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HEARTBEAT_S = 10.0
PROGRESS = "progress"  # a log record's attribute: the share of its stage done (None: not counted), on progress lines


def progress_log(logger, progress: Progress | None = None) -> Callable[[str], None]:
    """`logger.info` of a progress line, marked `PROGRESS` with the share of `progress` done when it is given."""
    return lambda line: logger.info(line, extra={PROGRESS: progress.fraction() if progress else None})


def duration(seconds: float) -> str:
    """`42 s`, `3 min 5 s`, `2 h 10 min`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Progress:
    """`done` of `total` items of one stage since it started: what `line()` says, with the rate so far and an ETA."""

    def __init__(self, stage: str, total: int, unit: str = "CVs"):
        self.stage, self.total, self.unit = stage, total, unit
        self.done = 0
        self.started = self.advanced = time.monotonic()

    def advance(self, items: int) -> None:
        self.done += items
        self.advanced = time.monotonic()

    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def rate(self) -> float:
        """Items per second up to the last advance: the time since, a batch still running, is not yet a slowdown."""
        return self.done / max(self.advanced - self.started, 1e-9)

    def eta_s(self) -> float | None:
        """Seconds left at `rate()`, less the time the running batch has had (so an ETA falls while a batch runs,
        where done / elapsed made it rise: 8 min 45 s ... 9 min 26 s during one shard); None before the first batch."""
        if not self.done:
            return None
        return max(0.0, (self.total - self.done) / self.rate() - (time.monotonic() - self.advanced))

    def line(self) -> str:
        said = (
            f"{self.stage}: {self.done:,}/{self.total:,} {self.unit} after {duration(time.monotonic() - self.started)}"
        )
        if not self.done:
            return f"{said}, the first batch still running"
        left = f", ETA {duration(self.eta_s())}" if self.done < self.total else ""
        return f"{said}, {self.rate():.2f} {self.unit}/s{left}"


def still_running(stage: str) -> Callable[[], str]:
    """What a stage without a count of its items says while it runs: `stage: still running after 1 min 5 s`."""
    started = time.monotonic()
    return lambda: f"{stage}: still running after {duration(time.monotonic() - started)}"


@contextmanager
def heartbeat(say: Callable[[], str], log: Callable[[str], None], every: float = HEARTBEAT_S) -> Iterator[None]:
    """`log(say())` every `every` seconds, from a thread, while the block runs: a long stage is never silent."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            log(say())

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def reported(progress: Progress, log: Callable[[str], None] | None, every: float = HEARTBEAT_S) -> Iterator[Progress]:
    """`progress.line()` every `every` seconds while the block runs and once when it ends; nothing without `log`."""
    if log is None:
        yield progress
        return
    with heartbeat(progress.line, log, every):
        yield progress
    log(progress.line())
