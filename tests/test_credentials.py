"""URLs that carry credentials (user:password@, a presigned query): read, and never written down anywhere.

An `estimate` and an `apply` read their tables over HTTP from URLs holding a password and a signature; the
secrets must appear in no artifact, no line of output, no Prefect log, state, artifact or event: the test
greps every file of the store and of the Prefect server's database for them.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from flows.cli import main
from tests.conftest import REPO

PASSWORD = "hunter2-pass-8f3a"
SIGNATURE = "0a1b2c3d4e5f-signature-77e1"
SECRETS = [PASSWORD, SIGNATURE]


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with Range requests (what fsspec's HTTP reader asks for); ignores credentials and queries."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path.split("?", 1)[0]))
        if not path.is_file():
            self.send_error(404)
            return None
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        if (spec := self.headers.get("Range", "")).startswith("bytes="):
            first, _, last = spec.removeprefix("bytes=").partition("-")
            start, end = int(first or 0), min(int(last) if last else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        import io

        return io.BytesIO(data[start : end + 1])


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server over a folder of the example tables: a function naming a file by a secret-bearing URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    for name in ("headcount_validation.csv", "headcount_population.csv", "demo_cvs.csv"):
        (folder / name).write_bytes((REPO / "examples" / name).read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _RangeHandler(*a, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    yield (
        lambda name: (
            f"http://analyst:{PASSWORD}@127.0.0.1:{port}/{name}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature={SIGNATURE}"
        )
    )
    server.shutdown()


def prefect_database() -> list[Path]:
    """The files of the test harness's Prefect server database (sqlite, with its journal and WAL)."""
    import prefect.settings

    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    path = Path(str(url).split("///", 1)[1])
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def flushed_to_the_server() -> None:
    """Logs and events of this process sent, then given the server's event persister time to write them."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)
    time.sleep(12)  # the server persists events in batches, every few seconds


def secrets_in(data: bytes) -> list[str]:
    return [secret for secret in SECRETS if secret.encode() in data]


def test_estimate_and_apply_read_secret_urls_and_record_them_nowhere(
    prefect_harness, served, rated_sample_run, tmp_path, capfd
):
    storage = tmp_path / "store"
    code = main(
        [
            "estimate",
            "--validation",
            served("headcount_validation.csv"),
            "--population",
            served("headcount_population.csv"),
            "--storage-url",
            str(storage),
            "--run-id",
            "with-secrets",
            "--draws",
            "200",
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    assert (storage / "estimates" / "with-secrets" / "summary.json").exists()
    assert "127.0.0.1" in (storage / "estimates" / "with-secrets" / "report.md").read_text(), (
        "the tables are still named"
    )

    failed = main(
        [
            "estimate",
            "--validation",
            served("missing.csv"),
            "--population",
            served("headcount_population.csv"),
            "--storage-url",
            str(storage),
            "--run-id",
            "missing-table",
        ]
    )
    failed_out, failed_err = capfd.readouterr()
    assert failed == 2 and "missing.csv" in failed_err and "Traceback" not in failed_err

    applied = main(
        ["apply", str(rated_sample_run), served("demo_cvs.csv"), "--output", str(tmp_path / "matches.parquet")]
    )
    applied_out, applied_err = capfd.readouterr()
    assert applied == 0, applied_err[-3000:]

    flushed_to_the_server()
    written = [p for p in [*storage.rglob("*"), *tmp_path.glob("matches.parquet*")] if p.is_file()]
    assert len(written) >= 6
    for path in written:
        assert not secrets_in(path.read_bytes()), path
    for stream in (out, err, failed_out, failed_err, applied_out, applied_err):
        assert not secrets_in(stream.encode()), stream[-2000:]
    database = prefect_database()
    assert database and any(b"with-secrets" in p.read_bytes() or b"headcount" in p.read_bytes() for p in database)
    for path in database:
        assert not secrets_in(path.read_bytes()), path
