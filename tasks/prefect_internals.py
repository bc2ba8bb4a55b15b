"""Everything the product relies on that Prefect does not publish as API, in one place.

Prefect 3 starts a temporary server on the first flow call when no PREFECT_API_URL is set, and stops it at interpreter
exit. The command line needs more than that public behaviour gives: to start the server before the first flow (so a
server that cannot start is one line, not a traceback from inside a flow), to send what the flow logged and emitted
before stopping it, and to know from the engine's final log line which exception failed a run (so that a user error
is said once, by the command). Prefect offers no public call for any of the three, so they live here:

- `start_temporary_server` / `stop_temporary_server`: `prefect.server.api.server.SubprocessASGIServer`, the class
  Prefect's own ephemeral mode uses, and the log and event workers' `drain_all`;
- `failure_exception_name`: the engine's "Finished in state Failed('... encountered an exception Name: ...')" text.

pyproject.toml pins Prefect to the minor release these were tested on (tests/test_cli.py and tests/runs cover all
three); moving the pin means running those tests, and this module is the one place to change.
"""

from __future__ import annotations

import re

# how Prefect's engine names the exception that failed a run, in the run's final "Finished in state Failed(...)" line
_FAILED_WITH = re.compile(r"encountered an exception (\w+):")


def start_temporary_server(timeout_s: float):
    """Prefect's temporary server, started (raises what Prefect raises when it does not start in `timeout_s`)."""
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    try:
        server.start(timeout=timeout_s)
    except Exception:
        server.stop()  # now, while the console is quiet, rather than at exit
        raise
    return server


def stop_temporary_server(server) -> None:
    """What the flows logged and emitted reaches the server first; then it stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5)
    server.stop()


def failure_exception_name(message: str) -> str | None:
    """The exception class named by the engine's final log line of a failed run; None for any other line."""
    match = _FAILED_WITH.search(message)
    return match.group(1) if match else None
