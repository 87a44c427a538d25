"""Scaling out: two training workers (as on two machines) share one queue, database and store.

Nothing but the broker, the database and S3 connects the processes, exactly as with workers on
separate machines or pods: the jobs submitted to one API spread over both workers, and every
one succeeds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from shared.job_state import TERMINAL_STATUSES
from tests.conftest import REDIS_URL
from tests.e2e.stack import FullStack

pytestmark = pytest.mark.e2e

WORKERS = ("wA", "wB")
JOBS = 4
PARAMS = {"epochs": 3, "max_train_images": 1024}
# Its own Redis database, so that it never shares a queue with the other e2e tests (db 11).
BROKER_URL = REDIS_URL.rsplit("/", 1)[0] + "/12"
TERMINAL = {str(status) for status in TERMINAL_STATUSES}
SUCCEEDED_LINE = re.compile(r"Task gentrain\.train_job\[[0-9a-f-]+\] succeeded")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[FullStack]:
    stack = FullStack(tmp_path_factory.mktemp("many_workers"), s3_endpoint, broker_url=BROKER_URL)
    try:
        stack.start("api", "api", "--workers", "1")
        for name in WORKERS:
            stack.start_worker(name)
        stack.wait_ready()
        yield stack
    finally:
        stack.close()


def wait_until(cluster: FullStack, what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check()`` until it is true; fail with every log after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in cluster.processes.values():
            if process.poll() is not None:
                pytest.fail(f"a process exited early while waiting for {what}\n{cluster.logs()}")
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"no {what} after {timeout} s\n{cluster.logs()}")


def test_jobs_spread_over_two_workers(cluster: FullStack, mnist_path: Path) -> None:
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
