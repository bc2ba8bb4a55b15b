"""The Modal backend of a flow run: the Prefect side of modal_workers/client.py.

`ModalBackend.session()` holds the run's slot of a Prefect global concurrency
limit (`settings.modal.concurrency_limit`, one slot) around the Modal session,
so a scheduled run and a manual run never both pay for the same extraction:
the second waits, then plans against the cache the first one filled. Inside
it, this process stays the orchestrator: it reads each shard's texts from
storage as Modal consumes them and stores each result in the extraction cache
the moment it arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pandas as pd
from prefect import get_client, get_run_logger
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from ml_headcount.config import Settings
from ml_headcount.extraction.cache import Shard
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout
from modal_workers.client import ModalSession, ShardExtractionError
from tasks.extraction import shard_texts, stored_shard_keywords


@contextmanager
def modal_spend_guard(name: str | None) -> Iterator[None]:
    """One slot of the global concurrency limit `name`, created with a single slot when the server lacks it (an
    operator's own limit, if set, is kept as it is). None: no guard."""
    if name is None:
        yield
        return
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it first
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    with concurrency(name, occupy=1, strict=True):
        yield


class ModalBackend:
    """The model stages on Modal GPUs, in the flow run's one ephemeral app."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.device_label = f"modal:{settings.modal.extraction_gpu}"
        self._session: ModalSession | None = None

    @contextmanager
    def session(self) -> Iterator[ModalBackend]:
        """Around every model stage of one flow run; fails before any work when Modal cannot be used."""
        with ModalSession(self.settings) as modal_session, modal_spend_guard(self.settings.modal.concurrency_limit):
            self._session = modal_session
            try:
                yield self
            finally:
                self._session = None

    @property
    def modal_session(self) -> ModalSession:
        if self._session is None:
            raise RuntimeError("ModalBackend stages run inside backend.session(); the cv-keywords flow opens it")
        return self._session

    def extract(self, store: ArtifactStore, shards: list[Shard], run: RunLayout) -> Iterator[str]:
        """Extract the given (uncached) shards; yields each shard's cache location as it is stored."""
        if not shards:
            return
        by_id = {shard.shard_id: shard for shard in shards}
        inputs = ((shard.shard_id, shard_texts(store, run, shard)) for shard in shards)  # read as Modal consumes them
        try:
            for result in self.modal_session.extract(inputs, list(by_id)):
                yield stored_shard_keywords(store, by_id[result.shard_id], result.keywords, self.settings)
        except ShardExtractionError as error:
            for shard_id, traceback in error.tracebacks.items():
                get_run_logger().warning("shard %s failed on Modal:\n%s", shard_id, traceback)
            raise

    def cluster(self, discriminative: pd.DataFrame) -> dict:
        return self.modal_session.cluster(discriminative)
