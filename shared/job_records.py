"""Reading and changing job rows: status transitions with history, metrics and artifacts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.models import Artifact, Job, JobEvent, Metric, utcnow
from shared.job_state import JobStatus, check_transition
from shared.storage import StoredObject


def transition(session: Session, job: Job, target: JobStatus, message: str | None = None) -> None:
    """Move ``job`` to ``target`` (raises IllegalTransition), stamping the history."""
    check_transition(JobStatus(job.status), target)
    now = utcnow()
    job.status = target.value
    if target is JobStatus.RUNNING:
        job.started_at = job.started_at or now
        job.heartbeat_at = now
    if target.is_terminal():
        job.finished_at = now
        job.eta_seconds = None
    if target is JobStatus.FAILED:
        job.error = message
    session.add(JobEvent(job_id=job.id, status=target.value, message=message, at=now))


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
    session.add(JobEvent(job_id=job_id, status=JobStatus.RUNNING.value, at=now))
    session.flush()
    return session.get(Job, job_id, populate_existing=True)


def current_status(session: Session, job_id: str) -> JobStatus:
    """The job's status as stored now."""
    value = session.scalar(select(Job.status).where(Job.id == job_id))
    if value is None:
        raise LookupError(f"job {job_id} not found")
    return JobStatus(value)


def record_progress(
    session: Session, job_id: str, progress: float, eta_seconds: float | None
) -> None:
    """Store progress (0-1), ETA and a heartbeat for a running job."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(progress=progress, eta_seconds=eta_seconds, heartbeat_at=utcnow())
    )


def heartbeat(session: Session, job_id: str, lease: str) -> bool:
    """Stamp the heartbeat of a job we hold; False if the lease is no longer ours."""
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.lease == lease).values(heartbeat_at=utcnow())
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def request_drain(session: Session, worker: str) -> int:
    """Ask the jobs a shutting-down worker runs to stop at their next epoch; returns how many."""
    result = session.execute(
        update(Job)
        .where(Job.worker == worker, Job.status == JobStatus.RUNNING.value)
        .values(drain_requested=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def requeue(session: Session, job: Job, message: str, count_attempt: bool = True) -> None:
    """Hand a running job back to the queue (the reaper or the caller sends it again)."""
    transition(session, job, JobStatus.QUEUED, message)
    job.lease = None
    job.worker = None
    job.drain_requested = False
    job.enqueued_at = None
    if not count_attempt:
        job.attempts = max(0, job.attempts - 1)


def record_metric(
    session: Session,
    job_id: str,
    step: int,
    values: dict[str, float],
    seconds: float | None,
    attempt: int = 1,
    only_if_absent: bool = False,
) -> None:
    """Store one epoch's (or step block's) metrics as trained by ``attempt``.

    Rows are kept per attempt, so an epoch trained twice would show as two rows (the API shows the
    latest); ``only_if_absent`` records nothing if any attempt already recorded that step.
    """
    rows = session.scalars(select(Metric).where(Metric.job_id == job_id, Metric.step == step)).all()
    if only_if_absent and rows:
        return
    existing = next((row for row in rows if row.attempt == attempt), None)
    if existing is None:
        session.add(
            Metric(job_id=job_id, step=step, values=values, seconds=seconds, attempt=attempt)
        )
    else:
        existing.values = values
        existing.seconds = seconds


def record_artifact(
    session: Session, job_id: str, name: str, stored: StoredObject, content_type: str
) -> Artifact:
    """Register (or replace) a named artifact of a job."""
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
    return artifact


def update_fields(session: Session, job_id: str, **fields: Any) -> None:
    """Set plain columns of a job."""
    session.execute(update(Job).where(Job.id == job_id).values(**fields))
