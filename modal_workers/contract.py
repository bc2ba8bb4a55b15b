"""What a container returns, defined once for both sides of the wire.

Containers return these objects (Modal pickles them; the client has this
module too). A failure raised by the code comes back as a `ContainerFailure`
value instead of an exception, so Modal never retries it: it is
deterministic. Modal's own exceptions (a lost container whose retries ran out)
still arrive as exceptions, through `return_exceptions=True`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShardKeywords:
    """One shard's keywords: per CV, in the shard's order, (keyword, score) pairs."""

    shard_id: str
    keywords: list[list[tuple[str, float]]]
    device: str
    seconds: float
    load_s: float


@dataclass(frozen=True)
class ClusteringResult:
    """Clusters per category, as `cluster_discriminative` returns them, and the device that embedded them."""

    clusters: dict
    device: str
    gpu: dict


@dataclass(frozen=True)
class ContainerFailure:
    """The code raised in the container: where (a shard id, or "clustering") and the traceback."""

    where: str
    traceback: str

    @property
    def last_line(self) -> str:
        return self.traceback.strip().splitlines()[-1]
