"""Removing what jobs left behind: a whole ended job, its artifacts when retention expires them,
the marks of a job whose superseded attempts' objects were swept, and the jobs' links to a
deleted dataset (see ``shared.jobs``; the objects themselves: ``shared.retention``).

Nothing a queued or running job needs is removed: each function locks the rows it checks, and
the API locks the same rows (``FOR SHARE``) while it creates a job that needs them, so a removal
and a submission racing each other end with one of them refused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shared.db.models import Artifact, Job, JobEvent, Metric, utcnow
from shared.job_state import JobStatus
from shared.jobs.changes import locked, write_lock
from shared.object_removals import note_removals
from shared.storage import job_prefix

ENDED_STATUSES = tuple(status.value for status in JobStatus if status.is_terminal())
ACTIVE_STATUSES = tuple(status.value for status in JobStatus if not status.is_terminal())


class JobActive(Exception):
    """The job (or a sampling job drawing from it) has not ended: it cannot be removed yet."""

    def __init__(self, job_id: str, status: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status
        self.message = message


def _ended_or_raise(job: Job, children: Sequence[Job]) -> None:
    if job.status not in ENDED_STATUSES:
        raise JobActive(
            job.id,
            job.status,
            f"job {job.id} is {job.status}; cancel it first (POST /v1/jobs/{job.id}/cancel) "
            "and delete it once it has ended",
        )
    for child in children:
        if child.status not in ENDED_STATUSES:
            raise JobActive(
                job.id,
                child.status,
                f"sampling job {child.id} of job {job.id} is {child.status} and needs its "
                "model; cancel it or wait for it to end first",
            )


def _locked_children(session: Session, job_id: str) -> Sequence[Job]:
    return session.scalars(
        select(Job).where(Job.parent_id == job_id).order_by(Job.id).with_for_update()
    ).all()


def delete_job(session: Session, job_id: str) -> list[str]:
    """Delete an ended job and its sampling jobs: their rows, change log (history, logs), metrics
    and artifact rows; the ids deleted (the job's first). Their storage prefixes are recorded to
    remove (``object_removals``); the caller removes them after the commit. Raises LookupError
    for no such job and JobActive unless all have ended."""
    job = locked(session, job_id)
    if job is None:
        raise LookupError(job_id)
    children = _locked_children(session, job_id)
    _ended_or_raise(job, children)
    ids = [job_id, *(child.id for child in children)]
    for table in (JobEvent, Metric, Artifact):
        session.execute(
            delete(table).where(table.job_id.in_(ids)).execution_options(synchronize_session=False)
        )
    session.execute(
        delete(Job).where(Job.parent_id == job_id).execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Job).where(Job.id == job_id).execution_options(synchronize_session=False)
    )
    session.expunge_all()
    note_removals(session, [job_prefix(deleted) for deleted in ids])
    return ids


def expire_job(session: Session, job_id: str, ended_before: datetime) -> bool:
    """Drop the artifact rows of a job that ended before ``ended_before`` and mark it expired
    (its row, metrics and history stay); False, changing nothing, if it has not ended, ended
    later, is already expired, or a sampling job of it has not ended. The job's storage prefix
    is recorded to remove (``object_removals``); the caller removes it after the commit."""
    job = locked(session, job_id)
    if (
        job is None
        or job.expired_at is not None
        or job.status not in ENDED_STATUSES
        or job.finished_at is None
        or job.finished_at >= ended_before
    ):
        return False
    try:
        _ended_or_raise(job, _locked_children(session, job_id))
    except JobActive:
        return False
    session.execute(
        delete(Artifact)
        .where(Artifact.job_id == job_id)
        .execution_options(synchronize_session=False)
    )
    now = utcnow()
    job.expired_at = now
    job.swept_at = job.swept_at or now  # nothing left to sweep
    note_removals(session, [job_prefix(job_id)])
    return True


def expiry_candidates(session: Session, ended_before: datetime, limit: int) -> list[str]:
    """Ids of ended, unexpired jobs that ended before ``ended_before``, oldest first."""
    query = (
        select(Job.id)
        .where(
            Job.status.in_(ENDED_STATUSES),
            Job.finished_at < ended_before,
            Job.expired_at.is_(None),
        )
        .order_by(Job.finished_at)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def sweep_candidates(session: Session, limit: int) -> list[str]:
    """Ids of ended jobs whose superseded attempts' objects were not swept yet."""
    query = (
        select(Job.id)
        .where(Job.status.in_(ENDED_STATUSES), Job.swept_at.is_(None))
        .order_by(Job.finished_at)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def kept_keys(session: Session, job_id: str) -> set[str] | None:
    """The object keys a job's artifact rows point at, if it has ended; None while it runs (its
    objects are not to be swept yet)."""
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status not in ENDED_STATUSES:
        return None
    return set(session.scalars(select(Artifact.storage_key).where(Artifact.job_id == job_id)))


def mark_swept(session: Session, job_id: str) -> None:
    """Note that an ended job's superseded objects were removed (not a change users see)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ENDED_STATUSES))
        .values(swept_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def release_dataset(session: Session, dataset_id: str) -> int:
    """Before a dataset is deleted (its row locked by the caller): refuse while a job that has
    not ended uses it (JobActive with how many), else detach the ended jobs that used it (their
    ``dataset`` reads null from then on); how many were detached."""
    write_lock(session)
    active = session.scalars(
        select(Job.id)
        .where(Job.dataset_id == dataset_id, Job.status.in_(ACTIVE_STATUSES))
        .order_by(Job.created_at)
    ).all()
    if active:
        raise JobActive(
            active[0],
            "active",
            f"{len(active)} queued or running job(s) use this dataset (e.g. job {active[0]}); "
            "cancel them or wait for them to end first",
        )
    result = session.execute(
        update(Job)
        .where(Job.dataset_id == dataset_id)
        .values(dataset_id=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
