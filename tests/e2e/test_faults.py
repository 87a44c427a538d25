"""Faults with real processes: a worker killed with SIGKILL, a worker sent SIGTERM, Redis
restarted, the API restarted — each job still succeeds, no epoch is trained twice, and its
metrics are complete and unduplicated."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from shared.db.models import Artifact, Job, JobEvent, Metric
from shared.db.session import session_scope
from shared.job_state import TERMINAL_STATUSES
from tests.e2e.stack import FAST_FAULTS, GENTRAIN, FullStack
from tests.e2e.test_training_flow import upload_mnist
from tests.workers.tensorboard_events import read_run

pytestmark = pytest.mark.e2e
TERMINAL = {str(status) for status in TERMINAL_STATUSES}
EPOCHS = 14
LONG_JOB: dict[str, Any] = {
    "kind": "autoencoder",
    "dataset": "mnist",
    "params": {"epochs": EPOCHS, "batch_size": 64},
}


def make_stack(root: Path, s3: str, mnist_path: Path, **overrides: Any) -> FullStack:
    """A private Redis (tests kill it), short heartbeats, the API, the reaper and MNIST."""
    stack = FullStack(root, s3, **{**FAST_FAULTS, **overrides})
    try:
        stack.start_api()
        stack.start("reaper", "reaper")
        upload_mnist(stack, mnist_path)  # type: ignore[arg-type]
    except BaseException:
        stack.close()
        raise
    return stack


@pytest.fixture
def stack(tmp_path: Path, s3_endpoint: str, mnist_path: Path) -> Iterator[FullStack]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    stack = make_stack(tmp_path, s3_endpoint, mnist_path)
    try:
        yield stack
    finally:
        stack.close()


def get(stack: FullStack, path: str) -> Any:
    for _ in range(50):
        try:
            return requests.get(f"{stack.url}{path}", timeout=5).json()
        except requests.RequestException:
            time.sleep(0.2)  # the API may be restarting
    raise RuntimeError(f"GET {path} kept failing")


def submit(stack: FullStack, epochs: int = EPOCHS) -> str:
    job = {**LONG_JOB, "params": {**LONG_JOB["params"], "epochs": epochs}}
    response = requests.post(f"{stack.url}/v1/jobs", json=job, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_until(stack: FullStack, job_id: str, ready: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(stack, f"/v1/jobs/{job_id}")
        if ready(job):
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    pytest.fail(f"job {job_id} never got there: {job['status']} {job['history']}\n{stack.logs()}")


def mid_training(job: dict[str, Any], epochs: int = EPOCHS) -> bool:
    latest = job.get("latest_metrics") or {}
    return job["status"] == "running" and 3 <= latest.get("step", 0) < epochs - 3


def start_workers(stack: FullStack, *names: str) -> None:
    """Training workers, each consuming (ready) before this returns."""
    for name in names:
        stack.start_worker(name)
    for name in names:
        logged_at(stack, name, "", " ready.")


def worker_of(stack: FullStack, job_id: str) -> str:
    """The name of the worker that holds (or last held) the job."""
    with session_scope(stack.settings.database_url) as session:
        worker = session.scalar(select(Job.worker).where(Job.id == job_id))
    assert worker, f"job {job_id} has no worker"
    return str(worker).split("@", 1)[0]


def assert_trained_once(stack: FullStack, job_id: str) -> dict[str, Any]:
    job = wait_until(stack, job_id, lambda j: j["status"] in TERMINAL)
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


def assert_sound_history(job: dict[str, Any]) -> None:
    """What must hold however many times a loaded machine made a worker miss its heartbeats:
    queued first, succeeded last, every run preceded by a queued, one attempt per run but for
    graceful hand-backs (a worker shutting down), which are not failed attempts."""
    statuses = [h["status"] for h in job["history"]]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded", statuses
    runs = [i for i, status in enumerate(statuses) if status == "running"]
    assert all(statuses[i - 1] == "queued" for i in runs), statuses
    handed_back = sum("handed back" in (h["message"] or "") for h in job["history"])
    assert job["attempts"] == len(runs) - handed_back, (job["attempts"], job["history"])


def test_worker_killed_with_sigkill_resumes_on_another(stack: FullStack) -> None:
    start_workers(stack, "w1", "w2")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    killed = stack.processes[worker_of(stack, job_id)]
    os.killpg(killed.pid, signal.SIGKILL)  # the whole machine, say
    killed.wait()
    job = assert_trained_once(stack, job_id)
    assert_sound_history(job)
    lost = [h for h in job["history"] if "worker lost" in (h["message"] or "")]
    assert lost and lost[-1]["status"] == "queued" and job["attempts"] >= 2
    # Each attempt's TensorBoard file; read together they hold every epoch (the killed one's
    # last checkpointed epoch may be there twice: its successor writes the epoch it resumed from).
    with tempfile.TemporaryDirectory() as logdir:
        command = [*GENTRAIN, "tensorboard", job_id, "--logdir", logdir, "--api-url", stack.url]
        done = subprocess.run(command, env=stack.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        [run] = Path(logdir).iterdir()
        assert len(list(run.iterdir())) >= 2  # one per attempt
        steps = read_run(run).steps("loss")
    assert sorted(set(steps)) == list(range(1, EPOCHS + 1)), steps


def test_worker_sent_sigterm_hands_the_job_back(stack: FullStack) -> None:
    start_workers(stack, "w1", "w2")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    stopping = stack.processes[worker_of(stack, job_id)]
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(timeout=60) is not None  # exits within an epoch or so
    job = assert_trained_once(stack, job_id)  # the other worker took it over
    assert_sound_history(job)
    handed = [h for h in job["history"] if "handed back" in (h["message"] or "")]
    assert handed and handed[0]["status"] == "queued", job["history"]
    assert not any("retrying" in (h["message"] or "") for h in job["history"])


def test_redis_restarted_mid_job(stack: FullStack) -> None:
    stack.start_worker("w1")
    first = submit(stack)
    wait_until(stack, first, mid_training)
    second = submit(stack)  # waits in Redis behind the first
    stack.kill_redis()  # no persistence: the queued message is gone
    time.sleep(1)
    stack.start_redis()
    assert_trained_once(stack, first)
    assert_trained_once(stack, second)


def test_api_restarted_mid_job(stack: FullStack) -> None:
    stack.start_worker("w1")
    job_id = submit(stack)
    wait_until(stack, job_id, mid_training)
    api = stack.processes.pop("api")
    os.killpg(api.pid, signal.SIGKILL)
    api.wait()
    stack.start_api()
    assert_trained_once(stack, job_id)


def test_a_frozen_worker_that_wakes_up_cannot_write_over_its_successor(stack: FullStack) -> None:
    start_workers(stack, "w1", "w2")
    job_id = submit(stack)
    frozen_at = wait_until(stack, job_id, mid_training)["attempts"]
    frozen = worker_of(stack, job_id)
    os.killpg(stack.processes[frozen].pid, signal.SIGSTOP)  # frozen, not dead
    try:
        # The reaper re-queues the job and the other worker takes it over.
        wait_until(stack, job_id, lambda j: j["status"] == "running" and j["attempts"] > frozen_at)
    finally:
        os.killpg(stack.processes[frozen].pid, signal.SIGCONT)
    assert_trained_once(stack, job_id)
    logged_at(stack, frozen, job_id, RUN_OVER_LINE)  # the woken worker's run is over
    job = get(stack, f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded"
    assert_sound_history(job)
    with session_scope(stack.settings.database_url) as session:
        rows = session.execute(
            select(Artifact.name, Artifact.storage_key).where(Artifact.job_id == job_id)
        ).all()
    final = f"attempt-{job['attempts']}"
    assert rows
    for name, key in rows:
        # Every artifact is the final attempt's, but each attempt's own TensorBoard file.
        own = re.search(r"\.(attempt-\d+)\.", name) if name.startswith("tensorboard/") else None
        assert f"/{own[1] if own else final}/" in key, rows
    assert_trained_once(stack, job_id)


# --- a worker frozen while its job ends -----------------------------------------------------

STOP_LINE = "is no longer running under this worker's lease; stopping"
RUN_OVER_LINE = "ended or moved to another worker; this run stops"
# Long enough that a loaded machine's poll cannot miss the middle of the job.
FROZEN_EPOCHS = 40


def job_writes(stack: FullStack, job_id: str) -> dict[str, Any]:
    """Everything written about a job: its row's outcome, metrics, artifacts, change log."""
    with session_scope(stack.settings.database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return {
            "status": job.status,
            "error": job.error,
            "results": job.results,
            "lease": job.lease,
            "metrics": session.scalars(select(Metric.id).where(Metric.job_id == job_id)).all(),
            "artifacts": session.execute(
                select(Artifact.name, Artifact.storage_key, Artifact.created_at).where(
                    Artifact.job_id == job_id
                )
            ).all(),
            "log": session.scalars(select(JobEvent.id).where(JobEvent.job_id == job_id)).all(),
        }


def logged_at(stack: FullStack, worker: str, job_id: str, text: str, timeout: float = 60) -> float:
    """When (epoch seconds) the worker logged ``text`` about the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stack.log(worker).splitlines():
            if job_id in line and text in line:
                stamp = line[1 : line.index(": ")]  # [2026-11-30 21:40:01,123: WARNING/...]
                return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        time.sleep(0.1)
    pytest.fail(f"worker {worker} never logged {text!r} for job {job_id}\n{stack.logs()}")


@pytest.fixture
def capped(tmp_path: Path, s3_endpoint: str, mnist_path: Path) -> Iterator[FullStack]:
    """A stack where one lost worker ends a job: max_attempts 1."""
    stack = make_stack(tmp_path, s3_endpoint, mnist_path, max_attempts=1)
    try:
        yield stack
    finally:
        stack.close()


def test_a_worker_frozen_while_its_job_ends_writes_nothing_after_waking(
    capped: FullStack,
) -> None:
    # Two workers, each frozen mid-job: w1's job is at its attempt cap, so the reaper fails it;
    # w2's job is cancelled while w2 is frozen, so the reaper cancels it.
    start_workers(capped, "w1", "w2")
    workers: dict[str, str] = {}
    try:
        for _ in range(2):
            # Each job goes to a worker not frozen yet, which is frozen mid-job.
            job_id = submit(capped, FROZEN_EPOCHS)
            wait_until(capped, job_id, lambda j: mid_training(j, FROZEN_EPOCHS))
            name = worker_of(capped, job_id)
            workers[name] = job_id
            os.killpg(capped.processes[name].pid, signal.SIGSTOP)  # frozen, not dead
        failing, cancelled = workers.values()
        # A worker frozen inside a transaction holds its job's row until PostgreSQL ends the
        # idle transaction (15 s): the cancel waits for it.
        response = requests.post(f"{capped.url}/v1/jobs/{cancelled}/cancel", timeout=60)
        assert response.json()["status"] == "cancelling", response.text
        wait_until(capped, failing, lambda j: j["status"] == "failed", timeout=120)
        wait_until(capped, cancelled, lambda j: j["status"] == "cancelled", timeout=120)
        ended = {job_id: job_writes(capped, job_id) for job_id in workers.values()}
    finally:
        woke = time.time()
        for name in workers:
            os.killpg(capped.processes[name].pid, signal.SIGCONT)
    for name, job_id in workers.items():
        # It stops at once, and its run is over: nothing it does later can write.
        delay = logged_at(capped, name, job_id, STOP_LINE) - woke
        logged_at(capped, name, job_id, RUN_OVER_LINE)
        print(f"\n{name} stopped {delay:.3f} s after waking")
        assert delay < 5, f"{name} stopped {delay:.1f} s after waking\n{capped.logs()}"
        end = ended[job_id]
        assert end["lease"] is None and end["results"] == {}
        assert job_writes(capped, job_id) == end
    failed = get(capped, f"/v1/jobs/{failing}")
    assert failed["status"] == "failed" and failed["error"] == ended[failing]["error"]
    assert "worker lost" in failed["error"]
    gone = get(capped, f"/v1/jobs/{cancelled}")
    assert gone["status"] == "cancelled"
    assert gone["history"][-1]["message"] == "worker lost while cancelling"
