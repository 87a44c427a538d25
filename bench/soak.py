#!/usr/bin/env python
"""Soak test of gentrain's reliability on the full stack, with real processes and real faults.

Run from the repository root::

    .venv/bin/python bench/soak.py [--jobs 20] [--clients 4] [--seed 1]

It starts, on loopback only, the same stack as ``tests/e2e/test_faults.py`` (``FullStack``: a fresh
PostgreSQL database, a private ``redis-server``, a moto S3 server, short heartbeat settings), the
API, the reaper and two training workers, then:

* ``--clients`` threads submit ``--jobs`` short autoencoder jobs between them (a few longer ones,
  so that some are running long enough to be cancelled); half carry an ``Idempotency-Key`` that
  the client sends once more (a few of those replays race the first request from a second
  thread) and must get the same job id back;
* about a quarter of the jobs are cancelled at random moments, some while queued, some while
  running;
* one training worker's process group gets SIGKILL once mid-run, while it trains a job; a
  replacement worker is started.

Once every job is terminal (or a bounded timeout passes) it checks every job: terminal status;
a legal path through the state machine (``shared.job_state.check_transition``, from ``queued``);
a cancel in the story of every cancelled job (and no job that was not cancelled ends cancelled);
a "worker lost" re-queue in the history of the job the killed worker held; for succeeded jobs,
exactly one metrics row per epoch across all attempts and a downloadable ``model.keras``; no
epoch recorded twice in any job; no artifact or metric written after its job ended; no job lost
(every id exists, and the jobs table holds exactly the unique ids submitted). It prints a
summary and exits 1 if any check failed (2 on a setup error, 3 when stopped by SIGTERM).

``--freeze N`` (opt-in, off by default) adds N probe jobs at the end whose worker is frozen with
SIGSTOP for longer than the heartbeat timeout and then resumed (a hung, not dead, worker).

Everything it started (processes, Redis, the moto server, the database) is stopped or dropped
even on failure or SIGTERM/Ctrl-C; the log folder is kept on failure (its path is printed) or
with ``--keep-logs``. Every loop is bounded in count and in time: the default run takes 1-3
minutes on 2 cores, and at most about 6 (``--timeout`` 270 s for the jobs, plus start and stop).
See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from shared.db.models import Artifact, Job, Metric  # noqa: E402
from shared.db.session import session_scope  # noqa: E402
from shared.job_state import TERMINAL_STATUSES, IllegalTransition, JobStatus, check_transition  # noqa: E402
from tests.conftest import FIXTURES, PG_ADMIN_URL, free_port  # noqa: E402

TERMINAL = {status.value for status in TERMINAL_STATUSES}
DATASET = FIXTURES / "mnist_5k.npz"
TRAIN_IMAGES = 1024
SHORT_EPOCHS = 6
LONG_EPOCHS = 15
HTTP_TIMEOUT = 10.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# The plan: what each job is and what is done to it, drawn from --seed before anything runs.


@dataclass
class PlannedJob:
    index: int
    client: int
    epochs: int
    batch_size: int
    key: str | None = None
    replay: str = "none"  # none | later | race
    replay_delay: float = 0.0
    cancel: str = "none"  # none | queued | running
    cancel_delay: float = 0.0  # queued: seconds after submission
    cancel_at_step: int = 0  # running: cancel once this many epochs are recorded
    # What happened.
    job_id: str | None = None
    submitted_at: float | None = None
    submit_errors: list[str] = field(default_factory=list)
    replay_ids: list[str] = field(default_factory=list)
    replay_status: list[int] = field(default_factory=list)
    cancel_sent: bool = False
    cancel_http: int | None = None
    cancel_seen: str | None = None  # the job's status in the cancel response
    cancel_skipped: str | None = None  # why a planned cancel was not sent
    throttled: int = 0  # 429 answers (submission rate limit) before the job was accepted

    def body(self) -> dict[str, Any]:
        return {
            "kind": "autoencoder",
            "dataset": "mnist",
            "params": {
                "epochs": self.epochs,
                "max_train_images": TRAIN_IMAGES,
                "batch_size": self.batch_size,
                "seed": self.index,
            },
        }


def make_plan(jobs: int, clients: int, seed: int) -> list[PlannedJob]:
    rng = random.Random(seed)
    plan = []
    for index in range(jobs):
        plan.append(PlannedJob(index, index % clients, SHORT_EPOCHS, 128))
    indices = list(range(jobs))
    long_ones = rng.sample(indices, max(1, round(jobs * 0.3)))
    for index in long_ones:
        plan[index].epochs = LONG_EPOCHS
        plan[index].batch_size = 64  # longer epochs: a running cancel has time to land
    keyed = rng.sample(indices, jobs // 2)
    run_tag = uuid.uuid4().hex[:8]
    for n, index in enumerate(keyed):
        job = plan[index]
        job.key = f"soak-{run_tag}-{index}"
        # About a quarter of the replays race the first request; the rest come later.
        job.replay = "race" if n % 4 == 0 else "later"
        job.replay_delay = rng.uniform(0.5, 25.0)
    n_cancel = max(1, round(jobs * 0.25))
    n_running = min(len(long_ones), math.ceil(n_cancel / 2))
    running = rng.sample(long_ones, n_running)
    short_ones = [i for i in indices if i not in long_ones]
    queued = rng.sample(short_ones, min(len(short_ones), n_cancel - n_running))
    for index in running:
        plan[index].cancel = "running"
        plan[index].cancel_at_step = rng.randint(1, LONG_EPOCHS - 6)
    for index in queued:
        plan[index].cancel = "queued"
        plan[index].cancel_delay = rng.uniform(0.0, 1.5)
    return plan


# --------------------------------------------------------------------------------------------
# HTTP helpers (each thread has its own requests.Session).


def post_job(http: requests.Session, url: str, job: PlannedJob) -> tuple[int, str | None]:
    headers = {"Idempotency-Key": job.key} if job.key else {}
    response = http.post(f"{url}/v1/jobs", json=job.body(), headers=headers, timeout=HTTP_TIMEOUT)
    job_id = response.json().get("id") if response.status_code == 202 else None
    return response.status_code, job_id


def get_json(http: requests.Session, url: str, path: str, tries: int = 20) -> Any:
    last: Exception | None = None
    for _ in range(tries):
        try:
            response = http.get(f"{url}{path}", timeout=HTTP_TIMEOUT)
            if response.status_code == 200:
                return response.json()
            last = RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
        except requests.RequestException as error:
            last = error
        time.sleep(0.2)
    raise RuntimeError(f"GET {path} kept failing: {last}")


# --------------------------------------------------------------------------------------------
# The clients.


class Client(threading.Thread):
    """Submits its share of the plan, replays idempotent submissions, sends its cancels."""

    def __init__(
        self,
        number: int,
        url: str,
        jobs: list[PlannedJob],
        seed: int,
        deadline: float,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.url = url
        self.jobs = jobs
        self.rng = random.Random(seed * 1000 + number)
        self.deadline = deadline
        self.stop = stop
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            self.errors.append(f"{self.name}: {type(error).__name__}: {error}")

    def _submit(self, http: requests.Session, job: PlannedJob) -> None:
        """Submit, retrying errors (3 times) and 429s (waiting, until the deadline)."""
        errors = 0
        for _ in range(100):
            if errors >= 3 or self.stop.is_set() or time.monotonic() > self.deadline:
                return
            try:
                if job.replay == "race":
                    statuses = self._submit_racing(job)
                else:
                    status, job_id = post_job(http, self.url, job)
                    statuses = [status]
                    if status == 202:
                        job.job_id = job_id
            except requests.RequestException as error:
                statuses = [-1]
                job.submit_errors.append(f"{type(error).__name__}: {error}")
            if job.job_id:
                job.submitted_at = time.monotonic()
                return
            if 429 in statuses:
                job.throttled += 1  # the submission rate limit: wait and try again
                time.sleep(3.0)
                continue
            errors += 1
            job.submit_errors.append(f"HTTP {statuses}")
            time.sleep(0.5)

    def _submit_racing(self, job: PlannedJob) -> list[int]:
        """The first request and its replay at once, from two threads (same Idempotency-Key)."""
        barrier = threading.Barrier(2, timeout=10)
        answers: list[tuple[int, str | None]] = [(0, None), (0, None)]

        def send(slot: int) -> None:
            with requests.Session() as http:
                try:
                    barrier.wait()
                    answers[slot] = post_job(http, self.url, job)
                except (requests.RequestException, threading.BrokenBarrierError) as error:
                    answers[slot] = (-1, f"{type(error).__name__}: {error}")

        threads = [threading.Thread(target=send, args=(slot,), daemon=True) for slot in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        (first_status, first_id), (second_status, second_id) = answers
        for (status, job_id), (other_status, other_id) in (answers, answers[::-1]):
            if status == 202:
                job.job_id = job_id
                if other_status == 429:
                    # The rate limit answered the twin before it saw the key: a plain replay
                    # follows later instead (counted in the summary as throttled).
                    job.throttled += 1
                else:
                    job.replay_status.append(other_status)
                    job.replay_ids.append(str(other_id))
                break
        return [first_status, second_status]

    def _replay(self, http: requests.Session, job: PlannedJob) -> None:
        try:
            status, job_id = post_job(http, self.url, job)
        except requests.RequestException as error:
            status, job_id = -1, f"{type(error).__name__}: {error}"
        job.replay_status.append(status)
        job.replay_ids.append(str(job_id))
        if status == 429:  # a replay must be answered from the key, before any rate limit
            job.throttled += 1

    def _cancel(self, http: requests.Session, job: PlannedJob) -> None:
        try:
            response = http.post(f"{self.url}/v1/jobs/{job.job_id}/cancel", timeout=HTTP_TIMEOUT)
        except requests.RequestException as error:
            job.cancel_skipped = f"cancel request failed: {error}"
            return
        job.cancel_sent = True
        job.cancel_http = response.status_code
        if response.status_code == 202:
            job.cancel_seen = response.json().get("status")
        else:
            job.cancel_seen = f"HTTP {response.status_code}"

    def _run(self) -> None:
        pending: list[tuple[str, PlannedJob]] = []
        with requests.Session() as http:
            for job in self.jobs:
                if self.stop.is_set() or time.monotonic() > self.deadline:
                    return
                time.sleep(self.rng.uniform(0.0, 1.5))
                self._submit(http, job)
                if not job.job_id:
                    continue
                if job.replay == "later" or (job.replay == "race" and not job.replay_ids):
                    pending.append(("replay", job))
                if job.cancel != "none":
                    pending.append(("cancel", job))
                self._due(http, pending)
            # Replays and cancels not yet due: check them a few times a second, bounded.
            while pending and not self.stop.is_set() and time.monotonic() < self.deadline:
                self._due(http, pending)
                time.sleep(0.25)
            for _action, job in pending:
                if _action == "cancel":
                    job.cancel_skipped = "deadline passed before the cancel was due"

    def _due(self, http: requests.Session, pending: list[tuple[str, PlannedJob]]) -> None:
        now = time.monotonic()
        for item in list(pending):
            action, job = item
            assert job.submitted_at is not None
            if action == "replay":
                if now - job.submitted_at >= job.replay_delay:
                    self._replay(http, job)
                    pending.remove(item)
            elif job.cancel == "queued":
                if now - job.submitted_at >= job.cancel_delay:
                    self._cancel(http, job)
                    pending.remove(item)
            else:  # cancel once the job has recorded cancel_at_step epochs
                view = get_json(http, self.url, f"/v1/jobs/{job.job_id}")
                step = (view.get("latest_metrics") or {}).get("step", 0)
                if view["status"] in TERMINAL:
                    job.cancel_skipped = f"job was already {view['status']} (step {step})"
                    pending.remove(item)
                elif view["status"] == "running" and step >= job.cancel_at_step:
                    time.sleep(self.rng.uniform(0.0, 0.6))  # a random moment inside the epoch
                    self._cancel(http, job)
                    pending.remove(item)


# --------------------------------------------------------------------------------------------
# The stack.


def wait_for_log(path: Path, needle: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"{path.stem} exited early:\n{path.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.3)
    raise RuntimeError(f"{path.stem} did not log {needle!r} within {timeout:.0f} s")


def start_worker(stack: Any, name: str, timeout: float = 180) -> None:
    stack.start_worker(name)
    wait_for_log(stack.root / f"{name}.log", " ready.", stack.processes[name], timeout)


@dataclass
class Kill:
    worker: str = ""
    at: float | None = None  # seconds since the first submission
    at_utc: datetime | None = None
    held: list[str] = field(default_factory=list)  # jobs it held (running/cancelling) at the kill
    held_steps: dict[str, int] = field(default_factory=dict)
    note: str = ""
    replacement_ready_s: float | None = None


def running_on(stack: Any, prefix: str) -> list[tuple[str, str, int, int]]:
    """(job id, status, epochs recorded, epochs planned) of the jobs a worker holds now."""
    with session_scope(stack.settings.database_url) as session:
        rows = session.execute(
            select(Job.id, Job.status, Job.params).where(
                Job.worker.like(f"{prefix}@%"),
                Job.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value]),
            )
        ).all()
        out = []
        for job_id, status, params in rows:
            steps = session.scalar(
                select(func.count(func.distinct(Metric.step))).where(Metric.job_id == job_id)
            )
            out.append((job_id, status, int(steps or 0), int(params.get("epochs", 0))))
    return out


def kill_one_worker(
    stack: Any, started: float, not_before: float, timeout: float, stop: threading.Event
) -> Kill:
    """SIGKILL the process group of a worker that is mid-way through a job; start another."""
    kill = Kill()
    deadline = time.monotonic() + timeout
    target = None
    while time.monotonic() < deadline and not stop.is_set():
        if time.monotonic() - started >= not_before:
            for name in ("w1", "w2"):
                for _job_id, status, steps, epochs in running_on(stack, name):
                    if status == "running" and 2 <= steps <= epochs - 2:
                        target = name
                        break
                if target:
                    break
            if target:
                break
        time.sleep(0.2)
    if target is None:
        target = "w1"
        kill.note = "no worker was mid-job before the deadline; killed w1 anyway"
    process = stack.processes[target]
    os.killpg(process.pid, signal.SIGKILL)
    kill.at_utc = datetime.now(UTC)
    process.wait(timeout=30)
    kill.worker = target
    kill.at = round(time.monotonic() - started, 1)
    for job_id, _status, steps, _epochs in running_on(stack, target):
        kill.held.append(job_id)
        kill.held_steps[job_id] = steps
    log(f"SIGKILL to worker {target} at +{kill.at} s, holding {kill.held_steps or 'no job'}")
    t0 = time.monotonic()
    start_worker(stack, "w3")
    kill.replacement_ready_s = round(time.monotonic() - t0, 1)
    log(f"replacement worker w3 ready after {kill.replacement_ready_s} s")
    return kill


@dataclass
class Freeze:
    worker: str = ""
    job_id: str = ""
    step: int = 0  # epochs recorded when it froze
    seconds: float = 0.0
    note: str = ""


def freeze_probe(stack: Any, plan: list[PlannedJob], trial: int, stop: threading.Event) -> Freeze:
    """Opt-in fault (--freeze): a worker that stops answering but is not dead.

    Submits one probe job while the workers are idle, waits until it has recorded 3 epochs, then
    sends SIGSTOP to its worker's process group near the end of the next epoch and SIGCONT after
    heartbeat_timeout + 4 s: the reaper re-queues the job, an idle worker resumes it from the
    checkpoint, and then the frozen worker wakes up mid-epoch, still believing it holds the job.
    """
    freeze = Freeze(seconds=stack.settings.heartbeat_timeout_seconds + 4)
    job = PlannedJob(len(plan), -1, 12, 64, replay="none")
    plan.append(job)
    with requests.Session() as http:
        status, job_id = post_job(http, stack.url, job)
        if status != 202 or not job_id:
            freeze.note = f"probe not accepted: HTTP {status}"
            return freeze
        job.job_id, job.submitted_at = job_id, time.monotonic()
        freeze.job_id = job_id
        deadline = time.monotonic() + 90
        last_step, seen_at, epoch_s, holder = 0, 0.0, 0.0, ""
        while time.monotonic() < deadline and not stop.is_set():
            with session_scope(stack.settings.database_url) as session:
                worker = session.scalar(select(Job.worker).where(Job.id == job_id)) or ""
                row = session.execute(
                    select(Metric.step, Metric.seconds)
                    .where(Metric.job_id == job_id)
                    .order_by(Metric.step.desc())
                    .limit(1)
                ).first()
            if row is not None and row.step != last_step:
                last_step, seen_at, epoch_s, holder = (
                    row.step,
                    time.monotonic(),
                    row.seconds,
                    worker,
                )
                if last_step >= 3:
                    break
            time.sleep(0.03)
        name = holder.split("@")[0]
        if last_step < 3 or name not in stack.processes:
            freeze.note = f"probe never reached epoch 3 on a known worker ({holder!r})"
            return freeze
        time.sleep(max(0.0, seen_at + 0.85 * (epoch_s or 0.1) - time.monotonic()))
        group = stack.processes[name].pid
        os.killpg(group, signal.SIGSTOP)
        try:
            freeze.worker, freeze.step = name, last_step
            log(f"freeze {trial}: SIGSTOP to {name}, probe {job_id[:8]} after epoch {last_step}")
            time.sleep(freeze.seconds)
        finally:
            os.killpg(group, signal.SIGCONT)
        while time.monotonic() < deadline + 60 and not stop.is_set():
            if get_json(http, stack.url, f"/v1/jobs/{job_id}")["status"] in TERMINAL:
                break
            time.sleep(0.3)
    time.sleep(2.0)  # the woken worker's last writes, if any
    return freeze


# --------------------------------------------------------------------------------------------
# The checks.


def parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def check_everything(
    stack: Any,
    plan: list[PlannedJob],
    kill: Kill,
    freezes: list[Freeze],
    views: dict[str, Any],
    metrics_steps: dict[str, list[int]],
) -> tuple[list[str], dict[str, Any]]:
    violations: list[str] = []
    figures: dict[str, Any] = {}
    submitted = [job for job in plan if job.job_id]
    ids = {str(job.job_id) for job in submitted}
    for job in plan:
        if not job.job_id:
            violations.append(f"job #{job.index}: never accepted ({'; '.join(job.submit_errors)})")

    # No job lost, none invented.
    with session_scope(stack.settings.database_url) as session:
        db_ids = set(session.scalars(select(Job.id)))
        per_step = session.execute(
            select(Metric.job_id, Metric.step, func.count()).group_by(Metric.job_id, Metric.step)
        ).all()
        artifact_rows = session.execute(
            select(Artifact.job_id, Artifact.name, Artifact.size_bytes, Artifact.created_at)
        ).all()
        last_metric_at = dict(
            session.execute(
                select(Metric.job_id, func.max(Metric.at)).group_by(Metric.job_id)
            ).all()
        )
    artifacts = {(row.job_id, row.name): row.size_bytes for row in artifact_rows}
    written_at: dict[str, list[tuple[str, datetime]]] = {}
    for row in artifact_rows:
        written_at.setdefault(row.job_id, []).append((row.name, row.created_at))
    if len(db_ids) != len(ids):
        violations.append(f"{len(db_ids)} jobs in the database but {len(ids)} unique ids submitted")
    for job_id in sorted(ids - db_ids):
        violations.append(f"job {job_id}: submitted but not in the database (lost)")
    for job_id in sorted(db_ids - ids):
        violations.append(f"job {job_id}: in the database but never handed to a client")
    rows_per_step: dict[str, Counter[int]] = {}
    for job_id, step, count in per_step:
        rows_per_step.setdefault(job_id, Counter())[step] = count

    # Idempotent replays: the same id back.
    replays_ok = 0
    replays_total = 0
    for job in submitted:
        for status, other in zip(job.replay_status, job.replay_ids, strict=True):
            replays_total += 1
            if status == 202 and other == job.job_id:
                replays_ok += 1
            else:
                violations.append(
                    f"job {job.job_id} (#{job.index}, key {job.key}, {job.replay}): replay got "
                    f"HTTP {status} and id {other}"
                )
        if job.replay != "none" and not job.replay_ids:
            violations.append(f"job {job.job_id} (#{job.index}): its replay was never sent")

    delays = []
    worker_lost_jobs = []
    frozen = {freeze.job_id for freeze in freezes if freeze.worker}
    recovery: dict[str, dict[str, float | None]] = {}
    for job in submitted:
        job_id = str(job.job_id)
        view = views.get(job_id)
        tag = f"job {job_id} (#{job.index}, {job.epochs} epochs)"
        if view is None:
            violations.append(f"{tag}: GET /v1/jobs/<id> failed")
            continue
        status = view["status"]
        history = view["history"]
        statuses = [entry["status"] for entry in history]
        if status not in TERMINAL:
            violations.append(f"{tag}: not terminal: {status}; history {statuses}")
        # A legal path through the state machine, from queued, ending at the job's status.
        if not statuses or statuses[0] != JobStatus.QUEUED.value:
            violations.append(f"{tag}: history does not start at queued: {statuses}")
        for before, after in zip(statuses, statuses[1:], strict=False):
            try:
                check_transition(JobStatus(before), JobStatus(after))
            except (IllegalTransition, ValueError) as error:
                violations.append(
                    f"{tag}: illegal transition {before} -> {after} ({error}) in {statuses}"
                )
        if statuses and statuses[-1] != status:
            violations.append(f"{tag}: status {status} but history ends at {statuses[-1]}")
        # Cancels.
        if status == JobStatus.CANCELLED.value:
            if not job.cancel_sent:
                violations.append(f"{tag}: cancelled but no cancel was sent; history {statuses}")
            if not {"cancelling", "cancelled"} & set(statuses):
                violations.append(f"{tag}: cancelled without cancelling/cancelled in history")
        if job.cancel_http == 202 and status != JobStatus.CANCELLED.value:
            violations.append(
                f"{tag}: cancel accepted (202, saw {job.cancel_seen}) but ended {status}; "
                f"history {statuses}"
            )
        # Worker lost.
        lost = [e for e in history if "worker lost" in (e.get("message") or "")]
        if lost:
            worker_lost_jobs.append(job_id)
        if lost and job_id in kill.held and kill.at_utc is not None:
            position = history.index(lost[0])
            again = [e for e in history[position + 1 :] if e["status"] == "running"]
            recovery[job_id] = {
                "lost_after_s": round((parse_at(lost[0]["at"]) - kill.at_utc).total_seconds(), 1),
                "running_again_after_s": round(
                    (parse_at(again[0]["at"]) - kill.at_utc).total_seconds(), 1
                )
                if again
                else None,
            }
        if job_id in kill.held and not lost:
            violations.append(
                f"{tag}: held by the killed worker but no 'worker lost' in history {statuses}"
            )
        if job_id in frozen and not lost:
            violations.append(
                f"{tag}: its worker was frozen past the heartbeat timeout but no 'worker lost' "
                f"in history {statuses}"
            )
        # Epochs: never recorded twice, never beyond the plan.
        counts = rows_per_step.get(job_id, Counter())
        twice = sorted(step for step, n in counts.items() if n > 1)
        if twice:
            violations.append(f"{tag}: epochs recorded more than once: {twice}")
        beyond = sorted(step for step in counts if not 1 <= step <= job.epochs)
        if beyond:
            violations.append(f"{tag}: metrics for steps outside 1..{job.epochs}: {beyond}")
        if status == JobStatus.SUCCEEDED.value:
            expected = list(range(1, job.epochs + 1))
            if sorted(counts.items()) != [(step, 1) for step in expected]:
                violations.append(
                    f"{tag}: succeeded but metrics rows per step are {sorted(counts.items())}"
                )
            if metrics_steps.get(job_id) != expected:
                violations.append(
                    f"{tag}: /metrics steps {metrics_steps.get(job_id)} != {expected}"
                )
            size = artifacts.get((job_id, "model.keras"))
            if not size:
                violations.append(f"{tag}: succeeded without a model.keras artifact")
            elif view.get("model_download") not in (size, None):
                violations.append(
                    f"{tag}: model.keras is {size} bytes in the database but the download gave "
                    f"{view.get('model_download')}"
                )
        # Nothing is written for a job after it ended: a later write comes from a worker that
        # lost the job (presumed dead) and kept going.
        if status in TERMINAL and history:
            ended = parse_at(history[-1]["at"])
            late = [
                f"{name} (+{(at - ended).total_seconds():.3f} s)"
                for name, at in written_at.get(job_id, [])
                if at > ended
            ]
            metric_at = last_metric_at.get(job_id)
            if metric_at is not None and metric_at > ended:
                late.append(f"a metrics row (+{(metric_at - ended).total_seconds():.3f} s)")
            if late:
                violations.append(f"{tag}: written after it became {status}: {', '.join(late)}")
        if status == JobStatus.CANCELLED.value and counts:
            # Whatever was trained before the cancel is contiguous from epoch 1.
            steps = sorted(counts)
            if steps != list(range(1, len(steps) + 1)):
                violations.append(f"{tag}: cancelled with non-contiguous epochs {steps}")
        # Queue -> running delay (first time it ran).
        runs = [e for e in history if e["status"] == "running"]
        if history and runs:
            delays.append((parse_at(runs[0]["at"]) - parse_at(history[0]["at"])).total_seconds())

    spurious = [j for j in worker_lost_jobs if j not in kill.held and j not in frozen]
    figures.update(
        {
            "by_status": dict(Counter(views[j]["status"] for j in views)),
            "replays_verified": replays_ok,
            "replays_sent": replays_total,
            "requeued_after_kill": len([j for j in worker_lost_jobs if j in kill.held]),
            "worker_lost_jobs": worker_lost_jobs,
            "spurious_worker_lost": spurious,
            "recovery_after_kill": recovery,
            "throttled_429": sum(job.throttled for job in plan),
            "max_queue_to_running_s": round(max(delays), 2) if delays else None,
            "median_queue_to_running_s": round(statistics.median(delays), 2) if delays else None,
            "jobs_in_db": len(db_ids),
            "unique_ids_submitted": len(ids),
        }
    )
    return violations, figures


def download_models(url: str, views: dict[str, Any]) -> None:
    """Fetch each succeeded job's model.keras through the API (streamed, no redirect)."""
    with requests.Session() as http:
        for view in views.values():
            if view["status"] != "succeeded":
                continue
            try:
                response = http.get(
                    f"{url}/v1/jobs/{view['id']}/artifacts/model.keras",
                    params={"redirect": "0"},
                    timeout=30,
                )
                view["model_download"] = (
                    len(response.content) if response.status_code == 200 else -response.status_code
                )
            except requests.RequestException:
                view["model_download"] = -1


# --------------------------------------------------------------------------------------------
# The run.


def print_summary(
    plan: list[PlannedJob],
    views: dict[str, Any],
    figures: dict[str, Any],
    kill: Kill,
    freezes: list[Freeze],
    violations: list[str],
    wall: float,
    args: argparse.Namespace,
) -> None:
    print()
    print(f"## soak: {args.jobs} jobs, {args.clients} clients, seed {args.seed}")
    print()
    print(
        "| # | job | epochs | key | cancel plan | cancel sent (saw) | final | attempts | history |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for job in plan:
        view = views.get(str(job.job_id), {})
        history = " → ".join(e["status"] for e in view.get("history", []))
        sent = (
            f"{job.cancel_http} ({job.cancel_seen})"
            if job.cancel_sent
            else (job.cancel_skipped or "-")
        )
        key = job.replay if job.key else "-"
        print(
            f"| {job.index} | {str(job.job_id)[:8]} | {job.epochs} | {key} | {job.cancel} | "
            f"{sent} | {view.get('status', '?')} | {view.get('attempts', '?')} | {history} |"
        )
    cancels = [job for job in plan if job.cancel_sent]
    seen = Counter(job.cancel_seen for job in cancels)
    print()
    print("| figure | value |")
    print("| --- | --- |")
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(figures.get("by_status", {}).items()))
    print(f"| jobs by final status | {by_status} |")
    print(
        f"| jobs submitted / in the database | {figures.get('unique_ids_submitted')} / "
        f"{figures.get('jobs_in_db')} |"
    )
    print(
        f"| cancels sent | {len(cancels)} (job was queued: {seen.get('cancelled', 0)}, running: "
        f"{seen.get('cancelling', 0)}, already finished: "
        f"{sum(v for k, v in seen.items() if k not in ('cancelled', 'cancelling'))}) |"
    )
    print(
        f"| SIGKILL | worker {kill.worker} at +{kill.at} s, holding "
        f"{', '.join(f'{j[:8]} (epoch {s})' for j, s in kill.held_steps.items()) or 'no job'}; "
        f"replacement ready in {kill.replacement_ready_s} s {kill.note} |"
    )
    print(f"| re-queues after the kill (worker lost) | {figures.get('requeued_after_kill')} |")
    recovery = "; ".join(
        f"{job_id[:8]}: re-queued +{r['lost_after_s']} s, "
        f"running again +{r['running_again_after_s']} s"
        for job_id, r in figures.get("recovery_after_kill", {}).items()
    )
    print(f"| recovery of the killed worker's job (from the kill) | {recovery or '-'} |")
    print(
        "| other 'worker lost' events (spurious) | "
        f"{len(figures.get('spurious_worker_lost', []))} |"
    )
    print(
        f"| idempotent replays verified | {figures.get('replays_verified')} of "
        f"{figures.get('replays_sent')} |"
    )
    print(
        f"| queue → running delay | max {figures.get('max_queue_to_running_s')} s, "
        f"median {figures.get('median_queue_to_running_s')} s |"
    )
    for n, freeze in enumerate(freezes):
        print(
            f"| freeze probe {n} | {freeze.job_id[:8]} on {freeze.worker or '-'} after epoch "
            f"{freeze.step}, SIGSTOP {freeze.seconds:.0f} s; ended "
            f"{views.get(freeze.job_id, {}).get('status', '?')} {freeze.note} |"
        )
    print(f"| 429 answers (submission rate limit) | {figures.get('throttled_429')} |")
    print(f"| total wall time | {wall:.0f} s |")
    print(f"| violations | {len(violations)} |")
    if violations:
        print()
        print("Violations:")
        for violation in violations:
            print(f"- {violation}")


def run(args: argparse.Namespace, workdir: Path) -> int:
    from moto.server import ThreadedMotoServer

    from tests.e2e.stack import FAST_FAULTS, FullStack
    from tests.e2e.test_training_flow import upload_mnist

    t_start = time.monotonic()
    plan = make_plan(args.jobs, args.clients, args.seed)
    stop = threading.Event()
    kill = Kill()
    freezes: list[Freeze] = []
    views: dict[str, Any] = {}
    metrics_steps: dict[str, list[int]] = {}
    violations: list[str] = []
    figures: dict[str, Any] = {}
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    moto.start()
    stack = None
    try:
        stack = FullStack(workdir, f"http://127.0.0.1:{moto_port}", **FAST_FAULTS)
        log(
            f"stack: database {stack.db_name}, redis :{stack.redis_port}, S3 :{moto_port}, "
            f"logs {workdir}"
        )
        stack.start_api()
        stack.start("reaper", "reaper")
        upload_mnist(stack, DATASET)  # type: ignore[arg-type]
        for name in ("w1", "w2"):
            stack.start_worker(name)
        for name in ("w1", "w2"):
            wait_for_log(stack.root / f"{name}.log", " ready.", stack.processes[name], 180)
        log(f"API, reaper and workers w1, w2 up after {time.monotonic() - t_start:.0f} s")

        started = time.monotonic()
        deadline = started + args.timeout
        clients = [
            Client(
                n, stack.url, [job for job in plan if job.client == n], args.seed, deadline, stop
            )
            for n in range(args.clients)
        ]
        for client in clients:
            client.start()
        try:
            kill = kill_one_worker(
                stack, started, args.kill_after, timeout=min(120, args.timeout), stop=stop
            )
        except Exception as error:  # noqa: BLE001 - recorded; the checks go on
            violations.append(f"fault injection failed: {type(error).__name__}: {error}")
        for client in clients:
            client.join(timeout=max(1.0, deadline - time.monotonic()))
            if client.is_alive():
                violations.append(f"{client.name} still running at the deadline")
            violations.extend(client.errors)
        log(f"clients done after {time.monotonic() - started:.0f} s; waiting for terminal states")

        ids = [str(job.job_id) for job in plan if job.job_id]
        left = ids
        with requests.Session() as http:
            while time.monotonic() < deadline:
                listing = get_json(http, stack.url, "/v1/jobs?limit=500")["items"]
                status = {item["id"]: item["status"] for item in listing}
                left = [job_id for job_id in ids if status.get(job_id) not in TERMINAL]
                if not left:
                    break
                time.sleep(1.0)
            else:
                violations.append(
                    f"timeout: {len(left)} job(s) not terminal after {args.timeout} s"
                )
            log(
                f"all terminal after {time.monotonic() - started:.0f} s" if not left else "deadline"
            )
            for trial in range(args.freeze):
                if left:
                    break
                freezes.append(freeze_probe(stack, plan, trial, stop))
            ids = [str(job.job_id) for job in plan if job.job_id]
            stop.set()
            for job_id in ids:
                try:
                    views[job_id] = get_json(http, stack.url, f"/v1/jobs/{job_id}")
                    items = get_json(http, stack.url, f"/v1/jobs/{job_id}/metrics")["items"]
                    metrics_steps[job_id] = [item["step"] for item in items]
                except RuntimeError as error:
                    violations.append(f"job {job_id}: {error}")
        download_models(stack.url, views)
        found, figures = check_everything(stack, plan, kill, freezes, views, metrics_steps)
        violations.extend(found)
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        if stack is not None:
            try:
                stack.close()
            except Exception as error:  # noqa: BLE001 - the rest still gets cleaned up
                log(f"cleanup of the stack failed: {error}")
        moto.stop()
    wall = time.monotonic() - t_start
    print_summary(plan, views, figures, kill, freezes, violations, wall, args)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "wall_seconds": round(wall, 1),
                    "figures": figures,
                    "kill": asdict(kill),
                    "freezes": [asdict(freeze) for freeze in freezes],
                    "violations": violations,
                    "jobs": [asdict(job) for job in plan],
                    "views": views,
                },
                indent=2,
                default=str,
            )
        )
    return 1 if violations else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs submitted in total")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--seed", type=int, default=1, help="seed of the plan and the timings")
    parser.add_argument(
        "--timeout",
        type=float,
        default=270,
        help="seconds from the first submission until every job must be terminal",
    )
    parser.add_argument(
        "--kill-after",
        type=float,
        default=10,
        help="earliest moment (s after the first submission) of the SIGKILL",
    )
    parser.add_argument(
        "--freeze",
        type=int,
        default=0,
        help="opt-in: after the soak, this many probe jobs whose worker is frozen (SIGSTOP) "
        "past the heartbeat timeout, then resumed (SIGCONT)",
    )
    parser.add_argument("--json", help="write the raw figures and every job's view here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the log folder")
    args = parser.parse_args()
    if not 1 <= args.jobs <= 200 or not 1 <= args.clients <= 32:
        parser.error("--jobs must be 1-200 and --clients 1-32")
    if shutil.which("redis-server") is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        print(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {error}", file=sys.stderr)
        return 2

    def on_term(_signum: int, _frame: object) -> None:
        raise SystemExit(3)  # unwinds through the finally blocks: everything is stopped

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="gentrain-soak-"))
    code = 2
    try:
        code = run(args, workdir)
    except Exception as error:  # noqa: BLE001
        log(f"soak aborted: {type(error).__name__}: {error}")
        code = 2
    finally:
        if code == 0 and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
