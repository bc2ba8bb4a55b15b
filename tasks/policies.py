"""Retry, caching and logging policies shared by every task.

- Retries: transient failures (storage, network, Modal) retry with exponential
  backoff and jitter; a `UserError` (bad input, settings, storage or
  credentials), a programming error or running out of memory fails at once:
  retrying cannot fix them.
- Caching: Prefect persists no result and reads no cache record. A Prefect
  result record names its own serializer (pickle included), so one planted in
  shared storage would run code; the product's caches are its own, content
  keyed, open formats under `cache/`, verified on a hit (ml_headcount.extraction_cache,
  tasks.clustering).
- Logging: Prefect logs a traceback with every failed task and flow run. For a
  user error that traceback is noise that reads like a crash, so it is dropped;
  the one-line message stays. Bugs keep their traceback.
"""

from __future__ import annotations

import logging

from prefect.tasks import exponential_backoff

from ml_headcount.errors import DeterministicError, UserError

# A retry cannot fix these: the user's input, a bug, or a task too large for this machine's memory (the same
# input needs the same memory again; a setting bounds it, docs/bad-input.md).
PERMANENT_ERRORS = (UserError, DeterministicError, ValueError, KeyError, TypeError, AttributeError, IndexError, NotImplementedError,
                    MemoryError, RecursionError)


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
    """Drops the traceback from Prefect's failure log records when the failure is a UserError."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, UserError):
            record.exc_info = None
            record.exc_text = None
        return True


for _logger in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
    logging.getLogger(_logger).addFilter(UserErrorTracebacks())
