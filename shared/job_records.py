"""Reading and changing job rows: status transitions with history, metrics and artifacts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
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


def claim(session: Session, job_id: str) -> Job | None:
    """Atomically move a queued job to running; None if it is not queued (already taken)."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            started_at=now,
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            updated_at=now,
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


def record_metric(
    session: Session, job_id: str, step: int, values: dict[str, float], seconds: float | None
) -> None:
    """Store one epoch's (or step block's) metrics, replacing any earlier row for that step."""
    existing = session.scalar(select(Metric).where(Metric.job_id == job_id, Metric.step == step))
    if existing is None:
        session.add(Metric(job_id=job_id, step=step, values=values, seconds=seconds))
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


def metrics_of(session: Session, job_id: str) -> list[Metric]:
    """A job's metrics in step order."""
    return list(
        session.scalars(select(Metric).where(Metric.job_id == job_id).order_by(Metric.step))
    )


def update_fields(session: Session, job_id: str, **fields: Any) -> None:
    """Set plain columns of a job."""
    session.execute(update(Job).where(Job.id == job_id).values(**fields))
