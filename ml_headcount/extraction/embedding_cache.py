"""An in-process LRU of phrase embeddings, keyed by the phrase's text.

A candidate's embedding depends on its text alone (it is embedded on its own,
not in the CV's context), so one computed for a CV serves every later CV and
shard in the process. Bounded, so a 100k-CV stream keeps a fixed footprint:
384 float32 per phrase, ~1.6 kB with its key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np


class EmbeddingCache:
    """Phrase vectors kept across shards, least recently used first out once there are `max_entries`."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_entries: int):
        self._encode = encode
        self._max_entries = max_entries
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def embed(self, phrases: list[str]) -> np.ndarray:
        """(len(phrases), dim) vectors; only the phrases not seen before are encoded, each once."""
        missing = list(dict.fromkeys(p for p in phrases if p not in self._vectors))
        self.misses += len(missing)
        self.hits += len(phrases) - len(missing)
        fresh = dict(zip(missing, self._encode(missing))) if missing else {}
        rows = []
        for phrase in phrases:
            vector = fresh.get(phrase)
            if vector is None:
                vector = self._vectors[phrase]
                self._vectors.move_to_end(phrase)
            rows.append(vector)
        for phrase, vector in fresh.items():
            self._vectors[phrase] = vector
        while len(self._vectors) > self._max_entries:
            self._vectors.popitem(last=False)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack(rows)
