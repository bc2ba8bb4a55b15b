"""macOS and Windows lack Linux's `os.sched_getaffinity` and `fcntl`: the ingest and storage paths run without them.

Each check runs in a fresh interpreter in which both are gone before anything is
imported (`import fcntl` raises ImportError, as on Windows), so the Linux suite keeps
the product honest on the other platforms.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO

WITHOUT_LINUX_CALLS = """
import os, sys
del os.sched_getaffinity  # macOS and Windows have no affinity call
sys.modules["fcntl"] = None  # Windows has no fcntl: `import fcntl` raises ImportError
"""


def run_without_linux_calls(code: str) -> subprocess.CompletedProcess:
    script = WITHOUT_LINUX_CALLS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


def test_ingest_and_storage_run_without_sched_getaffinity_and_fcntl(tmp_path):
    table = REPO / "examples" / "demo_cvs.csv"
    result = run_without_linux_calls(f"""
        import json, os, threading
        from pathlib import Path
        from ml_headcount.config import Settings, StorageSettings
        from ml_headcount.corpus.ingest import ingest
        from ml_headcount.runs.layout import LATEST, RunLayout, claim_run, complete_run
        from ml_headcount.io.storage import ArtifactStore

        assert not hasattr(os, "sched_getaffinity")
        workers = Settings().cpu_workers()
        assert workers == os.cpu_count(), workers
        result = ingest({str(table)!r}, Settings().ingest, spill=Path({str(tmp_path / "spill.parquet")!r}),
                        workers=max(2, workers))  # worker processes too, as on a large run
        summary = result.summary()

        store = ArtifactStore(StorageSettings(url={str(tmp_path / "store")!r}))
        store.verify()
        counter = "counter.json"
        def increment():
            for _ in range(20):
                store.update(counter, lambda current: str(int(current or b"0") + 1).encode())
        threads = [threading.Thread(target=increment) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        run = claim_run(store, "platform-run")
        location = complete_run(store, run, {{"run_id": run.run_id}})
        print(json.dumps({{"cvs": summary["cvs"], "counter": int(store.read_bytes(counter)),
                          "latest": store.read_json(LATEST)["run_id"], "complete": store.exists(run.manifest)}}))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"cvs": 40, "counter": 80, "latest": "platform-run", "complete": True}


def test_the_cli_starts_without_sched_getaffinity_and_fcntl():
    """Every command imports the storage module; on main its `import fcntl` ended every command on Windows."""
    result = run_without_linux_calls("""
        import sys
        from flows.cli import main
        sys.exit(main(["run", "no-such-file.csv", "--storage-url", "/tmp/ml-headcount-platform-test"]))
    """)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "no-such-file.csv" in result.stderr and "Traceback" not in result.stderr
