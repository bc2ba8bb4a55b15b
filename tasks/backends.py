"""Where the model runs, chosen once per flow run: in this process, or on Modal GPUs.

A backend opens a `session()` around the model stages, `extract`s shards into
the extraction cache (yielding each shard's cache location as it is stored),
`cluster`s discriminative keywords and names its `device_label` for the
manifest. The flow never asks which backend it has. A local run never imports
`modal`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import pandas as pd

from ml_headcount.clustering import cluster_discriminative
from ml_headcount.config import Settings
from ml_headcount.extraction.cache import Shard
from ml_headcount.extraction.extractor import KeywordExtractor
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.runs.layout import RunLayout
from tasks.extraction import shard_keywords


class Backend(Protocol):
    """Where the model stages run (module docstring): a session around them, extraction, clustering."""

    device_label: str

    def session(self): ...

    def extract(self, store: ArtifactStore, shards: list[Shard], run: RunLayout) -> Iterator[str]: ...

    def cluster(self, discriminative: pd.DataFrame) -> dict: ...


class LocalBackend:
    """The model in this process (CPU, or a local GPU); loaded on first use, so a fully cached rerun never loads it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._extractor: KeywordExtractor | None = None

    @property
    def extractor(self) -> KeywordExtractor:
        if self._extractor is None:
            self._extractor = KeywordExtractor(self.settings.extraction)
        return self._extractor

    @property
    def device_label(self) -> str:
        return self.extractor.label

    @contextmanager
    def session(self) -> Iterator[LocalBackend]:
        yield self

    def extract(self, store: ArtifactStore, shards: list[Shard], run: RunLayout) -> Iterator[str]:
        for shard in shards:
            yield shard_keywords(store, shard, self.extractor, self.settings, run)

    def cluster(self, discriminative: pd.DataFrame) -> dict:
        return cluster_discriminative(discriminative, self.extractor.embed, self.settings.clustering)


def backend_for(settings: Settings) -> Backend:
    """The backend `settings.backend` names: Modal GPUs, or this process."""
    if settings.backend == "modal":
        from tasks.modal_backend import ModalBackend  # imports modal: only a Modal run pays for it

        return ModalBackend(settings)
    return LocalBackend(settings)
