"""The Modal backend: one ephemeral app per flow run, shards fanned out with `.starmap`, results stored as they arrive.

`ModalBackend.session()` checks credentials and the image's model at once,
then opens the app (`app.run()`) only when a stage first needs a GPU, so a
fully cached rerun never starts Modal, and never opens it twice. This process
stays the orchestrator: it reads each shard's texts from storage as Modal
consumes them and writes each result to the extraction cache the moment it
arrives (in completion order), so a failure later in the run keeps every shard
that completed.

What is retried: Modal retries a call whose container was lost, preempted or
timed out (`modal.Retries`, declared in modal_workers/app.py). An error raised
by the code is deterministic: it comes back as the call's result, is never
retried, and the run fails naming the shard and where the logs are. Setup
errors (credentials, image build, GPU type) are `ModalSetupError`s: user
errors, reported once and never retried.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import modal
import pandas as pd
from prefect import get_run_logger

from ml_headcount.config import MACHINE_ONLY_EXTRACTION_FIELDS, ExtractionSettings, ModalSettings, Settings
from ml_headcount.errors import UserError
from ml_headcount.extraction_cache import Shard
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore
from modal_workers import app as workers
from tasks.extraction import shard_texts, stored_shard_keywords

HOW_TO_AUTHENTICATE = (
    "Authenticate with `modal token new` (writes ~/.modal.toml), or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET "
    "(or OAuth: MODAL_OAUTH_REFRESH_TOKEN, MODAL_OAUTH_CLIENT_ID and one of MODAL_OAUTH_CLIENT_SECRET / "
    "MODAL_OAUTH_JWT_KEY); or run the model locally instead with `--backend local`."
)


class ModalSetupError(UserError):
    """The Modal backend cannot start with this machine's setup or this run's settings."""


class ModalCredentialsError(ModalSetupError):
    """No usable Modal credentials on this machine."""


class ShardExtractionError(RuntimeError):
    """Shards that failed on Modal: the code raised (not retried) or Modal's retries ran out."""

    def __init__(self, failures: dict[str, str], logs: str):
        self.shard_ids = sorted(failures)
        details = "; ".join(f"{shard_id}: {reason}" for shard_id, reason in sorted(failures.items()))
        super().__init__(
            f"keyword extraction on Modal failed for {len(failures)} shard(s): {details}. Logs: {logs}. "
            "Completed shards are cached; a rerun sends only the failed ones."
        )


def modal_credentials_problem() -> str | None:
    """Modal's own rules (modal/client.py `Client.from_env`), without network: None when a client could start."""
    from modal.config import _is_remote, config

    if _is_remote():  # inside a Modal container the container's identity is used, never a token
        return None
    token = [config.get(k) for k in ("token_id", "token_secret")]
    oauth = {k: config.get(f"oauth_{k}") for k in ("refresh_token", "client_id", "client_secret", "jwt_key")}
    if any(token) and any(oauth.values()):
        return "Modal token credentials and OAuth credentials are both configured; keep one of them."
    if any(oauth.values()):
        if not (oauth["refresh_token"] and oauth["client_id"]) or bool(oauth["client_secret"]) == bool(oauth["jwt_key"]):
            return "Modal OAuth needs a refresh token, a client id and exactly one of a client secret or a JWT key."
        return None
    if all(token):
        return None
    if any(token):
        return "only half of a Modal token is configured (token id and token secret go together)."
    return "no Modal credentials on this machine."


def require_modal_credentials() -> None:
    problem = modal_credentials_problem()
    if problem:
        raise ModalCredentialsError(f"{problem} {HOW_TO_AUTHENTICATE}")


def require_image_model(settings: ExtractionSettings) -> None:
    """The image carries one model, chosen when modal_workers.app was imported; containers never download one."""
    if settings.model != workers.IMAGE_MODEL:
        raise ModalSetupError(
            f"this run asks for model {settings.model!r}, but the Modal image is built with {workers.IMAGE_MODEL!r}; "
            f"set ML_HEADCOUNT_IMAGE_MODEL={settings.model} in the environment so that the image is built with it."
        )


def container_options(settings: ModalSettings, gpu: str) -> dict:
    """A run's resources for `with_options`: the one path by which settings reach Modal."""
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


def container_settings(settings: ExtractionSettings) -> str:
    """What a container gets of the extraction settings: what decides keywords, never where or how to run."""
    return settings.model_dump_json(exclude=MACHINE_ONLY_EXTRACTION_FIELDS)


class ModalBackend:
    """The model stages on Modal GPUs, in the flow run's one ephemeral app."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.device_label = f"modal:{settings.modal.extraction_gpu}"
        self._exits: ExitStack | None = None
        self._opened = False
        self.app_start_s: float | None = None

    @contextmanager
    def session(self) -> Iterator[ModalBackend]:
        """Around every model stage of one flow run; fails before any work when Modal cannot be used."""
        require_modal_credentials()
        require_image_model(self.settings.extraction)
        with ExitStack() as exits:
            self._exits = exits
            try:
                yield self
            finally:
                self._exits, self._opened = None, False

    def _open(self) -> None:
        if self._opened:
            return
        if self._exits is None:
            raise RuntimeError("ModalBackend stages run inside backend.session(); the cv-keywords flow opens it")
        if self.settings.modal.verbose:
            self._exits.enter_context(modal.enable_output())
        started = time.perf_counter()
        try:
            self._exits.enter_context(workers.app.run())
        except modal.exception.AuthError as error:
            raise ModalCredentialsError(f"Modal rejected this machine's credentials ({error}). {HOW_TO_AUTHENTICATE}") from None
        except (modal.exception.ConnectionError, modal.exception.TimeoutError):
            raise  # transient: the flow's caller may retry
        except modal.exception.Error as error:
            raise ModalSetupError(
                f"Modal could not start the app ({type(error).__name__}: {error}). Check the GPU types "
                f"({self.settings.modal.extraction_gpu}, {self.settings.modal.clustering_gpu}) against "
                "https://modal.com/docs/guide/gpu and the image build log (`modal.verbose: true` streams it)."
            ) from None
        self.app_start_s = round(time.perf_counter() - started, 1)
        self._opened = True

    def logs(self) -> str:
        try:
            return workers.app.get_dashboard_url()
        except Exception:  # the dashboard link is a courtesy; never hide the real error behind it
            return "the Modal dashboard, app 'ml-headcount' (ephemeral)"

    def extractor(self):
        options = container_options(self.settings.modal, self.settings.modal.extraction_gpu)
        return workers.GPUExtractor.with_options(**options)(settings_json=container_settings(self.settings.extraction))

    def extract(self, shards: list[Shard], run: RunLayout) -> Iterator[str]:
        """Extract the given (uncached) shards; yields each shard's cache location as it is stored."""
        if not shards:
            return
        self._open()
        store = ArtifactStore(self.settings.storage)
        by_id = {shard.shard_id: shard for shard in shards}
        inputs = ((shard.shard_id, shard_texts(store, run, shard)) for shard in shards)  # read as Modal consumes them
        failures: dict[str, str] = {}
        lost: list[str] = []
        for output in self.extractor().extract.starmap(inputs, order_outputs=False, return_exceptions=True):
            if isinstance(output, BaseException):  # Modal's retries ran out; the output does not say for which shard
                lost.append(f"{type(output).__name__}: {output}")
            elif "error" in output:
                failures[output["shard_id"]] = output["error"].strip().splitlines()[-1]
                get_run_logger().warning("shard %s failed on Modal:\n%s", output["shard_id"], output["error"])
            else:
                yield stored_shard_keywords(by_id[output["shard_id"]], output["keywords"], self.settings)
                by_id.pop(output["shard_id"])
        for shard_id in set(by_id) - set(failures):
            failures[shard_id] = "; ".join(lost) or "no result came back"
        if failures:
            raise ShardExtractionError(failures, self.logs())

    def cluster(self, discriminative: pd.DataFrame) -> dict:
        self._open()
        function = workers.cluster_keywords.with_options(**container_options(self.settings.modal, self.settings.modal.clustering_gpu))
        result = function.remote(discriminative, container_settings(self.settings.extraction), self.settings.clustering)
        if "error" in result:
            raise RuntimeError(f"keyword clustering failed on Modal: {result['error']}\nLogs: {self.logs()}")
        return result["clusters"]


CHECK_TEXTS = [
    "machine learning engineer training transformer models for speech recognition at a research lab",
    "phd student in reinforcement learning and robot control, publications at neurips and icml",
    "sales manager for enterprise software accounts in germany and austria, crm and negotiation",
    "accountant preparing monthly financial statements, audits and tax filings for clients",
]


def modal_check(settings: Settings) -> dict:
    """Exercise what a real run uses, in an ephemeral app of its own: the extraction class through `.starmap` on two
    shards with the run's resources, the clustering function, the configured model. `ok` only if every part ran on CUDA."""
    backend = ModalBackend(settings)
    timings: dict[str, float] = {}
    with backend.session():
        backend._open()
        timings["image_build_and_app_start_s"] = backend.app_start_s
        extractor = backend.extractor()
        started = time.perf_counter()
        shards = [("check-1", CHECK_TEXTS[:2]), ("check-2", CHECK_TEXTS[2:])]
        outputs = list(extractor.extract.starmap(shards, order_outputs=False, return_exceptions=True))
        timings["extract_two_shards_s"] = round(time.perf_counter() - started, 2)
        report = extractor.report.remote()
        keywords = [k for output in outputs if isinstance(output, dict) for cv in output.get("keywords", []) for k, _ in cv]
        discriminative = pd.DataFrame({"category": "check", "keyword": sorted(set(keywords)), "score": 1.0})
        started = time.perf_counter()
        function = workers.cluster_keywords.with_options(**container_options(settings.modal, settings.modal.clustering_gpu))
        clustered = function.remote(discriminative, container_settings(settings.extraction), settings.clustering)
        timings["cluster_s"] = round(time.perf_counter() - started, 2)
    parts = {
        **{f"extraction shard {i + 1}": _device_of(output) for i, output in enumerate(outputs)},
        "extraction report": report.get("device"),
        "clustering": _device_of(clustered),
    }
    return {
        "ok": len(outputs) == 2 and all(str(device).startswith("cuda") for device in parts.values()),
        "parts": parts,
        "gpu": report.get("gpu"),
        "gpu_memory_gb": report.get("gpu_memory_gb"),
        "driver": report.get("driver"),
        "cuda": report.get("cuda"),
        "model": settings.extraction.model,
        "backend": report.get("backend"),
        "peak_gpu_memory_gb": max(report.get("peak_gpu_memory_gb") or 0, (clustered.get("gpu") or {}).get("peak_gpu_memory_gb") or 0),
        "timings": timings | {"model_load_s": report.get("load_s")},
        "logs": backend.logs(),
        "modal_client": modal.__version__,
        "image_model_env": os.environ.get("ML_HEADCOUNT_IMAGE_MODEL"),
    }


def _device_of(output) -> str:
    if isinstance(output, BaseException):
        return f"failed: {type(output).__name__}: {output}"
    if "error" in output:
        return f"failed: {output['error'].strip().splitlines()[-1]}"
    return output["device"]
