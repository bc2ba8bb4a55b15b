"""Shared fixtures: real data from ../shared/data, a real model, a session-wide Prefect server.

A clone without ../shared/data passes: every test that reads the rated CVs (through a
fixture below, or marked `shared_data`) skips, naming the missing files. In CI
(`CI=true`) a missing data folder fails those tests instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import NoReturn

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RATED_CVS = SHARED_DATA / "rated_cvs.csv"
RESUMES = SHARED_DATA / "UpdatedResumeDataSet.csv"

# Set before Prefect is imported anywhere: cached results must not leak between test sessions.
_PREFECT_TMP = Path(tempfile.mkdtemp(prefix="ml-headcount-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(_PREFECT_TMP / "storage")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


def pytest_collection_modifyitems(items):
    """Markers a developer selects by (`-m "not model and not prefect"` is the fast part): `prefect` for every test
    that needs the temporary Prefect server, directly or through another fixture; `model` where the model loads."""
    for item in items:
        fixtures = set(item.fixturenames)
        if "prefect_harness" in fixtures:
            item.add_marker(pytest.mark.prefect)
            item.add_marker(pytest.mark.slow)
        if fixtures & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)


MODEL_FIXTURES = {"rated_sample_run", "model_calls", "extractor", "keybert_keywords"}


# fixtures that read ../shared/data (directly or through one of these)
DATA_FIXTURES = {"rated_cvs", "rated_sample_csv", "rated_sample_run", "rated"}


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_data: reads the rated CVs or the resume set in ../shared/data")


def unavailable(reason: str) -> NoReturn:
    """Something a test needs is not on this machine: a skip on a developer's machine, a failure in CI (CI=true),
    whose .ci/run installs it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must have it", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if item.get_closest_marker("shared_data") or DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
        missing = [str(path) for path in (RATED_CVS, RESUMES) if not path.exists()]
        if missing:
            unavailable(f"needs the shared data: {', '.join(missing)} missing (a clone without ../shared/data)")


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def rated_cvs() -> pd.DataFrame:
    return pd.read_csv(RATED_CVS, usecols=["cv_text", "category"])


@pytest.fixture(scope="session")
def rated() -> pd.DataFrame:
    """All 454 rated CVs, cleaned as a run cleans them (the one shared copy; the fixture above is the raw table)."""
    from ml_headcount.config import IngestSettings
    from ml_headcount.corpus.ingest import ingest

    return ingest(str(RATED_CVS), IngestSettings()).cvs


@pytest.fixture(scope="session")
def rated_sample_csv(tmp_path_factory, rated_cvs) -> Path:
    """A class-balanced slice of the hand-rated CVs: 30 ML experts, 30 others."""
    sample = pd.concat(
        [
            rated_cvs[rated_cvs["category"] == 1].head(30),
            rated_cvs[rated_cvs["category"] == 0].head(30),
        ]
    )
    path = tmp_path_factory.mktemp("data") / "rated_sample.csv"
    sample.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def rated_sample_run(prefect_harness, rated_sample_csv, tmp_path_factory) -> Path:
    """A real cv-keywords run on the rated sample (30 ML experts, 30 others): its location."""
    from flows.cv_keywords import cv_keywords
    from ml_headcount.config import load_settings

    storage = tmp_path_factory.mktemp("sample-run") / "artifacts"
    return Path(cv_keywords(str(rated_sample_csv), settings=load_settings(storage={"url": str(storage)})))


@pytest.fixture(scope="session")
def demo_run(prefect_harness, tmp_path_factory) -> Path:
    """A real cv-keywords run on the bundled demo CVs (no shared data needed): its location."""
    from flows.cv_keywords import cv_keywords
    from ml_headcount.config import load_settings

    storage = tmp_path_factory.mktemp("demo-run") / "artifacts"
    settings = load_settings(storage={"url": str(storage)})
    return Path(cv_keywords(str(REPO / "examples" / "demo_cvs.csv"), settings=settings))


@pytest.fixture
def model_calls(monkeypatch) -> list[list[str]]:
    """Records what every model call was asked to embed: extraction's encoders and sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from ml_headcount.extraction.encoders import Encoder

    calls: list[list[str]] = []
    for model_class in (SentenceTransformer, Encoder):
        monkeypatch.setattr(model_class, "encode", _recording(model_class.encode, calls))
    return calls


def _recording(encode, calls: list[list[str]]):
    def recording_encode(self, sentences, *args, **kwargs):
        calls.append([sentences] if isinstance(sentences, str) else list(sentences))
        return encode(self, sentences, *args, **kwargs)

    return recording_encode


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto's) on an ephemeral loopback port, with the standard AWS variables set."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per S3 request drowns test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "ml-headcount-test-key",
        "AWS_SECRET_ACCESS_KEY": "ml-headcount-test-SECRET",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        patch.setenv(name, value)
    yield endpoint
    patch.undo()
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, request) -> str:
    """A new, empty bucket for one test."""
    import s3fs

    name = "t-" + "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:40]
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True).mkdir(name)
    return name
