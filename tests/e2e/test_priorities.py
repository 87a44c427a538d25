"""Priorities with real processes, on the embedded default (SQLite, filesystem broker) and on the
full stack (PostgreSQL, a private Redis, S3): one busy worker (concurrency 1) runs a priority-9
job submitted after three priority-5 jobs next, and a job re-queued by the reaper after its
worker died runs before newer jobs of its priority. The processes log JSON lines
(``GENTRAIN_LOG_FORMAT=json``) that name the request ids and job ids they concern."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.db.migrate import upgrade
from shared.job_state import TERMINAL_STATUSES
from shared.settings import Settings
from tests.conftest import free_port, settings_env
from tests.e2e.stack import (
    FAST_FAULTS,
    GENTRAIN,
    FullStack,
    start_process,
    stop_processes,
    wait_ready,
)
from tests.e2e.test_training_flow import upload_mnist

pytestmark = pytest.mark.e2e
TERMINAL = {str(status) for status in TERMINAL_STATUSES}
SHORT = {"epochs": 1, "max_train_images": 256, "batch_size": 64}
# Runs until cancelled (a cancel stops it at its next epoch, a fraction of a second here).
LONG = {"epochs": 1000, "max_train_images": 256, "batch_size": 64}
STACK_FIELDS: dict[str, Any] = {**FAST_FAULTS, "log_format": "json"}


class EmbeddedStack:
    """The embedded default as separate processes: the API, a reaper and workers started by
    name, sharing one data directory (SQLite, the filesystem broker, local storage)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings(data_dir=root / "data", api_port=free_port(), **STACK_FIELDS)
        upgrade(self.settings.database_url)  # before the processes, which would race to it
        self.env = settings_env(self.settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return self.settings.api_url

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        process = start_process([*GENTRAIN, *args], self.env, self.root / f"{name}.log")
        self.processes[name] = process
        return process

    def wait_ready(self) -> None:
        wait_ready(self.url, list(self.processes.values()), self.root)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.root.glob("*.log"))
        )

    def close(self) -> None:
        stop_processes(list(self.processes.values()))


Stack = EmbeddedStack | FullStack


@pytest.fixture(params=["embedded", "redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str, mnist_path: Path
) -> Iterator[Stack]:
    made: Stack
    if request.param == "embedded":
        made = EmbeddedStack(tmp_path)
    else:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        made = FullStack(tmp_path, s3_endpoint, **STACK_FIELDS)  # a private Redis
    try:
        made.start("api", "api", "--workers", "1")
        made.start("reaper", "reaper")
        made.wait_ready()
        upload_mnist(made, mnist_path)  # type: ignore[arg-type]
        yield made
    finally:
        made.close()


def start_worker(stack: Stack, name: str) -> None:
    """One training worker, one job at a time, consuming before this returns."""
    stack.start(name, "worker", "--queues", "train", "--concurrency", "1", "--name", name)
    wait_for(
        stack,
        f"worker {name} ready",
        lambda: f"{name}@" in stack.log(name) and " ready." in stack.log(name),
    )


def wait_for(stack: Stack, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in stack.processes.items():
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                pytest.fail(f"{name} exited while waiting for {what}\n{stack.logs()}")
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"no {what} after {timeout} s\n{stack.logs()}")


def submit(stack: Stack, params: dict[str, Any], priority: int = 5, request_id: str = "") -> str:
    body = {"kind": "autoencoder", "dataset": "mnist", "params": params, "priority": priority}
    headers = {"X-Request-ID": request_id} if request_id else {}
    response = requests.post(f"{stack.url}/v1/jobs", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    if request_id:
        assert response.headers["X-Request-ID"] == request_id
    return str(response.json()["id"])


def job(stack: Stack, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = requests.get(f"{stack.url}/v1/jobs/{job_id}", timeout=10).json()
    return found


def wait_job(stack: Stack, job_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.update(job(stack, job_id))
        return ready(seen)

    wait_for(stack, f"job {job_id} there ({seen.get('status')})", check, timeout=180)
    return seen


def cancel(stack: Stack, job_id: str) -> None:
    response = requests.post(f"{stack.url}/v1/jobs/{job_id}/cancel", timeout=10)
    assert response.status_code in (202, 409), response.text


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log that is a JSON object (a worker also prints Celery's banner)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_priorities_and_requeues_keep_their_order(stack: Stack) -> None:
    start_worker(stack, "w1")
    # A priority-9 job submitted after three priority-5 ones, while the only worker is busy.
    blocker = submit(stack, LONG, request_id="e2e-blocker.1")
    wait_job(stack, blocker, lambda j: j["status"] == "running")
    normal = [submit(stack, SHORT) for _ in range(3)]
    urgent = submit(stack, SHORT, priority=9)
    cancel(stack, blocker)
    ended = {i: wait_job(stack, i, lambda j: j["status"] in TERMINAL) for i in [*normal, urgent]}
    assert all(j["status"] == "succeeded" for j in ended.values()), stack.logs()
    order = sorted(ended, key=lambda i: ended[i]["started_at"])
    assert order == [urgent, *normal]

    # A job re-queued by the reaper (its worker killed) runs before newer jobs of its priority.
    lost = submit(stack, LONG)
    wait_job(stack, lost, lambda j: j["status"] == "running" and j["latest_metrics"])
    newer = [submit(stack, SHORT), submit(stack, SHORT)]
    os.killpg(stack.processes["w1"].pid, signal.SIGKILL)
    stack.processes["w1"].wait()
    wait_job(stack, lost, lambda j: j["status"] == "queued")
    start_worker(stack, "w2")
    wait_job(stack, lost, lambda j: j["status"] == "running" and j["attempts"] == 2)
    # One job at a time: while the re-queued job runs, the newer ones have not started.
    assert [job(stack, i)["started_at"] for i in newer] == [None, None]
    for job_id in (lost, *newer):
        cancel(stack, job_id)
    wait_job(stack, lost, lambda j: j["status"] in TERMINAL)

    # JSON lines from every process, naming the request and the job they concern.
    api = json_lines(stack.log("api"))  # all but the CLI's notice before gunicorn starts
    assert all(entry["role"] == "api" for entry in api)
    # gunicorn's access line (the app's own records in that request carry the id too).
    posted = [e for e in api if e.get("request_id") == "e2e-blocker.1" and "method" in e]
    assert posted, "\n".join(map(str, api[-20:]))
    assert posted[0]["method"] == "POST" and posted[0]["status"] == 202
    generated = [e.get("request_id", "") for e in api if e.get("path", "").startswith("/v1/jobs/")]
    assert generated and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in generated)
    worker = json_lines(stack.log("w2"))
    assert all(entry["role"] == "worker" for entry in worker)
    about_lost = [e for e in worker if e.get("job_id") == lost]
    assert about_lost and {e["attempt"] for e in about_lost} == {2}
    reaper = json_lines(stack.log("reaper"))
    assert any("requeued" in e["message"] and lost in e["message"] for e in reaper)
