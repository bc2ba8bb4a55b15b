"""The client side of the Modal app, without Prefect: credentials, a run's resources, one ephemeral app per session.

`ModalSession` opens the app (`app.run()`) only when a stage first needs a GPU,
so a fully cached rerun never starts Modal, and never opens it twice. It fans
shards out with `.starmap` and hands back each shard's keywords as it arrives
(completion order); storing them is the caller's job (tasks/modal_backend.py),
so a failure later in the run keeps every shard that completed.

What is retried: Modal retries a call whose container was lost, preempted or
timed out (`modal.Retries`, from `app.resources`). An error raised by the code
is deterministic: it comes back as a `ContainerFailure`, is never retried, and
the session fails naming the shard and where the logs are. Setup errors
(credentials, image build, GPU type) are `ModalSetupError`s: user errors,
reported once and never retried.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack

import modal
import pandas as pd

from ml_headcount.config import ExtractionSettings, Settings, machine_only_fields
from ml_headcount.errors import DeterministicError, UserError
from modal_workers import app as workers
from modal_workers.contract import ContainerFailure, ShardKeywords

HOW_TO_AUTHENTICATE = (
    "Authenticate with `modal token new` (writes ~/.modal.toml), or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET "
    "(or OAuth: MODAL_OAUTH_REFRESH_TOKEN, MODAL_OAUTH_CLIENT_ID and one of MODAL_OAUTH_CLIENT_SECRET / "
    "MODAL_OAUTH_JWT_KEY); or run the model locally instead with `--backend local`."
)


class ModalSetupError(UserError):
    """The Modal backend cannot start with this machine's setup or this run's settings."""


class ModalCredentialsError(ModalSetupError):
    """No usable Modal credentials on this machine."""


class ShardExtractionError(DeterministicError):
    """Shards that failed on Modal: the code raised (not retried) or Modal's retries ran out."""

    def __init__(self, failures: dict[str, str], logs: str, tracebacks: dict[str, str] | None = None):
        self.shard_ids = sorted(failures)
        self.tracebacks = tracebacks or {}
        details = "; ".join(f"{shard_id}: {reason}" for shard_id, reason in sorted(failures.items()))
        super().__init__(
            f"keyword extraction on Modal failed for {len(failures)} shard(s): {details}. Logs: {logs}. "
            "Completed shards are cached; a rerun sends only the failed ones."
        )


def modal_credentials_problem() -> str | None:
    """Modal's own rules (modal/client.py `Client.from_env`), without network: None when a client could start."""
    if not modal.is_local():  # inside a Modal container the container's identity is used, never a token
        return None
    config = modal.config.config
    token = [config.get(k) for k in ("token_id", "token_secret")]
    oauth = {k: config.get(f"oauth_{k}") for k in ("refresh_token", "client_id", "client_secret", "jwt_key")}
    if any(token) and any(oauth.values()):
        return "Modal token credentials and OAuth credentials are both configured; keep one of them."
    if any(oauth.values()):
        if not (oauth["refresh_token"] and oauth["client_id"]) or bool(oauth["client_secret"]) == bool(
            oauth["jwt_key"]
        ):
            return "Modal OAuth needs a refresh token, a client id and exactly one of a client secret or a JWT key."
        return None
    if all(token):
        return None
    if any(token):
        return "only half of a Modal token is configured (token id and token secret go together)."
    return "no Modal credentials on this machine."


def require_modal_credentials() -> None:
    """Nothing when Modal's credentials are usable; a ModalCredentialsError saying what is wrong and how to fix it."""
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


def container_settings(settings: ExtractionSettings) -> str:
    """What a container gets of the extraction settings: what decides keywords, never where or how to run."""
    return settings.model_dump_json(exclude=machine_only_fields(ExtractionSettings))


class ModalSession:
    """The model stages of one flow run in one ephemeral app: `with ModalSession(settings) as modal_session: ...`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._exits = ExitStack()
        self._opened = False
        self.app_start_s: float | None = None

    def __enter__(self) -> ModalSession:
        """Fails here, before any work, when Modal cannot be used from this machine with these settings."""
        require_modal_credentials()
        require_image_model(self.settings.extraction)
        return self

    def __exit__(self, *exc_info) -> None:
        self._exits.close()
        self._opened = False

    def open(self) -> None:
        """Start the app, once; every stage calls this first, so a session that needs no GPU never starts it."""
        if self._opened:
            return
        if self.settings.modal.verbose:
            self._exits.enter_context(modal.enable_output())
        started = time.perf_counter()
        try:
            self._exits.enter_context(workers.app.run())
        except modal.exception.AuthError as error:
            raise ModalCredentialsError(
                f"Modal rejected this machine's credentials ({error}). {HOW_TO_AUTHENTICATE}"
            ) from None
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
        """The extraction class with this run's resources and settings."""
        options = workers.resources(self.settings.modal, "extraction")
        return workers.GPUExtractor.with_options(**options)(settings_json=container_settings(self.settings.extraction))

    def extract(self, inputs: Iterable[tuple[str, list[str]]], shard_ids: list[str]) -> Iterator[ShardKeywords]:
        """Each shard's keywords as it arrives; `inputs` are (shard id, texts), read as Modal consumes them.

        Raises ShardExtractionError at the end for every shard that failed or never came back.
        """
        self.open()
        missing = set(shard_ids)
        failures: dict[str, ContainerFailure] = {}
        lost: list[str] = []
        for output in self.extractor().extract.starmap(inputs, order_outputs=False, return_exceptions=True):
            if isinstance(output, BaseException):  # Modal's retries ran out; the output does not say for which shard
                lost.append(f"{type(output).__name__}: {output}")
            elif isinstance(output, ContainerFailure):
                failures[output.where] = output
            else:
                missing.discard(output.shard_id)
                yield output
        reasons = {shard_id: failure.last_line for shard_id, failure in failures.items()}
        for shard_id in missing - set(failures):
            reasons[shard_id] = "; ".join(lost) or "no result came back"
        if reasons:
            tracebacks = {shard_id: failure.traceback for shard_id, failure in failures.items()}
            raise ShardExtractionError(reasons, self.logs(), tracebacks)

    def cluster(self, discriminative: pd.DataFrame) -> dict:
        """Clusters of the discriminative keywords, embedded on the clustering GPU."""
        self.open()
        function = workers.gpu_clusters.with_options(**workers.resources(self.settings.modal, "clustering"))
        result = function.remote(discriminative, container_settings(self.settings.extraction), self.settings.clustering)
        if isinstance(result, ContainerFailure):
            raise DeterministicError(f"keyword clustering failed on Modal: {result.traceback}\nLogs: {self.logs()}")
        return result.clusters


CHECK_TEXTS = [
    "machine learning engineer training transformer models for speech recognition at a research lab",
    "phd student in reinforcement learning and robot control, publications at neurips and icml",
    "sales manager for enterprise software accounts in germany and austria, crm and negotiation",
    "accountant preparing monthly financial statements, audits and tax filings for clients",
]


def modal_check(settings: Settings) -> dict:
    """Exercise what a real run uses, in an ephemeral app of its own: the extraction class
    through `.starmap` on two shards with the run's resources, the clustering function, the configured model.
    `ok` only if every part ran on CUDA."""
    timings: dict[str, float] = {}
    with ModalSession(settings) as session:
        session.open()
        timings["image_build_and_app_start_s"] = session.app_start_s
        extractor = session.extractor()
        started = time.perf_counter()
        shards = [("check-1", CHECK_TEXTS[:2]), ("check-2", CHECK_TEXTS[2:])]
        outputs = list(extractor.extract.starmap(shards, order_outputs=False, return_exceptions=True))
        timings["extract_two_shards_s"] = round(time.perf_counter() - started, 2)
        report = extractor.report.remote()
        keywords = [
            k for output in outputs if isinstance(output, ShardKeywords) for cv in output.keywords for k, _ in cv
        ]
        discriminative = pd.DataFrame({"category": "check", "keyword": sorted(set(keywords)), "score": 1.0})
        started = time.perf_counter()
        function = workers.gpu_clusters.with_options(**workers.resources(settings.modal, "clustering"))
        clustered = function.remote(discriminative, container_settings(settings.extraction), settings.clustering)
        timings["cluster_s"] = round(time.perf_counter() - started, 2)
        logs = session.logs()
    parts = {
        **{f"extraction shard {i + 1}": _device_of(output) for i, output in enumerate(outputs)},
        "extraction report": report.get("device"),
        "clustering": _device_of(clustered),
    }
    clustering_gpu = getattr(clustered, "gpu", None) or {}
    return {
        "ok": len(outputs) == 2 and all(str(device).startswith("cuda") for device in parts.values()),
        "parts": parts,
        "gpu": report.get("gpu"),
        "gpu_memory_gb": report.get("gpu_memory_gb"),
        "driver": report.get("driver"),
        "cuda": report.get("cuda"),
        "model": settings.extraction.model,
        "backend": report.get("backend"),
        "peak_gpu_memory_gb": max(report.get("peak_gpu_memory_gb") or 0, clustering_gpu.get("peak_gpu_memory_gb") or 0),
        "timings": timings | {"model_load_s": report.get("load_s")},
        "logs": logs,
        "modal_client": modal.__version__,
        "image_model_env": os.environ.get("ML_HEADCOUNT_IMAGE_MODEL"),
    }


def _device_of(output) -> str:
    if isinstance(output, BaseException):
        return f"failed: {type(output).__name__}: {output}"
    if isinstance(output, ContainerFailure):
        return f"failed: {output.last_line}"
    return output.device
