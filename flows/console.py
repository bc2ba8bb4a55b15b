"""What the command line shows while a flow runs, and the temporary Prefect server it needs.

By default the console tells the run's own story: its stages, counts and
progress, every warning, and its location. Prefect's engine lines (a
"Finished in state Completed()" per task, the temporary server's banner) show
with `-v`; `-q` leaves errors and the location only. The Prefect UI and API
always get every line: only the console is filtered.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

# Prefect's default (20 s) is too short on a busy 2-core machine; the user's own setting always wins
SERVER_STARTUP_S = 180
# a running server answers its health check in milliseconds; a stopped one refuses at once, a wrong host times out
SERVER_CHECK_S = 5.0


class PrefectServerError(RuntimeError):
    """Prefect's temporary server did not start: an outage on this machine, not the user's input (exit 1)."""


def default_server_startup() -> None:
    """Give the temporary server `SERVER_STARTUP_S` unless the environment says otherwise (before Prefect reads it)."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(SERVER_STARTUP_S))


@contextmanager
def temporary_server():
    """Prefect's temporary server around the block, when no PREFECT_API_URL names a server: started first, so that a
    failure to start is one `PrefectServerError` rather than a traceback from inside the first flow call (which then
    uses it), and stopped at the end of the block rather than at exit, after the console is no longer filtered."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if PREFECT_API_URL.value():
        check_server(PREFECT_API_URL.value())
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        yield
        return
    from tasks.prefect_internals import start_temporary_server, stop_temporary_server

    timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    log = Path(PREFECT_HOME.value()) / "temporary-server.log"
    try:
        with _children_writing_to(log):
            server = start_temporary_server(timeout)
    except Exception as error:  # noqa: BLE001  (any failure to start is the same outage; Prefect raises RuntimeError)
        reason = str(error).split(" stdout:")[0].strip() or type(error).__name__
        raise PrefectServerError(
            f"Prefect's temporary server did not start within {timeout} s ({reason}; its log: {log}); on a busy "
            "machine set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or PREFECT_API_URL to a running "
            "Prefect server"
        ) from None
    try:
        yield
    finally:
        stop_temporary_server(server)


def check_server(api_url: str, timeout_s: float = SERVER_CHECK_S) -> None:
    """A `PrefectServerError` in one line when the server that PREFECT_API_URL names does not answer its health check
    (stopped, wrong port): before a flow starts, not as Prefect's traceback from inside the first flow call."""
    import httpx

    try:
        httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PrefectServerError(
            f"the Prefect server at {api_url} (PREFECT_API_URL) is unreachable ({reason}); start it, or go back to "
            "the temporary server of each command with `prefect config unset PREFECT_API_URL` (and unset it in "
            "the environment, if it is set there)"
        ) from None


@contextmanager
def _children_writing_to(path: Path):
    """Processes started in the block (the server's uvicorn) write their output to `path`, not to the user's
    terminal: a server that cannot open its database says why there, not as a traceback on the console."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved):
                os.dup2(original, fd)
                os.close(original)


class RunStory(logging.Filter):
    """Which records the console shows: verbosity -1 errors only, 0 the product's own lines and every warning,
    1 everything (Prefect's engine lines too). Below 1, Prefect's records of a run failed by a user error are left
    out: the command reports that error as its one line."""

    def __init__(self, verbosity: int):
        import prefect

        super().__init__()
        self.verbosity = verbosity
        self.prefect_code = str(Path(prefect.__file__).parent)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbosity > 0:
            return True
        if getattr(record, "user_error", False):  # the command says it once, as `ml-headcount: error: ...`
            return False
        if self.verbosity < 0:
            return record.levelno >= logging.ERROR
        return record.levelno >= logging.WARNING or not record.pathname.startswith(self.prefect_code)


@contextmanager
def console(verbosity: int):
    """Prefect's console handler shows the records `RunStory(verbosity)` keeps, progress as `ProgressLine` draws it,
    for the duration of the block."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging: its console handler on the root logger)
    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.progress_line import ProgressLine

    story = RunStory(verbosity)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    lines = [ProgressLine(h.stream, every_record=verbosity > 0) for h in handlers]
    for handler, line in zip(handlers, lines):
        handler.addFilter(story)
        handler.addFilter(line)  # after the story: what it leaves out draws no bar
    try:
        yield
    finally:
        for handler, line in zip(handlers, lines):
            line.clear()
            handler.removeFilter(story)
            handler.removeFilter(line)
