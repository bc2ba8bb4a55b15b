"""Where artifacts live, what Modal's functions get, and the inbox a deployment watches."""

from __future__ import annotations

from pydantic import BaseModel, Field


class StorageSettings(BaseModel, extra="forbid"):
    url: str = Field("./artifacts", description="Local directory or s3://bucket/prefix for every artifact and cache.")
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, Ceph); default AWS_ENDPOINT_URL."
    )
    region: str | None = None


class ModalSettings(BaseModel, extra="forbid"):
    """Resources of the Modal functions: these defaults are what modal_workers/app.py declares, and a run's values
    reach the functions through `with_options`; see docs/modal.md for what they cost."""

    extraction_gpu: str = Field(
        "A10",
        description="Modal GPU string for keyword extraction (one shard per call): T4, L4, A10, L40S, A100-80GB, "
        "H100...",
    )
    clustering_gpu: str = Field("T4", description="Modal GPU string for keyword clustering (one call per run).")
    memory_mb: int = Field(8192, description="Memory per container, MiB.")
    cpu: float = Field(2.0, description="CPU cores per container.")
    timeout_s: int = Field(1800, description="Limit for one call (one shard), seconds.")
    max_retries: int = Field(3, ge=0, description="Modal-side retries of a failed call, each shard on its own.")
    retry_initial_delay_s: float = Field(1.0, ge=0.0, le=60.0, description="Delay before the first retry, seconds.")
    retry_backoff: float = Field(2.0, ge=1.0, le=10.0, description="Delay multiplier per retry (1 = fixed delay).")
    retry_max_delay_s: float = Field(
        60.0, ge=1.0, le=60.0, description="Cap on the delay between retries (Modal allows 1-60 s)."
    )
    extraction_max_containers: int = Field(
        10, ge=1, description="Most containers extracting at once: bounds the fleet and the bill."
    )
    clustering_max_containers: int = Field(1, ge=1, description="Most clustering containers (one call per run).")
    concurrency_limit: str | None = Field(
        "ml-headcount-modal",
        description="Prefect global concurrency limit held around a run's Modal session (created with 1 slot when "
        "missing), so two flow runs never pay for the same extraction; None = no guard.",
    )
    verbose: bool = Field(False, description="Stream Modal's build and container logs (modal.enable_output).")


class InboxSettings(BaseModel, extra="forbid"):
    """Where new CV files arrive and which dataset they join; a misspelt field is an error, not a silent default."""

    url: str = Field("./inbox", description="Local directory or s3://bucket/prefix where new CV files are dropped.")
    dataset: str = Field("cvs", description="Name of the registered dataset, kept under datasets/<name>/ in storage.")
    quarantine: str | None = Field(
        "quarantine",
        description="Folder inside the inbox that malformed files are moved to; None = leave them and report only.",
    )
