"""Artifacts and caches on a real S3-compatible server (moto's) on loopback."""

from __future__ import annotations

import http.client
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import s3fs

from flows.cli import main as cli_main
from flows.cv_keywords import cv_keywords
from ml_headcount.config import StorageSettings, load_settings
from ml_headcount.io.storage import ArtifactStore, StorageError
from tests.conftest import REPO

DEMO = REPO / "examples" / "demo_cvs.csv"
SECRET = "ml-headcount-test-SECRET"


@pytest.fixture
def s3(s3_endpoint) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)


def demo_cvs(n: int, start: int = 0) -> pd.DataFrame:
    usable = pd.read_csv(DEMO).iloc[:40]  # the first 40 demo rows are clean, distinct CVs
    return usable.iloc[start : start + n]


def upload(s3, url: str, table: pd.DataFrame) -> str:
    s3.pipe(url, table.to_csv(index=False).encode())
    return url


def s3_settings(bucket: str, **overrides):
    return load_settings(storage={"url": f"s3://{bucket}/ml"}, **overrides)


def objects(s3, bucket: str) -> list[str]:
    return sorted(p.removeprefix(f"{bucket}/") for p in s3.find(bucket))


def run_table(s3, location: str, name: str) -> pd.DataFrame:
    data = s3.cat(f"{location}/{name}")
    return (
        pd.read_parquet(io.BytesIO(data))
        if name.endswith(".parquet")
        else pd.read_csv(io.BytesIO(data), dtype={"category": str})
    )


def subprocess_env(tmp_path: Path) -> dict:
    """A second 'machine': its own Prefect home, results and server; it shares only the bucket."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "prefect-storage"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PYTHONPATH=str(REPO),
    )
    return env


COUNTING_RUN = textwrap.dedent("""
    import json, sys
    from sentence_transformers import SentenceTransformer
    from ml_headcount.extraction.encoders import Encoder
    calls = []
    for model_class in (SentenceTransformer, Encoder):
        real = model_class.encode
        model_class.encode = lambda self, s, *a, _real=real, **k: (calls.append(len(s)), _real(self, s, *a, **k))[1]
    from flows.cv_keywords import cv_keywords
    from ml_headcount.config import load_settings
    location = cv_keywords(sys.argv[1], settings=load_settings(storage={"url": sys.argv[2]}))
    print(json.dumps({"location": location, "model_calls": len(calls)}))
""")


def test_full_run_on_s3_writes_every_artifact_and_no_credentials(prefect_harness, s3, bucket):
    source = upload(s3, f"s3://{bucket}/inbox/cvs.csv", demo_cvs(10))
    location = cv_keywords(source, settings=s3_settings(bucket), run_id="r1")
    assert location == f"s3://{bucket}/ml/runs/r1"
    stored = objects(s3, bucket)
    for name in [
        "manifest.json",
        "cvs.parquet",
        "rejected.csv",
        "keywords.parquet",
        "category_keywords.csv",
        "discriminative_keywords.csv",
        "keyword_lists.json",
        "clusters.json",
        "report.md",
        "top_keywords.png",
    ]:
        assert f"ml/runs/r1/{name}" in stored
    assert any(k.startswith("ml/cache/keywords/") and k.endswith(".parquet") for k in stored)
    assert any(k.startswith("ml/cache/clusters/") and k.endswith(".json") for k in stored)
    assert not any("prefect-results" in k for k in stored), "Prefect writes no result record to shared storage"
    assert json.loads(s3.cat(f"{bucket}/ml/runs/latest.json"))["location"] == "runs/r1"  # relative to the storage URL
    assert not any(".tmp-" in k for k in stored)
    for key in stored:  # the secret key never lands in storage
        assert SECRET.encode() not in s3.cat(f"{bucket}/{key}"), key


def test_cache_hit_in_a_second_process_sharing_only_the_bucket(prefect_harness, s3, bucket, tmp_path):
    source = upload(s3, f"s3://{bucket}/inbox/cvs.csv", demo_cvs(6))
    cold = cv_keywords(source, settings=s3_settings(bucket))
    result = subprocess.run(
        [sys.executable, "-c", COUNTING_RUN, source, f"s3://{bucket}/ml"],
        env=subprocess_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warm = json.loads(result.stdout.strip().splitlines()[-1])
    assert warm["model_calls"] == 0
    assert warm["location"] != cold
    pd.testing.assert_frame_equal(
        run_table(s3, cold, "keywords.parquet"), run_table(s3, warm["location"], "keywords.parquet")
    )


def test_incremental_run_extracts_only_new_cvs_and_equals_a_cold_run(prefect_harness, s3, bucket, model_calls):
    old, new = demo_cvs(6), demo_cvs(3, start=6)
    cv_keywords(upload(s3, f"s3://{bucket}/inbox/old.csv", old), settings=s3_settings(bucket))
    model_calls.clear()
    both = upload(s3, f"s3://{bucket}/inbox/both.csv", pd.concat([old, new]))
    incremental = cv_keywords(both, settings=s3_settings(bucket))

    manifest = json.loads(s3.cat(f"{incremental}/manifest.json"))
    assert manifest["extraction"]["cvs_extracted"] == 3 and manifest["extraction"]["cvs_from_cache"] == 6
    embedded_documents = [text for call in model_calls for text in call if len(text) > 200]
    assert len(embedded_documents) == 3
    assert not any(text[:60] in " ".join(old["cv_text"]).lower() for text in embedded_documents)

    cold = cv_keywords(both, settings=load_settings(storage={"url": f"s3://{bucket}/cold"}))
    for name in ["keywords.parquet", "discriminative_keywords.csv"]:
        pd.testing.assert_frame_equal(run_table(s3, incremental, name), run_table(s3, cold, name))


def test_killed_run_resumes_from_finished_shards(prefect_harness, s3, bucket, tmp_path):
    source = upload(s3, f"s3://{bucket}/inbox/cvs.csv", demo_cvs(12))
    storage = f"s3://{bucket}/ml"
    cache = f"{bucket}/ml/cache/keywords"
    env = subprocess_env(tmp_path) | {"ML_HEADCOUNT_EXTRACTION__SHARD_SIZE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", source, "--storage-url", storage, "--run-id", "killed"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if len([p for p in s3.find(cache) if p.endswith(".json")]) >= 3:
                break
            time.sleep(0.1)
            s3.invalidate_cache()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = len([p for p in s3.find(cache) if p.endswith(".json")])
    assert 3 <= finished < 12, "the run must be killed part-way through extraction"
    assert not s3.exists(f"{bucket}/ml/runs/killed/manifest.json")

    resumed = cv_keywords(source, settings=s3_settings(bucket), run_id="killed")  # an incomplete run may be redone
    manifest = json.loads(s3.cat(f"{resumed}/manifest.json"))
    assert manifest["extraction"]["cvs_from_cache"] == finished
    uninterrupted = cv_keywords(source, settings=load_settings(storage={"url": f"s3://{bucket}/fresh"}))
    for name in ["keywords.parquet", "discriminative_keywords.csv"]:
        pd.testing.assert_frame_equal(run_table(s3, resumed, name), run_table(s3, uninterrupted, name))


def test_missing_bucket_fails_fast_naming_the_url(prefect_harness, s3_endpoint, capsys):
    started = time.monotonic()
    code = cli_main(["run", str(DEMO), "--storage-url", "s3://no-such-bucket/ml"])
    assert code == 2 and time.monotonic() - started < 30
    message = capsys.readouterr().err
    assert "s3://no-such-bucket/ml: bucket 'no-such-bucket' does not exist" in message
    assert SECRET not in message


def test_bad_credentials_fail_fast_naming_the_url(bucket):
    from moto.core.authorization import enable_iam_authentication

    store = ArtifactStore(StorageSettings(url=f"s3://{bucket}/ml"))
    with enable_iam_authentication(), pytest.raises(StorageError) as error:
        store.verify()
    assert f"s3://{bucket}/ml: access denied" in str(error.value)
    assert "AWS_ACCESS_KEY_ID" in str(error.value) and SECRET not in str(error.value)


class FlakyProxy(http.server.ThreadingHTTPServer):
    """Forwards to the S3 server, but answers the first `failures` requests with 503 SlowDown or a reset."""

    def __init__(self, upstream: str, failures: int):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.failures_left = failures
        self.failed = self.forwarded = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            fail = self.server.failures_left > 0
            self.server.failures_left -= fail
            self.server.failed += fail
        if fail and self.server.failed % 3 == 0:  # every third injected fault is a connection reset
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fail:
            payload = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            # a HEAD answer keeps the object's Content-Length: clients read the size from it
            if name.lower() not in ("transfer-encoding", "connection") and (
                self.command == "HEAD" or name.lower() != "content-length"
            ):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.server.lock:
            self.server.forwarded += 1

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def test_transient_failures_are_retried_to_success(prefect_harness, s3, bucket, s3_endpoint):
    source = upload(s3, f"s3://{bucket}/inbox/cvs.csv", demo_cvs(4))
    proxy = FlakyProxy(s3_endpoint, failures=9)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        settings = load_settings(storage={"url": f"s3://{bucket}/ml", "endpoint_url": proxy.endpoint})
        location = cv_keywords(source, settings=settings)
    finally:
        proxy.shutdown()
    assert proxy.failed == 9 and proxy.forwarded > 20
    assert s3.exists(f"{location}/manifest.json")
