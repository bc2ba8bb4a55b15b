"""Retry, caching and logging policies shared by every task.

- Retries: transient failures (storage, network, Modal) retry with exponential
  backoff and jitter; a `UserError` (bad input, settings, storage or
  credentials), a programming error or running out of memory fails at once:
  retrying cannot fix them.
- Flow retries (`retried_only_if_transient`): the same rule for a whole flow run,
  for flows whose own caches make a rerun cheap.
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

import functools
import inspect
import logging
import re

from prefect.tasks import exponential_backoff

from ml_headcount.errors import DeterministicError, UserError

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


# how Prefect's engine names the exception that failed a run, in the run's final "Finished in state Failed(...)" line
_FAILED_WITH = re.compile(r"encountered an exception (\w+):")


def _names_a_user_error(record: logging.LogRecord) -> bool:
    match = _FAILED_WITH.search(str(record.msg))
    return match is not None and match.group(1) in _user_error_names()


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


def retried_only_if_transient(flow_function):
    """Flow-level retries for outages only. Prefect retries a failed flow run whatever failed it; a permanent
    failure (a UserError, a bug: `PERMANENT_ERRORS`) sets this run's retries to 0 before it fails, so the flow is not
    run again for nothing. Goes under `@flow`, which sees the function's own signature."""

    @functools.wraps(flow_function)
    def run(*args, **kwargs):
        try:
            return flow_function(*args, **kwargs)
        except PERMANENT_ERRORS:
            _no_more_retries()
            raise

    # Prefect validates parameters against the signature's annotations, resolving names in the wrapper's module:
    # give it the flow function's own, resolved where it was written
    run.__signature__ = inspect.signature(flow_function, eval_str=True)
    return run


def _no_more_retries() -> None:
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None or not context.flow_run.empirical_policy.retries:
        return
    policy = context.flow_run.empirical_policy.model_copy(update={"retries": 0})
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, empirical_policy=policy)
    except Exception:  # noqa: BLE001  (the API unreachable: a needless retry, never a masked error)
        return
