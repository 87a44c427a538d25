"""Creating, claiming, cancelling, draining and reaping jobs (see ``shared.jobs``)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.models import Job, utcnow
from shared.job_state import IllegalTransition, JobStatus
from shared.jobs.changes import (
    HELD_STATUSES,
    ChangeType,
    append_change,
    locked,
    set_status,
    write_lock,
)
from shared.kinds import SAMPLE_KIND


@dataclass(frozen=True)
class NewJob:
    """What a job is created from (validated by the caller)."""

    kind: str
    model_kind: str
    owner: str
    params: dict[str, Any]
    dataset_id: str | None = None
    parent_id: str | None = None
    idempotency_key: str | None = None
    priority: int = 5
    # A trial of a sweep (issue 15): the sweep and the number of its Optuna trial.
    sweep_id: str | None = None
    sweep_trial: int | None = None


def create_jobs(session: Session, jobs: Sequence[NewJob]) -> list[str]:
    """Create queued jobs (all in the caller's transaction); their ids, in order."""
    rows = [
        Job(
            kind=new.kind,
            model_kind=new.model_kind,
            owner=new.owner,
            params=new.params,
            dataset_id=new.dataset_id,
            parent_id=new.parent_id,
            idempotency_key=new.idempotency_key,
            priority=new.priority,
            sweep_id=new.sweep_id,
            sweep_trial=new.sweep_trial,
            status=JobStatus.QUEUED.value,
        )
        for new in jobs
    ]
    session.add_all(rows)
    session.flush()
    for row in rows:
        payload = {
            "kind": row.kind,
            "model_kind": row.model_kind,
            "parent_id": row.parent_id,
            "priority": row.priority,
        }
        append_change(session, row.id, ChangeType.STATUS, status=JobStatus.QUEUED, payload=payload)
    return [row.id for row in rows]


def create_job(session: Session, new: NewJob) -> str:
    """Create one queued job; its id."""
    return create_jobs(session, [new])[0]


def mark_enqueued(session: Session, job_id: str) -> None:
    """Note that a queued job's id was just put on the queue (not a change users see)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(enqueued_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def claim(session: Session, job_id: str, worker: str = "") -> Job | None:
    """Atomically move a queued job to running under a fresh lease; None if it is not queued."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            started_at=func.coalesce(Job.started_at, now),
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            updated_at=now,
            worker=worker[:255],
            lease=uuid.uuid4().hex,
            drain_requested=False,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    payload = {"attempt": job.attempts, "worker": job.worker}
    append_change(session, job_id, ChangeType.STATUS, status=JobStatus.RUNNING, payload=payload)
    return job


def queue_order() -> tuple[Any, ...]:
    """The order workers take queued jobs in: highest priority first, then the oldest (a job
    re-queued after a lost worker or a drain keeps its creation time, so its place)."""
    return (Job.priority.desc(), Job.created_at, Job.id)


def claim_next(session: Session, sampling: bool, worker: str = "") -> Job | None:
    """Claim the first queued job in queue order, sampling jobs or training jobs; None if none.

    A queue message is a wake-up, not an order: whichever job's id it carries, the worker runs
    the job that is first in line, so priorities hold on any broker (see README, *Priorities*).
    """
    is_sample = Job.kind == SAMPLE_KIND
    first = (
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED.value, is_sample if sampling else ~is_sample)
        .order_by(*queue_order())
        .limit(1)
    )
    # Another worker's candidate is skipped, not waited for (PostgreSQL; SQLite takes the
    # database's write lock first, so claims there are one at a time).
    skipping = first.with_for_update(skip_locked=True)
    # But when every queued job is locked (a reaper's pass, a cancel, other claims), the first
    # is waited for: giving up would drop this wake-up and leave a job queued with none.
    waiting = first.with_for_update()
    write_lock(session)
    for _ in range(10):  # lost races only: each failed claim means another worker took one
        job_id = session.scalar(skipping)
        if job_id is None:
            job_id = session.scalar(waiting)
            if job_id is None:
                if session.scalar(first) is None:
                    return None
                continue  # the one waited for was taken meanwhile: look again
        job = claim(session, job_id, worker)
        if job is not None:
            return job
    return None


def request_cancel(session: Session, job_id: str, reason: str | None = None) -> JobStatus:
    """Cancel a job: a queued one at once, a running one at its next epoch; the new status.
    ``reason``: why, when not the user's asking (a sweep's pruner).

    Raises LookupError for no such job and IllegalTransition for one that has ended."""
    job = locked(session, job_id)
    if job is None:
        raise LookupError(job_id)
    status = JobStatus(job.status)
    if status is JobStatus.QUEUED:
        set_status(session, job, JobStatus.CANCELLED, reason or "cancelled before it started")
    elif status is JobStatus.RUNNING:
        set_status(session, job, JobStatus.CANCELLING, reason or "cancel requested")
    elif status.is_terminal():
        raise IllegalTransition(status, JobStatus.CANCELLED)
    return JobStatus(job.status)


def request_drain(session: Session, worker: str) -> int:
    """Ask the jobs a shutting-down worker runs to stop at their next epoch; returns how many."""
    result = session.execute(
        update(Job)
        .where(Job.worker == worker, Job.status == JobStatus.RUNNING.value)
        .values(drain_requested=True)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


class Reaped(enum.StrEnum):
    """What the reaper did with a job whose worker stopped beating."""

    REQUEUED = "requeued"
    FAILED = "failed"
    CANCELLED = "cancelled"


def stale_jobs(session: Session, stale_before: Any) -> Sequence[Job]:
    """Running or cancelling jobs with no heartbeat since ``stale_before``, locked (others'
    locked rows are skipped: their worker is writing, so it is alive)."""
    write_lock(session)
    return session.scalars(
        select(Job)
        .where(Job.status.in_(HELD_STATUSES), Job.heartbeat_at < stale_before)
        .with_for_update(skip_locked=True)
    ).all()


def reap(session: Session, job: Job, max_attempts: int) -> Reaped:
    """End or re-queue a locked job whose worker is presumed dead; its lease is cleared."""
    if job.status == JobStatus.CANCELLING.value:
        set_status(session, job, JobStatus.CANCELLED, "worker lost while cancelling")
        return Reaped.CANCELLED
    if job.attempts >= max_attempts:
        message = f"worker lost {job.attempts} times (max_attempts {max_attempts})"
        set_status(session, job, JobStatus.FAILED, message)
        return Reaped.FAILED
    set_status(session, job, JobStatus.QUEUED, "worker lost (no heartbeat); re-queued")
    return Reaped.REQUEUED


def unsent_jobs(session: Session, sent_before: Any) -> Sequence[Job]:
    """Queued jobs never put on the queue, or last put there before ``sent_before``, locked."""
    return session.scalars(
        select(Job)
        .where(
            Job.status == JobStatus.QUEUED.value,
            (Job.enqueued_at.is_(None)) | (Job.enqueued_at < sent_before),
        )
        .with_for_update(skip_locked=True)
    ).all()
