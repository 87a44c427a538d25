"""Driving a sweep: tell Optuna how ended trials did, ask for the next ones and create them as
ordinary jobs (through ``shared.jobs``), at most ``parallel`` queued or running at a time.

Every pass reads its state from the database, so any process may drive: the API right after a
sweep is created, a worker when a trial ends, and the reaper on each pass (so the death of any
one of them does not stop a sweep). Two drivers of one sweep are kept apart by a lock held for
the whole pass: the sweep's row (``FOR NO KEY UPDATE``, which lets new jobs reference it) on
PostgreSQL, a lock file next to the database on SQLite (whose one write lock Optuna's own
connection needs meanwhile).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import Job, Sweep, new_id, utcnow
from shared.db.session import session_scope
from shared.job_specs import SpecError, check_params
from shared.job_state import TERMINAL_STATUSES, IllegalTransition, JobStatus
from shared.jobs import NewJob, create_job, mark_enqueued, request_cancel
from shared.kinds import KIND_SPECS
from shared.queue import TRAIN_TASK, enqueue
from shared.sweeps.spec import SweepSpec

log = logging.getLogger(__name__)
TERMINAL = {status.value for status in TERMINAL_STATUSES}
PRUNED_PREFIX = "pruned by the sweep's pruner"


@dataclass(frozen=True)
class TrialJob:
    """What a driver needs of one trial's job."""

    id: str
    status: str
    trial: int | None
    results: dict[str, Any]
    error: str | None


def _sqlite_lock_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///") + ".sweeps.lock")


@dataclass
class HeldSweep:
    """A sweep under its drivers' lock: a snapshot of its row, and a way to write it."""

    sweep: Sweep
    session: Session | None  # PostgreSQL: the session holding the row (writes go through it)
    database_url: str

    def set(self, **values: datetime) -> None:
        """Write columns of the sweep's row."""
        statement = update(Sweep).where(Sweep.id == self.sweep.id).values(**values)
        if self.session is not None:
            self.session.execute(statement)
            return
        with session_scope(self.database_url) as session:
            session.execute(statement)


@contextmanager
def sweep_locked(database_url: str, sweep_id: str) -> Iterator[HeldSweep | None]:
    """The sweep, with its other drivers kept out until the block ends (None: no such sweep)."""
    if database_url.startswith("sqlite"):
        path = _sqlite_lock_path(database_url)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            with session_scope(database_url) as session:
                sweep = session.get(Sweep, sweep_id)
            yield HeldSweep(sweep, None, database_url) if sweep is not None else None
        return
    with session_scope(database_url) as session:
        sweep = session.get(
            Sweep, sweep_id, populate_existing=True, with_for_update={"key_share": True}
        )
        yield HeldSweep(sweep, session, database_url) if sweep is not None else None


def create_sweep(
    session: Session, spec: SweepSpec, owner: str, dataset_id: str, priority: int
) -> str:
    """Store a validated sweep (its study and trials come with the first drive); its id."""
    sweep_id = new_id()
    sweep = Sweep(
        id=sweep_id,
        study_name=f"gentrain-sweep-{sweep_id}",
        owner=owner,
        kind=spec.kind,
        dataset_id=dataset_id,
        params=spec.params,
        space=spec.space,
        sampler=spec.sampler,
        pruner=spec.pruner,
        trials=spec.trials,
        parallel=spec.parallel,
        metric=spec.metric,
        direction=spec.direction,
        seed=spec.seed,
        priority=priority,
    )
    session.add(sweep)
    session.flush()
    return sweep_id


def trial_jobs(session: Session, sweep_id: str) -> list[TrialJob]:
    """The sweep's trials' jobs, oldest first."""
    rows = session.execute(
        select(Job.id, Job.status, Job.sweep_trial, Job.results, Job.error)
        .where(Job.sweep_id == sweep_id)
        .order_by(Job.created_at, Job.id)
    ).all()
    return [TrialJob(r.id, r.status, r.sweep_trial, r.results or {}, r.error) for r in rows]


def _tell_ended(study: Any, sweep: Sweep, jobs: list[TrialJob]) -> None:
    """Tell Optuna the outcome of every ended trial it still thinks is running; fail the trials
    asked for by a driver that died before their job was committed."""
    import optuna

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    running = optuna.trial.TrialState.RUNNING
    with_jobs = {job.trial for job in jobs}
    for job in jobs:
        trial = trials.get(job.trial) if job.trial is not None else None
        if trial is None or trial.state != running or job.status not in TERMINAL:
            continue
        value = job.results.get(sweep.metric)
        if job.status == JobStatus.SUCCEEDED.value and isinstance(value, int | float):
            study.tell(job.trial, float(value))
        elif job.status == JobStatus.CANCELLED.value and "pruned_at" in trial.user_attrs:
            study.tell(job.trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(job.trial, state=optuna.trial.TrialState.FAIL)
    for number, trial in trials.items():
        if trial.state == running and number not in with_jobs:
            log.warning("sweep %s: trial %d has no job (its driver died); failed", sweep.id, number)
            study.tell(number, state=optuna.trial.TrialState.FAIL)


def _next_trial(database_url: str, sweep: Sweep, asked: int) -> tuple[int, dict[str, Any]] | None:
    """Ask Optuna for the next trial: its number and the job's params; None (the trial failed)
    when the point breaks a cross-parameter rule of the kind."""
    from shared.sweeps.study import distributions, load_study

    study = load_study(database_url, sweep, asked)
    trial = study.ask(distributions(sweep.space))
    try:
        params = check_params({**sweep.params, **trial.params}, KIND_SPECS[sweep.kind].params)
    except SpecError as error:
        import optuna

        log.warning("sweep %s: trial %d is invalid: %s", sweep.id, trial.number, error.message)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        return None
    return trial.number, params


def drive_sweep(database_url: str, sweep_id: str) -> list[str]:
    """One pass over a sweep; the ids of the jobs it created (the caller sends them to the
    queue; a job whose id never reaches it is sent by the reaper)."""
    from shared.sweeps.study import load_study

    created: list[str] = []
    with sweep_locked(database_url, sweep_id) as held:
        if held is None or held.sweep.finished_at is not None:
            return []
        sweep = held.sweep
        with session_scope(database_url) as session:
            jobs = trial_jobs(session, sweep_id)
        study = load_study(database_url, sweep)
        _tell_ended(study, sweep, jobs)
        asked = len(study.get_trials(deepcopy=False))
        active = sum(job.status not in TERMINAL for job in jobs)
        while sweep.cancelled_at is None and active < sweep.parallel and asked < sweep.trials:
            nxt = _next_trial(database_url, sweep, asked)
            asked += 1
            if nxt is None:
                continue
            number, params = nxt
            new = NewJob(
                sweep.kind,
                sweep.kind,
                sweep.owner,
                params,
                sweep.dataset_id,
                priority=sweep.priority,
                sweep_id=sweep.id,
                sweep_trial=number,
            )
            with session_scope(database_url) as session:
                created.append(create_job(session, new))
            active += 1
        ended = sweep.cancelled_at is not None or asked >= sweep.trials
        if active == 0 and ended:
            held.set(finished_at=utcnow())
    return created


def open_sweeps(database_url: str) -> list[str]:
    """Sweeps not yet finished, oldest first."""
    with session_scope(database_url) as session:
        query = select(Sweep.id).where(Sweep.finished_at.is_(None)).order_by(Sweep.created_at)
        return list(session.scalars(query))


def drive_open_sweeps(database_url: str, send: Callable[[str], None]) -> list[str]:
    """Drive every open sweep once and send the jobs created; their ids. A sweep that fails to
    drive (the database hiccups) is left for the next pass."""
    sent: list[str] = []
    for sweep_id in open_sweeps(database_url):
        try:
            created = drive_sweep(database_url, sweep_id)
        except Exception:  # noqa: BLE001 - the next pass (or trial end) tries again
            log.warning("cannot drive sweep %s; will retry", sweep_id, exc_info=True)
            continue
        for job_id in created:
            send(job_id)
        sent.extend(created)
    return sent


def queue_sender(app: Celery, database_url: str) -> Callable[[str], None]:
    """Send a trial's job to the queue and note it (a broker down: the reaper sends it later)."""

    def send(job_id: str) -> None:
        try:
            enqueue(app, TRAIN_TASK, job_id)
        except Exception:  # noqa: BLE001 - any broker failure
            log.warning("cannot send trial %s; the reaper will", job_id, exc_info=True)
            return
        with session_scope(database_url) as session:
            mark_enqueued(session, job_id)

    return send


def drive_all(app: Celery, database_url: str) -> list[str]:
    """Drive every open sweep once, sending the trials created (the reaper's pass and a worker
    after each job); never raises, the next pass tries again."""
    try:
        return drive_open_sweeps(database_url, queue_sender(app, database_url))
    except Exception:  # noqa: BLE001 - the database hiccups
        log.warning("cannot drive the sweeps; will retry", exc_info=True)
        return []


def cancel_sweep(database_url: str, sweep_id: str) -> list[str]:
    """Cancel a sweep: no trial is asked for any more, and every queued or running trial is
    cancelled (a running one at its next epoch); the ids of the trials cancelled."""
    cancelled: list[str] = []
    with sweep_locked(database_url, sweep_id) as held:
        if held is None:
            raise LookupError(sweep_id)
        if held.sweep.cancelled_at is None:
            held.set(cancelled_at=utcnow())
        with session_scope(database_url) as session:
            jobs = trial_jobs(session, sweep_id)
        for job in jobs:
            if job.status in TERMINAL:
                continue
            with session_scope(database_url) as session:
                try:
                    request_cancel(session, job.id)
                except (LookupError, IllegalTransition):
                    continue  # ended meanwhile
            cancelled.append(job.id)
    return cancelled
