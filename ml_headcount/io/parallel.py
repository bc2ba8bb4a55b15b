"""CPU-bound work on a stream of batches, spread over worker processes, results in input order."""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor


def ordered_map(
    function: Callable, items: Iterable, workers: int, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator:
    """`function(item)` for each item, in order. With 2 or more workers and items, each item runs in a worker process
    (each worker runs `initializer(*initargs)` once) and at most 2 items per worker are read ahead, so a stream is
    never read whole; otherwise (no processes worth starting) everything runs here."""
    items = iter(items)
    head = list(itertools.islice(items, 2))
    items = itertools.chain(head, items)
    if workers < 2 or len(head) < 2:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, items)
        return
    # spawn, not fork: the parent may hold threads (Prefect's, the model's) that a forked child would inherit mid-lock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
