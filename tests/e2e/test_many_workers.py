"""Scaling out: two training workers (as on two machines) share one queue, database and store.

Nothing but the broker, the database and S3 connects the processes, exactly as with workers on
separate machines or pods: the jobs submitted to one API spread over both workers, and every
one succeeds.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests
from sqlalchemy import select

from shared.db.migrate import upgrade
from shared.settings import Settings
from tests.conftest import PG_ADMIN_URL, REDIS_URL, free_port, settings_env
from tests.e2e.conftest import GENTRAIN, _start, _stop, _wait_ready

pytestmark = pytest.mark.e2e

WORKERS = ("wA", "wB")
JOBS = 4
PARAMS = {"epochs": 3, "max_train_images": 1024}
# Its own Redis database, so that it never shares a queue with the other e2e tests (db 11).
BROKER_URL = REDIS_URL.rsplit("/", 1)[0] + "/12"
TERMINAL = {"succeeded", "failed", "cancelled"}
SUCCEEDED_LINE = re.compile(r"Task gentrain\.train_job\[[0-9a-f-]+\] succeeded")


@dataclass
class Cluster:
    """One API and two training workers on the full stack."""

    url: str
    settings: Settings
    log_dir: Path
    processes: list[subprocess.Popen[bytes]]

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("many_workers")
    name = f"gentrain_e2e_many_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    settings = Settings(
        data_dir=root / "data",
        database_url=PG_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+psycopg://"
        )
        + f"/{name}",
        broker_url=BROKER_URL,
        s3_bucket=f"e2e-many-{uuid.uuid4().hex[:10]}",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        api_port=free_port(),
    )
    upgrade(settings.database_url)
    env = settings_env(settings)
    processes = [
        _start([*GENTRAIN, "api", "--workers", "1"], env, root / "api.log"),
        *(
            _start([*GENTRAIN, "worker", "--queues", "train", "--name", w], env, root / f"{w}.log")
            for w in WORKERS
        ),
    ]
    try:
        _wait_ready(settings.api_url, processes, root)
        yield Cluster(settings.api_url, settings, root, processes)
    finally:
        _stop(processes)
        broker.flushdb()
        from shared.db.session import get_engine

        get_engine(settings.database_url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until(cluster: Cluster, what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check()`` until it is true; fail with every log after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in cluster.processes:
            if process.poll() is not None:
                pytest.fail(f"a process exited early while waiting for {what}\n{cluster.logs()}")
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"no {what} after {timeout} s\n{cluster.logs()}")


def test_jobs_spread_over_two_workers(cluster: Cluster, mnist_path: Path) -> None:
    started = time.monotonic()
    # Both workers must be consuming before the jobs go out, or the first could take them all.
    wait_until(
        cluster,
        "ready workers",
        lambda: all(re.search(rf"{w}@\S+ ready\.", cluster.log(w)) is not None for w in WORKERS),
        timeout=60,
    )
    with mnist_path.open("rb") as handle:
        response = requests.post(
            f"{cluster.url}/v1/datasets",
            files={"file": ("mnist.npz", handle)},
            data={"name": "mnist"},
            timeout=30,
        )
    assert response.status_code == 201, response.text

    ids = []
    for _ in range(JOBS):
        response = requests.post(
            f"{cluster.url}/v1/jobs",
            json={"kind": "autoencoder", "dataset": "mnist", "params": PARAMS},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    jobs: dict[str, dict[str, Any]] = {}

    def all_finished() -> bool:
        for job_id in ids:
            jobs[job_id] = requests.get(f"{cluster.url}/v1/jobs/{job_id}", timeout=10).json()
        return all(job["status"] in TERMINAL for job in jobs.values())

    wait_until(cluster, "end of all jobs", all_finished, timeout=150)
    failed = {i: (j["status"], j["error"]) for i, j in jobs.items() if j["status"] != "succeeded"}
    assert not failed, f"{failed}\n{cluster.logs()}"

    # Evidence 1, the workers' own logs: each ran (at least) one training task to its end.
    succeeded = {w: len(SUCCEEDED_LINE.findall(cluster.log(w))) for w in WORKERS}
    assert all(succeeded.values()), f"tasks succeeded per worker: {succeeded}\n{cluster.logs()}"
    assert sum(succeeded.values()) == JOBS, succeeded

    # Evidence 2, the database: the worker that claimed each job (Celery hostname NAME@host).
    from shared.db.models import Job
    from shared.db.session import session_scope

    with session_scope(cluster.settings.database_url) as session:
        claimed = dict(session.execute(select(Job.id, Job.worker).where(Job.id.in_(ids))).all())
    names = {str(worker).split("@", 1)[0] for worker in claimed.values()}
    assert names == set(WORKERS), f"jobs by worker: {claimed}"
    print(f"\n{JOBS} jobs by worker: {claimed}; {time.monotonic() - started:.1f} s")
