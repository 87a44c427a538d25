"""Faults with real processes: a worker killed with SIGKILL, a worker sent SIGTERM, Redis
restarted, the API restarted — each job still succeeds, no epoch is trained twice, and its
metrics are complete and unduplicated."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from sqlalchemy import func, select

from shared.db.migrate import upgrade
from shared.db.models import Artifact, Metric
from shared.db.session import get_engine, session_scope
from shared.settings import Settings
from tests.conftest import PG_ADMIN_URL, free_port, settings_env
from tests.e2e.conftest import GENTRAIN, _start, _stop, _wait_ready
from tests.e2e.test_training_flow import upload_mnist

pytestmark = pytest.mark.e2e
EPOCHS = 14
LONG_JOB = {
    "kind": "autoencoder",
    "dataset": "mnist",
    "params": {"epochs": EPOCHS, "batch_size": 64},
}


class Stack:
    """PostgreSQL database, a private Redis, moto S3, and gentrain processes started on demand."""

    def __init__(self, root: Path, s3: str) -> None:
        self.root = root
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.db_name = f"gentrain_faults_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        self.settings = Settings(
            data_dir=root / "data",
            database_url=f"{base}/{self.db_name}",
            broker_url=f"redis://127.0.0.1:{self.redis_port}/0",
            s3_bucket=f"faults-{uuid.uuid4().hex[:10]}",
            s3_endpoint_url=s3,
            s3_access_key_id="test",
            s3_secret_access_key="test",
            api_port=free_port(),
            heartbeat_seconds=0.5,
            heartbeat_timeout_seconds=4,
            reaper_interval_seconds=0.5,
            requeue_after_seconds=2,
        )
        upgrade(self.settings.database_url)
        self.env = settings_env(self.settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.start_redis()

    @property
    def url(self) -> str:
        return self.settings.api_url

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=(self.root / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(100):
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True
                ).stdout.strip()
                == b"PONG"
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait()

    def start(self, name: str, *args: str) -> None:
        self.processes[name] = _start([*GENTRAIN, *args], self.env, self.root / f"{name}.log")

    def start_worker(self, name: str) -> None:
        self.start(name, "worker", "--queues", "train", "--name", name)

    def start_api(self) -> None:
        self.start("api", "api", "--workers", "1")
        _wait_ready(self.url, [self.processes["api"]], self.root)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.root.glob("*.log"))
        )

    def close(self) -> None:
        _stop(list(self.processes.values()))
        if self.redis and self.redis.poll() is None:
            self.kill_redis()
        get_engine(self.settings.database_url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


@pytest.fixture
def stack(tmp_path: Path, s3_endpoint: str, mnist_path: Path) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    stack = Stack(tmp_path, s3_endpoint)
    try:
        stack.start_api()
        stack.start("reaper", "reaper")
        upload_mnist(stack, mnist_path)  # type: ignore[arg-type]
        yield stack
    finally:
        stack.close()


def get(stack: Stack, path: str) -> Any:
    for _ in range(50):
        try:
            return requests.get(f"{stack.url}{path}", timeout=5).json()
        except requests.RequestException:
            time.sleep(0.2)  # the API may be restarting
    raise RuntimeError(f"GET {path} kept failing")


def submit(stack: Stack) -> str:
    response = requests.post(f"{stack.url}/v1/jobs", json=LONG_JOB, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_until(stack: Stack, job_id: str, ready: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(stack, f"/v1/jobs/{job_id}")
        if ready(job):
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    pytest.fail(f"job {job_id} never got there: {job['status']} {job['history']}\n{stack.logs()}")


def mid_training(job: dict[str, Any]) -> bool:
    latest = job.get("latest_metrics") or {}
    return job["status"] == "running" and 3 <= latest.get("step", 0) < EPOCHS - 3


def assert_trained_once(stack: Stack, job_id: str) -> dict[str, Any]:
    job = wait_until(stack, job_id, lambda j: j["status"] in ("succeeded", "failed", "cancelled"))
    assert job["status"] == "succeeded", f"{job['error']}\n{stack.logs()}"
    steps = [m["step"] for m in get(stack, f"/v1/jobs/{job_id}/metrics")["items"]]
    assert steps == list(range(1, EPOCHS + 1))
    with session_scope(stack.settings.database_url) as session:
        per_step = session.execute(
            select(Metric.step, func.count()).where(Metric.job_id == job_id).group_by(Metric.step)
        ).all()
    # One row per epoch across all attempts: no epoch was trained (and recorded) twice.
    assert sorted(per_step) == [(step, 1) for step in range(1, EPOCHS + 1)]
    return job


def test_worker_killed_with_sigkill_resumes_on_another(stack: Stack) -> None:
    stack.start_worker("w1")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    os.killpg(stack.processes["w1"].pid, signal.SIGKILL)  # the whole machine, say
    stack.processes["w1"].wait()
    stack.start_worker("w2")
    job = assert_trained_once(stack, job_id)
    statuses = [h["status"] for h in job["history"]]
    assert statuses == ["queued", "running", "queued", "running", "succeeded"]
    assert "worker lost" in (job["history"][2]["message"] or "")
    assert job["attempts"] == 2


def test_worker_sent_sigterm_hands_the_job_back(stack: Stack) -> None:
    stack.start_worker("w1")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    stack.processes["w1"].send_signal(signal.SIGTERM)
    assert stack.processes["w1"].wait(timeout=60) is not None  # exits within an epoch or so
    job = wait_until(stack, job_id, lambda j: j["status"] == "queued")
    assert "handed back" in (job["history"][-1]["message"] or "")
    stack.start_worker("w2")
    job = assert_trained_once(stack, job_id)
    assert job["attempts"] == 1  # a graceful hand-back is not a failed attempt


def test_redis_restarted_mid_job(stack: Stack) -> None:
    stack.start_worker("w1")
    first = submit(stack)
    wait_until(stack, first, mid_training)
    second = submit(stack)  # waits in Redis behind the first
    stack.kill_redis()  # no persistence: the queued message is gone
    time.sleep(1)
    stack.start_redis()
    assert_trained_once(stack, first)
    assert_trained_once(stack, second)


def test_api_restarted_mid_job(stack: Stack) -> None:
    stack.start_worker("w1")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    api = stack.processes.pop("api")
    os.killpg(api.pid, signal.SIGKILL)
    api.wait()
    stack.start_api()
    assert_trained_once(stack, job_id)


def test_a_frozen_worker_that_wakes_up_cannot_write_over_its_successor(stack: Stack) -> None:
    stack.start_worker("w1")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    os.killpg(stack.processes["w1"].pid, signal.SIGSTOP)  # frozen, not dead
    try:
        job = wait_until(stack, job_id, lambda j: j["attempts"] == 1 and j["status"] == "queued")
        stack.start_worker("w2")
        job = wait_until(stack, job_id, lambda j: j["status"] == "running" and j["attempts"] == 2)
    finally:
        os.killpg(stack.processes["w1"].pid, signal.SIGCONT)
    job = assert_trained_once(stack, job_id)
    time.sleep(3)  # let the woken worker try its writes
    job = get(stack, f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded"
    with session_scope(stack.settings.database_url) as session:
        keys = session.scalars(select(Artifact.storage_key).where(Artifact.job_id == job_id)).all()
    assert keys and all("/attempt-2/" in key for key in keys), keys
    assert_trained_once(stack, job_id)
