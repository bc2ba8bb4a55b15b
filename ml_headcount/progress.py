"""Progress of a long stage as a person reads it: done of total, rate, ETA, said at least every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HEARTBEAT_S = 10.0


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
        self.started = time.monotonic()

    def advance(self, items: int) -> None:
        self.done += items

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        said = f"{self.stage}: {self.done:,}/{self.total:,} {self.unit} after {duration(elapsed)}"
        if not self.done:
            return f"{said}, the first batch still running"
        rate = self.done / max(elapsed, 1e-9)
        left = f", ETA {duration((self.total - self.done) / rate)}" if self.done < self.total else ""
        return f"{said}, {rate:.2f} {self.unit}/s{left}"


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
