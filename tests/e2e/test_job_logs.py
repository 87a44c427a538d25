"""Stored job logs with real processes on the full stack, run with secrets configured (API keys
required, a GENTRAIN_API_KEY, S3 credentials, a database URL with a password): a failed job's
log holds its error and traceback, a job killed mid-training shows both attempts' logs,
``gentrain logs -f`` follows a running job to its end, and no secret is in any stored log."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from sqlalchemy import select

from services.cli.event_stream import parse_events
from shared.api_keys import create_key
from shared.db.models import Job
from shared.db.session import session_scope
from shared.job_state import TERMINAL_STATUSES
from tests.e2e.stack import FAST_FAULTS, GENTRAIN, FullStack

pytestmark = pytest.mark.e2e
TERMINAL = {str(status) for status in TERMINAL_STATUSES}
DB_PASSWORD = f"pg-pw-{uuid.uuid4().hex[:12]}"
S3_KEY_ID = f"AKIA{uuid.uuid4().hex[:16].upper()}"
S3_SECRET = uuid.uuid4().hex + uuid.uuid4().hex
KILL_EPOCHS = 14


@dataclass
class Stack:
    """The running stack and a session carrying the owner's key."""

    full: FullStack
    key: str
    http: requests.Session

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"{self.full.url}{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, kind: str, dataset: str, **params: Any) -> str:
        body = {"kind": kind, "dataset": dataset, "params": params}
        response = self.http.post(f"{self.full.url}/v1/jobs", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def wait(self, job_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            job = self.get(f"/v1/jobs/{job_id}")
            if ready(job):
                return job  # type: ignore[no-any-return]
            time.sleep(0.2)
        pytest.fail(f"job {job_id} never got there: {job['history']}\n{self.full.logs()}")

    def ended(self, job_id: str) -> dict[str, Any]:
        return self.wait(job_id, lambda job: job["status"] in TERMINAL)

    def log(self, job_id: str, attempt: int | None = None) -> str:
        """The job's whole log (or one attempt's), read page by page."""
        text, offset = "", 0
        while True:
            query = {"offset": offset} | ({"attempt": attempt} if attempt else {})
            page = self.get(f"/v1/jobs/{job_id}/logs", **query)
            if not page["text"]:
                return text
            text, offset = text + page["text"], page["next_offset"]

    def upload(self, name: str, data: bytes) -> None:
        response = self.http.post(
            f"{self.full.url}/v1/datasets",
            files={"file": (f"{name}.npz", io.BytesIO(data))},
            data={"name": name},
            timeout=30,
        )
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, mnist_path: Path
) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    full = FullStack(
        tmp_path_factory.mktemp("logs"),
        s3_endpoint,
        database_password=DB_PASSWORD,
        auth="required",
        s3_access_key_id=S3_KEY_ID,
        s3_secret_access_key=S3_SECRET,
        **FAST_FAULTS,
    )
    try:
        _, key = create_key(full.settings.database_url, "alice")
        full.env["GENTRAIN_API_KEY"] = key  # every process has it, as with a shared .env
        full.start_api()
        full.start("reaper", "reaper")
        for name in ("w1", "w2"):
            full.start_worker(name, "train,sample")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        running = Stack(full, key, http)
        running.upload("mnist", mnist_path.read_bytes())
        with np.load(mnist_path) as digits:
            unlabeled = io.BytesIO()
            np.savez(unlabeled, x_train=digits["x_train"][:256])
        running.upload("unlabeled", unlabeled.getvalue())
        yield running
    finally:
        full.close()


def test_a_failed_jobs_log_holds_its_error_and_traceback(stack: Stack) -> None:
    job_id = stack.submit("classifier", "unlabeled", epochs=1)
    job = stack.ended(job_id)
    assert job["status"] == "failed" and "needs labels" in job["error"]
    page = stack.get(f"/v1/jobs/{job_id}/logs")
    assert page["attempts"] == [1] and page["finished"] and not page["truncated"]
    text = page["text"]
    assert f"classifier job {job_id}, attempt 1, on worker w" in text
    assert "TensorFlow " in text and "Keras " in text and "devices: CPU" in text
    assert "Traceback (most recent call last)" in text
    assert "UserError: the classifier needs labels: the dataset has no y_train" in text
    end = "[gentrain] failed: the classifier needs labels: the dataset has no y_train\n"
    assert text.endswith(end)


def test_gentrain_logs_follows_a_running_job_to_its_end(stack: Stack) -> None:
    job_id = stack.submit("autoencoder", "mnist", epochs=1000, max_train_images=512)
    env = {**stack.full.env, "GENTRAIN_API_URL": stack.full.url}
    follower = subprocess.Popen(
        [*GENTRAIN, "logs", job_id, "-f"], env=env, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    first_epoch = threading.Event()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line)
            if line.startswith("epoch 1/1000 - "):
                first_epoch.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not first_epoch.wait(timeout=180):
            pytest.fail(f"no epoch line followed: {lines}\n{stack.full.logs()}")
        # The job runs on (999 epochs to go): it ends when cancelled, and so must the follower.
        response = stack.http.post(f"{stack.full.url}/v1/jobs/{job_id}/cancel", timeout=10)
        assert response.status_code == 202, response.text
        assert follower.wait(timeout=120) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    reader.join(timeout=10)
    printed = "".join(lines)
    assert stack.ended(job_id)["status"] == "cancelled"
    assert printed.endswith("[gentrain] cancelled: cancelled while running\n")
    assert printed == stack.log(job_id)  # all of it, once


def test_a_killed_job_shows_both_attempts_logs(stack: Stack) -> None:
    job_id = stack.submit("autoencoder", "mnist", epochs=KILL_EPOCHS, batch_size=64)

    def mid_training(job: dict[str, Any]) -> bool:
        step = (job.get("latest_metrics") or {}).get("step", 0)
        return job["status"] == "running" and 3 <= step < KILL_EPOCHS - 3

    # Killed once its first attempt's log holds some epochs (stored as they end).
    stack.wait(job_id, lambda job: mid_training(job) and "epoch 2/14 - " in stack.log(job_id))
    name = worker_of(stack, job_id)
    killed = stack.full.processes[name]
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    try:
        job = stack.ended(job_id)
    finally:
        # Two workers again for the tests after this one.
        stack.full.start_worker(name, "train,sample")
    assert job["status"] == "succeeded", job["history"]
    page = stack.get(f"/v1/jobs/{job_id}/logs")
    attempts = page["attempts"]
    assert attempts[0] == 1 and attempts[-1] == job["attempts"] >= 2, attempts
    first, last = stack.log(job_id, 1), stack.log(job_id, attempts[-1])
    assert f"attempt 1, on worker {name}@" in first and "epoch 2/14 - " in first
    assert "[gentrain]" not in first.splitlines()[-1]  # killed: it never wrote its end
    assert f"attempt {attempts[-1]}, on worker" in last
    assert "resumed from the checkpoint of epoch" in last and f"epoch {KILL_EPOCHS}/14 - " in last
    assert last.endswith("[gentrain] succeeded\n")
    whole = stack.log(job_id)
    assert whole.startswith(first) and whole.endswith(last)


def worker_of(stack: Stack, job_id: str) -> str:
    """The name of the worker that holds the job (w1 or w2)."""
    with session_scope(stack.full.settings.database_url) as session:
        worker = session.scalar(select(Job.worker).where(Job.id == job_id))
    assert worker, f"job {job_id} has no worker"
    return str(worker).split("@", 1)[0]


def test_no_secret_is_in_any_stored_log(stack: Stack) -> None:
    trained = stack.submit("autoencoder", "mnist", epochs=1, max_train_images=512)
    assert stack.ended(trained)["status"] == "succeeded"
    response = stack.http.post(
        f"{stack.full.url}/v1/jobs/{trained}/samples", json={"params": {"count": 4}}, timeout=10
    )
    assert response.status_code == 202, response.text
    assert stack.ended(response.json()["id"])["status"] == "succeeded"
    jobs = stack.get("/v1/jobs", limit=500)["items"]
    logs = {job["id"]: stack.log(job["id"]) for job in jobs}
    assert len(logs) >= 2 and all(logs.values())
    settings = stack.full.settings
    secrets = [DB_PASSWORD, S3_KEY_ID, S3_SECRET, stack.key, stack.key[3:]]
    for job_id, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a secret in job {job_id}'s log"
        # What would carry them is there, masked: the log can show a leak.
        assert "database postgresql+psycopg://postgres:***@127.0.0.1:5432/" in text
        assert f"storage S3 {settings.s3_endpoint_url}, bucket {settings.s3_bucket}" in text
        assert "s3_access_key_id=***" in text and "s3_secret_access_key=***" in text
        assert "GENTRAIN_API_KEY=***" in text


def test_another_owners_event_stream_is_404(stack: Stack) -> None:
    """On the keyed stack: Alice's job's stream, with its log lines, is hers alone."""
    job_id = stack.submit("classifier", "unlabeled", epochs=1)
    stack.ended(job_id)
    _, bob = create_key(stack.full.settings.database_url, "bob")
    url = f"{stack.full.url}/v1/jobs/{job_id}/events?logs=1"
    as_bob = requests.get(url, headers={"Authorization": f"Bearer {bob}"}, timeout=10)
    assert as_bob.status_code == 404, as_bob.text
    assert requests.get(url, timeout=10).status_code == 401
    with stack.http.get(url, stream=True, timeout=(10, 60)) as mine:
        assert mine.status_code == 200
        events = list(parse_events(mine.iter_lines(decode_unicode=True)))
    logged = "".join(event.data["text"] for event in events if event.type == "log")
    assert "Traceback (most recent call last)" in logged
    assert events[-1].type == "status" and events[-1].data["status"] == "failed"
    bobs_list = requests.get(
        f"{stack.full.url}/v1/events",
        headers={"Authorization": f"Bearer {bob}"},
        stream=True,
        timeout=(10, 3),
    )
    assert bobs_list.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):  # read timeout: nothing of Alice's
        for line in bobs_list.iter_lines(decode_unicode=True):
            assert job_id not in line
    bobs_list.close()
