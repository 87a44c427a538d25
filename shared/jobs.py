"""The one owner of a job's life: creation, claims, every status change and every write of a
job's row, metrics and artifacts, each recorded in the change log in the same transaction.

Nothing else writes a job (``tests/test_lifecycle_ownership.py`` checks the source). The rules:

- A terminal status is never left, and reaching one clears the lease: a worker that was frozen
  while its job ended finds, on waking, that the job is no longer running under its lease.
- A running job's writes (progress, metrics, artifacts, results) name the lease they were made
  under and are refused with ``JobGone`` unless the job is still running (or cancelling) under it.
- Every change appends one ``JobEvent`` (status, progress, metrics, artifact, log) in the
  transaction that makes it, after locking the job's row (a new job's row is its creator's
  until commit). So one job's entries commit in id order, and a reader of one job that resumes
  after an id misses nothing. Across jobs, ids may commit out of order by the length of a
  transaction (no global lock: a worker frozen inside one would stall every writer); a reader of
  every job's entries must allow for that (issue 11's event stream).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.models import Artifact, Job, JobEvent, Metric, utcnow
from shared.job_state import IllegalTransition, JobStatus, check_transition
from shared.storage import StoredObject

HELD_STATUSES = (JobStatus.RUNNING.value, JobStatus.CANCELLING.value)


class ChangeType(enum.StrEnum):
    """What a change-log entry records."""

    STATUS = "status"
    PROGRESS = "progress"
    METRICS = "metrics"
    ARTIFACT = "artifact"
    LOG = "log"


class JobGone(Exception):
    """The job is no longer running under this lease (ended, re-queued, taken over): a worker
    holding that lease must stop and write nothing more."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} is no longer running under this lease")
        self.job_id = job_id


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


def _append(
    session: Session,
    job_id: str,
    change: ChangeType,
    *,
    status: JobStatus | None = None,
    message: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the change log, in the caller's transaction (which holds the row)."""
    session.add(
        JobEvent(
            job_id=job_id,
            type=change.value,
            status=status.value if status else None,
            message=message,
            payload=payload,
            at=utcnow(),
        )
    )
    session.flush()


def _set_status(session: Session, job: Job, target: JobStatus, message: str | None) -> None:
    """Move a locked ``job`` to ``target`` (raises IllegalTransition) and log it."""
    check_transition(JobStatus(job.status), target)
    now = utcnow()
    job.status = target.value
    job.updated_at = now
    if target is JobStatus.RUNNING:
        job.started_at = job.started_at or now
        job.heartbeat_at = now
    if target is JobStatus.QUEUED:
        job.lease = None
        job.worker = None
        job.drain_requested = False
        job.enqueued_at = None
    if target.is_terminal():
        job.finished_at = now
        job.eta_seconds = None
        job.lease = None  # whoever held it may write nothing more
        job.drain_requested = False
    if target is JobStatus.FAILED:
        job.error = message
    payload: dict[str, Any] = {"attempt": job.attempts}
    if target is JobStatus.SUCCEEDED:
        payload["results"] = job.results
    _append(session, job.id, ChangeType.STATUS, status=target, message=message, payload=payload)


def _locked(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id, populate_existing=True, with_for_update=True)


def _held(session: Session, job_id: str, lease: str) -> Job:
    """The job, locked, if it is running (or cancelling) under ``lease``; else JobGone."""
    job = _locked(session, job_id)
    if job is None or job.lease != lease or job.status not in HELD_STATUSES:
        raise JobGone(job_id)
    return job


# --- creation and the queue ---------------------------------------------------------------


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
            status=JobStatus.QUEUED.value,
        )
        for new in jobs
    ]
    session.add_all(rows)
    session.flush()
    for row in rows:
        payload = {"kind": row.kind, "model_kind": row.model_kind, "parent_id": row.parent_id}
        _append(session, row.id, ChangeType.STATUS, status=JobStatus.QUEUED, payload=payload)
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
    _append(session, job_id, ChangeType.STATUS, status=JobStatus.RUNNING, payload=payload)
    return job


# --- what users and operators ask -------------------------------------------------------------


def request_cancel(session: Session, job_id: str) -> JobStatus:
    """Cancel a job: a queued one at once, a running one at its next epoch; the new status.

    Raises LookupError for no such job and IllegalTransition for one that has ended."""
    job = _locked(session, job_id)
    if job is None:
        raise LookupError(job_id)
    status = JobStatus(job.status)
    if status is JobStatus.QUEUED:
        _set_status(session, job, JobStatus.CANCELLED, "cancelled before it started")
    elif status is JobStatus.RUNNING:
        _set_status(session, job, JobStatus.CANCELLING, "cancel requested")
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


# --- the reaper ----------------------------------------------------------------------------


class Reaped(enum.StrEnum):
    """What the reaper did with a job whose worker stopped beating."""

    REQUEUED = "requeued"
    FAILED = "failed"
    CANCELLED = "cancelled"


def stale_jobs(session: Session, stale_before: Any) -> Sequence[Job]:
    """Running or cancelling jobs with no heartbeat since ``stale_before``, locked (others'
    locked rows are skipped: their worker is writing, so it is alive)."""
    return session.scalars(
        select(Job)
        .where(Job.status.in_(HELD_STATUSES), Job.heartbeat_at < stale_before)
        .with_for_update(skip_locked=True)
    ).all()


def reap(session: Session, job: Job, max_attempts: int) -> Reaped:
    """End or re-queue a locked job whose worker is presumed dead; its lease is cleared."""
    if job.status == JobStatus.CANCELLING.value:
        _set_status(session, job, JobStatus.CANCELLED, "worker lost while cancelling")
        return Reaped.CANCELLED
    if job.attempts >= max_attempts:
        message = f"worker lost {job.attempts} times (max_attempts {max_attempts})"
        _set_status(session, job, JobStatus.FAILED, message)
        return Reaped.FAILED
    _set_status(session, job, JobStatus.QUEUED, "worker lost (no heartbeat); re-queued")
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


# --- a worker's writes, under its lease ----------------------------------------------------------


def heartbeat(session: Session, job_id: str, lease: str) -> bool:
    """Stamp the heartbeat of a job we hold; False if it is no longer running under ``lease``."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease == lease, Job.status.in_(HELD_STATUSES))
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Standing:
    """What a worker running a job needs to know between batches."""

    held: bool  # still running (or cancelling) under our lease
    cancelling: bool
    drain_requested: bool


def standing(session: Session, job_id: str, lease: str) -> Standing:
    """Whether ``lease`` still holds the job, and whether it was asked to stop."""
    row = session.execute(
        select(Job.status, Job.lease, Job.drain_requested).where(Job.id == job_id)
    ).one_or_none()
    if row is None or row.lease != lease or row.status not in HELD_STATUSES:
        return Standing(held=False, cancelling=False, drain_requested=False)
    return Standing(True, row.status == JobStatus.CANCELLING.value, bool(row.drain_requested))


def check_held(session: Session, job_id: str, lease: str) -> None:
    """Raise JobGone unless the job is running under ``lease`` (and lock it until commit)."""
    _held(session, job_id, lease)


def record_start(
    session: Session,
    job_id: str,
    lease: str,
    param_count: int,
    replicas: int,
    global_batch_size: int,
) -> None:
    """The model is built: its size and how it is spread over the devices."""
    job = _held(session, job_id, lease)
    job.param_count = param_count
    job.replicas = replicas
    job.global_batch_size = global_batch_size
    job.updated_at = utcnow()
    payload = {
        "progress": job.progress,
        "eta_seconds": job.eta_seconds,
        "param_count": param_count,
        "replicas": replicas,
        "global_batch_size": global_batch_size,
    }
    _append(session, job_id, ChangeType.PROGRESS, payload=payload)


def record_epoch(
    session: Session,
    job_id: str,
    lease: str,
    *,
    step: int,
    values: dict[str, float],
    seconds: float | None,
    progress: float,
    eta_seconds: float | None,
    replayed: bool = False,
) -> None:
    """One epoch's (or step block's) metrics as trained by the holder's attempt, and progress.

    Rows are kept per attempt (the API shows the latest). ``replayed`` marks a resumed job's
    last checkpointed epoch: nothing is recorded if any attempt already recorded that step."""
    job = _held(session, job_id, lease)
    rows = session.scalars(select(Metric).where(Metric.job_id == job_id, Metric.step == step)).all()
    if replayed and rows:
        return
    existing = next((row for row in rows if row.attempt == job.attempts), None)
    if existing is None:
        session.add(
            Metric(job_id=job_id, step=step, values=values, seconds=seconds, attempt=job.attempts)
        )
    else:
        existing.values = values
        existing.seconds = seconds
    now = utcnow()
    job.progress = progress
    job.eta_seconds = eta_seconds
    job.heartbeat_at = now
    job.updated_at = now
    metrics = {"step": step, "values": values, "seconds": seconds, "attempt": job.attempts}
    _append(session, job_id, ChangeType.METRICS, payload=metrics)
    _append(
        session,
        job_id,
        ChangeType.PROGRESS,
        payload={"progress": progress, "eta_seconds": eta_seconds},
    )


def record_artifact(
    session: Session,
    job_id: str,
    lease: str,
    name: str,
    stored: StoredObject,
    content_type: str,
) -> None:
    """Register (or replace) a named artifact of a job we hold."""
    _held(session, job_id, lease)
    artifact = session.scalar(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name)
    )
    if artifact is None:
        artifact = Artifact(job_id=job_id, name=name)
        session.add(artifact)
    artifact.storage_key = stored.key
    artifact.size_bytes = stored.size
    artifact.sha256 = stored.sha256
    artifact.content_type = content_type
    artifact.created_at = utcnow()
    payload = {"name": name, "size_bytes": stored.size, "content_type": content_type}
    _append(session, job_id, ChangeType.ARTIFACT, payload=payload)


def finish(
    session: Session,
    job_id: str,
    lease: str,
    target: JobStatus,
    message: str | None = None,
    results: dict[str, Any] | None = None,
) -> JobStatus | None:
    """End a job we hold with ``target``; the status it ended with, or None if it is not ours.

    A success that meets a pending cancel ends as cancelled: the user asked to stop."""
    job = _locked(session, job_id)
    if job is None or job.lease != lease or job.status not in HELD_STATUSES:
        return None
    if target is JobStatus.SUCCEEDED and job.status == JobStatus.CANCELLING.value:
        target, message = JobStatus.CANCELLED, "cancelled after training finished"
    elif target is JobStatus.SUCCEEDED:
        job.results = results or {}
        job.progress = 1.0
    _set_status(session, job, target, message)
    return target


def hand_back(
    session: Session, job_id: str, lease: str, message: str, counts_as_attempt: bool
) -> bool:
    """Put a running job we hold back on the queue; False if it is no longer ours to hand back.

    A graceful hand-back (the worker shuts down) does not count as an attempt."""
    job = _locked(session, job_id)
    if job is None or job.lease != lease or job.status != JobStatus.RUNNING.value:
        return False
    if not counts_as_attempt:
        job.attempts = max(0, job.attempts - 1)
    _set_status(session, job, JobStatus.QUEUED, message)
    return True


def current_status(session: Session, job_id: str) -> JobStatus:
    """The job's status as stored now."""
    value = session.scalar(select(Job.status).where(Job.id == job_id))
    if value is None:
        raise LookupError(f"job {job_id} not found")
    return JobStatus(value)
