"""The Modal backend of the cv-keywords flow: one ephemeral app per flow run, shards fanned out with `.map`.

The flow enters `modal_app_session` once around its model stages. The session
checks credentials at once, then opens the app (`app.run()`) only when a stage
first needs the GPU, so a fully cached rerun never starts Modal, and never opens
it twice. This process stays the orchestrator: it reads each shard's texts from
storage as `.map` consumes them and writes each result to the extraction cache
as it arrives, so a failure later in the run keeps every shard that completed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar

import modal
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ml_headcount import extraction_cache
from ml_headcount.config import Settings
from ml_headcount.extraction_cache import Shard
from ml_headcount.keywords import keywords_table
from ml_headcount.runs import RunLayout
from ml_headcount.storage import ArtifactStore
from modal_workers import app as workers
from tasks.clustering import clustering_input, keyword_clusters
from tasks.extraction import shard_texts
from tasks.policies import IO_RETRIES, result_storage

# Orchestrator-side resubmissions of the shards that still fail after Modal's own per-call retries.
RESUBMISSIONS = 1

HOW_TO_AUTHENTICATE = (
    "Authenticate with `modal token new` (writes ~/.modal.toml), or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET; "
    "or run the model locally instead with `--backend local`."
)


class ModalSetupError(RuntimeError):
    """The Modal backend cannot start with this machine's setup or this run's settings."""


class ModalCredentialsError(ModalSetupError):
    """No Modal credentials on this machine."""


class ShardExtractionError(RuntimeError):
    """Shards that still failed after Modal's retries and the orchestrator's resubmission."""

    def __init__(self, failures: dict[str, BaseException]):
        self.shard_ids = sorted(failures)
        details = "; ".join(f"{shard_id}: {type(error).__name__}: {error}" for shard_id, error in sorted(failures.items()))
        super().__init__(
            f"keyword extraction on Modal failed for {len(failures)} shard(s) after retries: {details}. "
            "Completed shards are cached; a rerun sends only the failed ones."
        )


def modal_credentials_found() -> bool:
    """A token (MODAL_TOKEN_ID/SECRET or the active profile of ~/.modal.toml) or OAuth credentials; no network."""
    from modal.config import config

    token = config.get("token_id") and config.get("token_secret")
    oauth = all(config.get(key) for key in ("oauth_refresh_token", "oauth_client_id", "oauth_client_secret"))
    return bool(token or oauth)


def require_modal_credentials() -> None:
    if not modal_credentials_found():
        raise ModalCredentialsError(f"no Modal credentials on this machine. {HOW_TO_AUTHENTICATE}")


def require_image_model(settings: Settings) -> None:
    """The image carries one model, chosen when modal_workers.app was imported; containers never download one."""
    if settings.extraction.model != workers.IMAGE_MODEL:
        raise ModalSetupError(
            f"this run asks for model {settings.extraction.model!r}, but the Modal image is built with "
            f"{workers.IMAGE_MODEL!r}; set ML_HEADCOUNT_EXTRACTION__MODEL={settings.extraction.model} in the environment "
            "so that the image is built with it."
        )


class AppSession:
    """The flow run's one ephemeral Modal app, opened on first use and closed when the session ends."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.exits = ExitStack()
        self.opened = False

    def open(self) -> None:
        if self.opened:
            return
        if self.verbose:
            self.exits.enter_context(modal.enable_output())
        try:
            self.exits.enter_context(workers.app.run())
        except modal.exception.AuthError as error:
            raise ModalCredentialsError(f"Modal rejected this machine's credentials ({error}). {HOW_TO_AUTHENTICATE}") from error
        self.opened = True


_active_session: ContextVar[AppSession | None] = ContextVar("modal_app_session", default=None)


@contextmanager
def modal_app_session(settings: Settings) -> Iterator[AppSession]:
    """Around every model stage of one flow run; fails before any work when Modal cannot be used."""
    require_modal_credentials()
    require_image_model(settings)
    session = AppSession(settings.modal.verbose)
    token = _active_session.set(session)
    try:
        with session.exits:
            yield session
    finally:
        _active_session.reset(token)


def ensure_app_open() -> None:
    session = _active_session.get()
    if session is None:
        raise RuntimeError("Modal stages run inside modal_app_session(settings); the cv-keywords flow opens it")
    session.open()


def with_run_resources(target: modal.Cls | modal.Function, settings: Settings, gpu: str) -> modal.Cls | modal.Function:
    """The app's function or class with this run's resources; its decorator holds those of import time."""
    if settings.modal.model_dump(exclude={"verbose"}) == workers.APP_SETTINGS.modal.model_dump(exclude={"verbose"}):
        return target
    return target.with_options(**workers.container_resources(settings.modal, gpu))


@task(name="store-shard-keywords", cache_policy=NO_CACHE, **IO_RETRIES)
def store_shard_keywords(shard: Shard, results: list[list[tuple[str, float]]], settings: Settings) -> str:
    """Add one shard's keywords, extracted on Modal, to the extraction cache; returns its cache location."""
    table = keywords_table(list(shard.cv_ids), results)
    return extraction_cache.store_shard(ArtifactStore(settings.storage), settings.extraction, shard, table)


def extract_on_modal(shards: list[Shard], settings: Settings, run: RunLayout) -> Iterator[str]:
    """Extract the given (uncached) shards on Modal; yields each completed shard's cache location, in shard order.

    Modal retries a failed call on its own (`modal.Retries`); shards still
    failing are resubmitted once, alone; after that the run fails naming them.
    """
    if not shards:
        return
    ensure_app_open()
    logger = get_run_logger()
    store = ArtifactStore(settings.storage)
    extractor = with_run_resources(workers.KeywordExtractor, settings, settings.modal.extraction_gpu)()
    pending: list[Shard] = list(shards)
    for attempt in range(1 + RESUBMISSIONS):
        if attempt:
            logger.warning("resubmitting %d failed shard(s): %s", len(pending), ", ".join(s.shard_id for s in pending))
        texts = (shard_texts(store, run, shard) for shard in pending)  # read as .map sends them, not all at once
        outputs = extractor.extract.map(
            texts, kwargs={"settings": settings.extraction}, order_outputs=True, return_exceptions=True
        )
        failures: dict[str, BaseException] = {}
        for shard, output in zip(pending, outputs, strict=True):
            if isinstance(output, BaseException):
                logger.warning("shard %s failed on Modal: %s: %s", shard.shard_id, type(output).__name__, output)
                failures[shard.shard_id] = output
            else:
                yield store_shard_keywords(shard, output, settings)
        if not failures:
            return
        pending = [shard for shard in pending if shard.shard_id in failures]
    raise ShardExtractionError(failures)


@task(
    name="keyword-clusters-modal",
    cache_key_fn=keyword_clusters.cache_key_fn,  # the local task's key: a rerun on either backend does no model work
    persist_result=True,
    result_serializer="json",
    **IO_RETRIES,
)
def keyword_clusters_on_modal(settings: Settings, run: RunLayout) -> dict:
    """Clusters of each category's discriminative keywords, embedded in the run's Modal app."""
    ensure_app_open()
    cluster = with_run_resources(workers.cluster_keywords, settings, settings.modal.clustering_gpu)
    return cluster.remote(clustering_input(settings, run), settings.extraction, settings.clustering)


def cluster_on_modal(settings: Settings, run: RunLayout) -> dict:
    """What tasks.clustering.keyword_clusters gives, computed on Modal and cached under the same key."""
    return keyword_clusters_on_modal.with_options(result_storage=result_storage(ArtifactStore(settings.storage)))(settings, run)


def modal_check(settings: Settings) -> dict:
    """Run the smoke test in an ephemeral app of its own; returns its report."""
    with modal_app_session(settings):
        ensure_app_open()
        return with_run_resources(workers.smoke_test, settings, settings.modal.extraction_gpu).remote()
