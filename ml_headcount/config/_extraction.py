"""How keywords are extracted."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ml_headcount.config._result_fields import MACHINE_ONLY

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# the longest keyword in tokens: a phrase, not a sentence (the study's lists use up to 4)
MAX_NGRAM = 10


def canonical_model_name(name: str) -> str:
    """One name per model everywhere (settings, cache keys, image build, container load).

    The packaged default stays as it is; a bare hub name is the
    sentence-transformers organisation's, as sentence-transformers itself
    resolves it; an owner/name or a local path is kept.
    """
    if name == DEFAULT_MODEL or "/" in name or Path(name).expanduser().exists():
        return name
    return f"sentence-transformers/{name}"


class ExtractionSettings(BaseModel, extra="forbid"):
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model: the packaged default, owner/name on the hub, or a local path; "
        "a bare hub name means sentence-transformers/<name>.",
    )
    top_n: int = 30
    ngram_min: int = 1
    ngram_max: int = Field(
        4,
        le=MAX_NGRAM,
        description=f"Longest keyword, in tokens (at most {MAX_NGRAM}: candidates per CV grow with it, and matching "
        "packs half an n-gram's token ids into 64 bits).",
    )
    use_mmr: bool = True
    diversity: float = 0.5
    stop_words: Literal["study", "english", "none"] = "study"
    extra_stop_words: list[str] = []
    max_seq_length: int = 256
    shard_size: int = Field(
        32, description="CVs per extraction call (and per Modal container call).", json_schema_extra=MACHINE_ONLY
    )
    device: str | None = Field(
        None,
        description="Local backend only: torch device; None = cuda if available, else cpu. Modal containers use their "
        "GPU.",
        json_schema_extra=MACHINE_ONLY,
    )
    precision: Literal["float32", "float16"] = Field(
        "float32",
        description="Precision of the embeddings that decide keywords. float16 (GPU only) is for models whose float32 "
        "weights do not fit the GPU (e.g. 7B models); exact mode then matches KeyBERT on the same float16 model.",
    )
    max_cpu_weights_gb: float = Field(
        2.0,
        description="A model whose weights exceed this is refused on CPU up front: it would run for hours.",
        json_schema_extra=MACHINE_ONLY,
    )
    mode: Literal["exact", "fast"] = Field(
        "exact",
        description="exact: KeyBERT's keywords (docs/performance.md); fast: KeyBERT's MMR on static vectors of the "
        "candidates (the model's token vectors, averaged) against the transformer's CV vectors: other per-CV keywords, "
        "keyword lists of about the same cross-validated quality, >= 20x the study's loop on CPU.",
    )
    screen_margin: float = Field(
        0.0075,
        description="exact mode: assumed bound on a reduced-precision similarity's error (measured max 0.0021 with "
        "OpenVINO, 0.0044 with PyTorch: benchmarks/screening_error.py); candidates within it of a pick are re-embedded "
        "in the deciding precision. Each shard measures the error on what it re-embeds and decides again without "
        "screening where it exceeds this.",
    )
    inference_backend: Literal["auto", "openvino", "torch"] = Field(
        "auto",
        description="CPU only: auto = OpenVINO where installed, else PyTorch. GPUs always run PyTorch.",
        json_schema_extra=MACHINE_ONLY,
    )
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="CPU only: inference threads of the one extraction process (None = every CPU it may run on). "
        "Measured on 2 cores: one process with 2 threads beats 2 single-thread processes (docs/scale.md).",
        json_schema_extra=MACHINE_ONLY,
    )
    embedding_cache_size: int = Field(
        200_000,
        description="Phrase embeddings kept in memory across shards, per precision.",
        json_schema_extra=MACHINE_ONLY,
    )
    model_cache_dir: str | None = Field(
        None,
        description="Where converted models are kept; None = ~/.cache/ml-headcount.",
        json_schema_extra=MACHINE_ONLY,
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> ExtractionSettings:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ValueError("need 1 <= ngram_min <= ngram_max")
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError("diversity must be in [0, 1]")
        if self.top_n < 1 or self.shard_size < 1:
            raise ValueError("top_n and shard_size must be positive")
        if self.screen_margin < 0:
            raise ValueError("screen_margin must be >= 0")
        return self

    @field_validator("model")
    @classmethod
    def _canonical_model(cls, name: str) -> str:
        return canonical_model_name(name)
