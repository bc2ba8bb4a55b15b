"""End to end on real components: a Prefect server, the deployments from deployments/prefect.yaml, a process worker.

CV files dropped into an inbox are registered by the `cv-ingestion/hourly`
deployment, which emits `ml-headcount.dataset.updated`; the trigger of
`cv-keywords/weekly` (an automation on the server) starts a keyword run on the
updated dataset with the ingestion's settings. A second ingestion with nothing
new emits nothing and starts nothing. The server, the worker and every flow
run process they started are stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pandas as pd
import pytest

from ml_headcount.runs.markdown import markdown_text

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "ml-headcount-local"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

ML = [
    "Machine learning researcher training deep neural networks with PyTorch; transformers and attention models.",
    "Deep learning scientist: neural networks, transformers, reinforcement learning research in PyTorch.",
    "PhD in machine learning; published deep learning research on transformers and neural network optimisation.",
    "Applied machine learning engineer fine-tuning transformers and deep neural networks with PyTorch.",
]
SALES = [
    "Enterprise sales manager negotiating contracts, growing the revenue pipeline and key client accounts.",
    "Account executive closing enterprise deals; sales pipeline, quota attainment and client relationships.",
    "Regional sales director: revenue growth, contract negotiation, key account management and quotas.",
    "Business development lead managing client relationships, sales pipeline forecasts and revenue targets.",
]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pids: list[int]) -> list[int]:
    """Every process below these (Linux /proc); flow run processes start their own sessions, so killpg misses them."""
    children = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(stat.parent.name))
    found, todo = [], list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM the process groups of what the test started and of everything below it, then SIGKILL what is left."""
    groups = {p.pid for p in processes if p.poll() is None}
    for pid in descendants([p.pid for p in processes]):
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                continue
        deadline = time.monotonic() + 15
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def prefect(tmp_path):
    """A Prefect server on an ephemeral port (not 4200) with its own home, started as docs/deployments.md says:
    PREFECT_API_URL set in the profile first, then the server on that port; yields (env, api url, start a process,
    the server's process)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ML_HEADCOUNT_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "prefect-storage"),
        HF_HUB_OFFLINE="1",  # the model ships in a package; nothing may be downloaded
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen] = []

    def start(name: str, *args: str, cwd: Path = REPO) -> subprocess.Popen:
        with open(logs / f"{name}.log", "w") as log:  # the child keeps its own descriptor of the log
            process = subprocess.Popen(
                [PREFECT, *args],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        processes.append(process)
        return process

    prefect_cli(env, "config", "set", f"PREFECT_API_URL={api}")  # step 1, saved in the profile under PREFECT_HOME
    # step 2; no scheduler: the test's runs are the only runs, whatever the clock says
    server = start("server", "server", "start", "--port", str(port), "--no-scheduler", "--analytics-off")
    try:
        wait_for(lambda: _healthy(api), 120, "the Prefect server to answer")
        yield env, api, start, server
    finally:
        stop(processes)
        for log in sorted(logs.iterdir()):  # shown by pytest when the test failed
            print(f"----- {log.name} -----\n{log.read_text()[-6000:]}")


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def prefect_cli(env: dict, *args: str, succeed: bool = True, timeout_s: float = 300) -> str:
    done = subprocess.run(
        [PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout_s
    )
    assert (done.returncode == 0) == succeed, (
        f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout + done.stderr


def drop_cvs(inbox: Path) -> None:
    inbox.mkdir()
    labels = ["ml", "ml", "sales", "sales"]
    pd.DataFrame({"cv_text": ML[:2] + SALES[:2], "category": labels}).to_csv(inbox / "batch-1.csv", index=False)
    pd.DataFrame({"resume": ML[2:] + SALES[2:], "label": labels}).to_json(
        inbox / "batch-2.jsonl", orient="records", lines=True
    )
    (inbox / "notes.csv").write_text("name,phone\nalice,555-0100\n")  # no CV text: malformed


def test_inbox_files_are_registered_and_refresh_the_keywords(prefect, tmp_path):
    env, api, start, server = prefect
    started = time.monotonic()
    inbox, storage = tmp_path / "inbox", tmp_path / "artifacts"
    drop_cvs(inbox)

    prefect_cli(env, "work-pool", "create", POOL, "--type", "process")
    prefect_cli(env, "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
    deployments = [
        "cv-ingestion/hourly",
        "cv-keywords/weekly",
        "cv-keywords/weekly-modal",
        "cv-ingestion/hourly-s3",
        "cv-keywords/weekly-s3",
        "cv-apply/weekly",
    ]
    schedules = {
        name: [
            (s["schedule"]["cron"], s["active"])
            for s in httpx.get(f"{api}/deployments/name/{name}").json()["schedules"]
        ]
        for name in deployments
    }
    assert schedules == {
        "cv-ingestion/hourly": [("0 * * * *", True)],
        "cv-keywords/weekly": [("0 3 * * 1", True)],
        "cv-keywords/weekly-modal": [("0 3 * * 1", False)],
        "cv-ingestion/hourly-s3": [("0 * * * *", False)],
        "cv-keywords/weekly-s3": [("0 3 * * 1", False)],
        "cv-apply/weekly": [("0 5 * * 1", False)],
    }
    # Settings is the parameter schema: the server refuses a misspelt field before any run exists
    refused = prefect_cli(
        env,
        "deployment",
        "run",
        "cv-keywords/weekly",
        "--param",
        'settings={"extracton": {"top_n": 10}}',
        succeed=False,
    )
    assert "extracton" in refused
    start("worker", "worker", "start", "--pool", POOL, cwd=tmp_path)  # not the repo: the pull step must find it
    _ui_shows_the_deployments(api)

    # settings given per run, as an operator would: the inbox and storage of this test, a lighter extraction
    settings = {
        "inbox": {"url": str(inbox)},
        "storage": {"url": str(storage)},
        "extraction": {"top_n": 10, "ngram_max": 2},
    }
    ingest = ["deployment", "run", "cv-ingestion/hourly", "--watch", "--watch-timeout", "240"]
    prefect_cli(env, *ingest, "--params", json.dumps({"settings": settings}))

    # the ingestion registered both good files, quarantined the malformed one and started a keyword run
    (record_file,) = (storage / "datasets" / "cvs" / "ingestions").iterdir()
    record = json.loads(record_file.read_text())
    assert {Path(f["file"]).name: (f["status"], f["registered"]) for f in record["files"]} == {
        "batch-1.csv": ("registered", 4),
        "batch-2.jsonl": ("registered", 4),
        "notes.csv": ("quarantined", 0),
    }
    assert (inbox / "quarantine" / record["ingestion_id"] / "notes.csv").exists()
    assert record["dataset_cvs"] == 8
    event = record["keywords_run_event"]
    assert event["event"] == "ml-headcount.dataset.updated" and event["deployment"] == "cv-keywords/weekly"
    (emitted,) = wait_for(lambda: _events(api, "ml-headcount.dataset.updated"), 60, "the event to be stored")
    assert emitted["id"] == event["event_id"] and emitted["resource"]["ml-headcount.refresh"] == "cv-keywords/weekly"

    # the weekly deployment's trigger, an automation on the server, started the keyword run: nothing else did
    weekly = httpx.get(f"{api}/deployments/name/cv-keywords/weekly").json()
    (automation,) = [
        a
        for a in httpx.post(f"{api}/automations/filter", json={}).json()
        if any(action.get("deployment_id") == weekly["id"] for action in a["actions"])
    ]
    (keywords_run_id,) = wait_for(lambda: _runs_of(api, weekly["id"]), 120, "the triggered cv-keywords run")
    keywords_run = wait_for(lambda: _finished(api, keywords_run_id), 300, "the triggered cv-keywords run to end")
    assert keywords_run["state_type"] == "COMPLETED", keywords_run["state"]
    assert keywords_run["created_by"]["type"] == "AUTOMATION" and keywords_run["created_by"]["id"] == automation["id"]
    assert keywords_run["name"] == "cvs.parquet · local · top10 ng1-2"

    # its artifacts in storage: the run that read the registered dataset with the per-run settings
    latest = json.loads((storage / "runs" / "latest.json").read_text())
    run_dir = storage / "runs" / latest["run_id"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["input"]["url"] == str(storage / "datasets" / "cvs" / "cvs.parquet")
    assert manifest["ingest"]["cvs"] == 8 and manifest["parameters"]["extraction"]["top_n"] == 10
    for name in ["report.md", "discriminative_keywords.csv", "keyword_lists.json", "clusters.json", "top_keywords.png"]:
        assert (run_dir / name).exists(), name

    # and its Prefect artifacts, through the server's API
    artifacts = httpx.post(
        f"{api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [keywords_run_id]}}}
    ).json()
    assert {"top-discriminative-keywords", "cv-keywords-report"} <= {a["key"] for a in artifacts}
    (report_html,) = [a for a in artifacts if a["key"] == "cv-keywords-report-html"]
    # the UI shows where report.html is; a file:// link it could not open is no longer given
    assert report_html["type"] == "markdown" and "file:///" not in report_html["data"]
    assert markdown_text(str(run_dir / "report.html")) in report_html["data"]

    # a second ingestion finds nothing new, emits nothing and starts nothing
    prefect_cli(env, *ingest, "--param", f"settings={json.dumps(settings)}")
    assert len(_events(api, "ml-headcount.dataset.updated")) == 1
    keyword_runs = httpx.post(f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": ["cv-keywords"]}}}).json()
    assert [r["id"] for r in keyword_runs] == [keywords_run_id]
    ingestion_runs = httpx.post(f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": ["cv-ingestion"]}}}).json()
    assert [(r["state_type"], r["name"]) for r in ingestion_runs] == [
        ("COMPLETED", "inbox → cvs · then cv-keywords/weekly")
    ] * 2
    assert len(list((storage / "datasets" / "cvs" / "ingestions").iterdir())) == 1

    # the server stopped: a command that would run a flow says so in one line, naming the way back
    stop([server])
    stopped = subprocess.run(
        [sys.executable, "-m", "flows.cli", "apply", "latest", str(inbox / "batch-1.csv"), "--storage-url", storage],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stopped.returncode == 1 and stopped.stderr.splitlines() == [
        f"ml-headcount: error: the Prefect server at {api} (PREFECT_API_URL) is unreachable ([Errno 111] Connection "
        "refused); start it, or go back to the temporary server of each command with `prefect config unset "
        "PREFECT_API_URL` (and unset it in the environment, if it is set there)"
    ], stopped.stderr

    print(f"end-to-end: {time.monotonic() - started:.0f} s after the server was up")


def _ui_shows_the_deployments(api: str) -> None:
    """The UI's deployments page in a real browser lists the deployments: it loaded its API from this server's port
    (not 4200's), every API call answered."""
    from playwright.sync_api import sync_playwright

    origin = api.removesuffix("/api")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            calls = []
            page.on("response", lambda response: calls.append((response.url, response.status)))
            page.goto(f"{origin}/deployments", timeout=120_000)
            page.get_by_text("cv-ingestion").first.wait_for(timeout=120_000)
            assert "Can't connect to Server API" not in page.inner_text("body")
        finally:
            browser.close()
    api_calls = [(url, status) for url, status in calls if "/api/" in url]
    assert api_calls and all(url.startswith(f"{api}/") and status < 400 for url, status in api_calls), api_calls


def _events(api: str, name: str) -> list[dict]:
    found = httpx.post(f"{api}/events/filter", json={"filter": {"event": {"name": [name]}}, "limit": 50}).json()
    return found["events"]


def _runs_of(api: str, deployment_id: str) -> list[str]:
    runs = httpx.post(f"{api}/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}}).json()
    return [r["id"] for r in runs]


def _finished(api: str, flow_run_id: str) -> dict | None:
    run = httpx.get(f"{api}/flow_runs/{flow_run_id}").json()
    return run if run["state_type"] in TERMINAL else None
