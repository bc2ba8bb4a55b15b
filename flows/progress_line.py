"""Progress on the console: one bar redrawn in place on a terminal, a few plain lines elsewhere (a CI log, a file).

A run of 454 CVs said its progress every 10 s: 130 lines. On a terminal each progress record (marked
`ml_headcount.progress.PROGRESS`) now redraws one line (a carriage return, no newline) and every other record first
clears it; off a terminal a stage's progress shows after 30 s, then after waits that double (30 s, 60 s, 2 min, ...:
six lines in an 18-minute stage), and its last line once it has shown one. The Prefect UI still gets every record.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time

from ml_headcount.progress import PROGRESS

FIRST_WAIT_S = 30.0
BAR_WIDTH = 24
CLEAR = "\r\x1b[K"  # back to the line's start, erase it


class ProgressLine(logging.Filter):
    """Keeps a console handler's progress records to a bar (terminal) or to a few lines (elsewhere)."""

    def __init__(self, stream, every_record: bool = False):
        super().__init__()
        self.stream = stream
        self.terminal = stream.isatty()
        self.every_record = every_record  # -v off a terminal: every progress line, as before
        self.drawn = False
        self.shown: dict[str, tuple[float, float]] = {}  # stage -> (when first or last shown, wait before the next)
        self.lock = threading.Lock()  # heartbeats log from their own threads

    def filter(self, record: logging.LogRecord) -> bool:
        with self.lock:
            if not hasattr(record, PROGRESS):
                self.clear()
                return True
            if self.terminal:
                self.draw(record.getMessage(), getattr(record, PROGRESS))
                return False
            return self.every_record or self.due(record.getMessage(), getattr(record, PROGRESS))

    def draw(self, message: str, fraction: float | None) -> None:
        """The bar, redrawn: `[#####-------]  42% extraction: 190/454 CVs ...`, cut to the terminal's width."""
        if fraction is not None:
            filled = round(BAR_WIDTH * min(max(fraction, 0.0), 1.0))
            message = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%} {message}"
        width = shutil.get_terminal_size().columns
        self.stream.write(CLEAR + message[: max(width - 1, 10)])
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """The bar erased, so that the next line or the command's output starts on a clean line."""
        if self.drawn:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.drawn = False

    def due(self, message: str, fraction: float | None) -> bool:
        """Whether a progress line shows off a terminal: its stage's wait has passed (and then doubles), or it is the
        last line (all done) of a stage that has shown one."""
        stage = message.split(":", 1)[0]
        now = time.monotonic()
        since, wait = self.shown.setdefault(stage, (now, FIRST_WAIT_S))
        if now - since >= wait or (fraction == 1.0 and wait > FIRST_WAIT_S):
            self.shown[stage] = (now, wait * 2)
            return True
        return False
