"""Retry, caching and logging policies shared by every task.

- Retries: transient failures (storage, network, Modal) retry with exponential
  backoff and jitter; a `UserError` (bad input, settings, storage or
  credentials), a programming error or running out of memory fails at once:
  retrying cannot fix them.
- No flow-level retries: Prefect retries a flow run whatever failed it, and has no
  condition for flows; each task retries what it met, under the rule above.
- Caching: Prefect persists no result and reads no cache record. A Prefect
  result record names its own serializer (pickle included), so one planted in
  shared storage would run code; the product's caches are its own, content
  keyed, open formats under `cache/`, verified on a hit (ml_headcount.extraction.cache,
  ml_headcount.runs.stage_cache).
- Logging: Prefect logs a traceback with every failed task and flow run. For a
  user error that traceback is noise that reads like a crash, so it is dropped;
  the one-line message stays. Bugs keep their traceback.
"""

from __future__ import annotations

import logging

from prefect.tasks import exponential_backoff

from ml_headcount.errors import DeterministicError, UserError
from ml_headcount.runs.stage_cache import StageResult
from tasks.prefect_internals import failure_exception_name

# A retry cannot fix these: the user's input, a bug, or a task too large for this machine's memory (the same
# input needs the same memory again; a setting bounds it, docs/bad-input.md).
PERMANENT_ERRORS = (
    UserError,
    DeterministicError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    NotImplementedError,
    MemoryError,
    RecursionError,
)


def say_ignored_cache_entries(stage: StageResult, logger: logging.Logger | logging.LoggerAdapter) -> None:
    """One warning per cache entry the stage ignored because it failed a check (the run computed anew)."""
    for entry in stage.rejected:
        logger.warning("ignored the cache entry %s: %s", entry["entry"], entry["reason"])


def is_transient(task, task_run, state) -> bool:
    """Retry unless the failure is one that a retry cannot fix (Prefect puts the exception in the state's data)."""
    return not isinstance(state.data, PERMANENT_ERRORS)


TASK_POLICY = dict(
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=1),
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
    persist_result=False,  # no result record is written, none is read: see the module docstring
)


class UserErrorTracebacks(logging.Filter):
    """Drops the traceback from Prefect's failure log records when the failure is a UserError, and marks those records
    (`record.user_error`), so that the command line, which says the error in one line of its own, can leave them out.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, UserError) or _names_a_user_error(record):
            record.exc_info = None
            record.exc_text = None
            record.user_error = True
        return True


def _names_a_user_error(record: logging.LogRecord) -> bool:
    return failure_exception_name(str(record.msg)) in _user_error_names()


def _user_error_names() -> set[str]:
    """The names of UserError and its subclasses (those imported so far: a raised error's class always is)."""
    names, pending = set(), [UserError]
    while pending:
        kind = pending.pop()
        names.add(kind.__name__)
        pending += kind.__subclasses__()
    return names


PREFECT_FAILURE_LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "prefect.engine")


def without_user_error_tracebacks() -> None:
    """Install `UserErrorTracebacks` on Prefect's failure loggers, once per process; every flow calls it first (the
    engine logs a run's failure after the flow's body, so the filter is in place by then)."""
    for name in PREFECT_FAILURE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, UserErrorTracebacks) for existing in logger.filters):
            logger.addFilter(UserErrorTracebacks())
