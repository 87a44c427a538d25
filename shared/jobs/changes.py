"""The primitives of a job's life: a status change under the state machine, the change log it
and every other change append to, and the row locks that order them (see ``shared.jobs``)."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session

from shared.db.models import Job, JobEvent, utcnow
from shared.job_state import JobStatus, check_transition
from shared.jobs import notify

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


def append_change(
    session: Session,
    job_id: str,
    change: ChangeType,
    *,
    status: JobStatus | None = None,
    message: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the change log, in the caller's transaction (which holds the row);
    readers of the log are woken once it commits."""
    job = session.get(Job, job_id)  # the caller's locked row, from the session: no query
    notify.mark_changed(session, job_id, job.owner if job is not None else None)
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


def set_status(session: Session, job: Job, target: JobStatus, message: str | None) -> None:
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
    append_change(
        session, job.id, ChangeType.STATUS, status=target, message=message, payload=payload
    )


def write_lock(session: Session) -> None:
    """On SQLite, take the database's write lock now, before reading what will be changed.

    PostgreSQL locks rows (``FOR UPDATE``); SQLite ignores that, and its driver begins a
    transaction only at the first write, so two writers could each read a job as running and
    then overwrite each other (a cancel and a finish, say). ``BEGIN IMMEDIATE`` makes the
    second wait for the first and then read what it wrote."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def locked(session: Session, job_id: str) -> Job | None:
    """The job, locked for the rest of the transaction (None if there is none)."""
    write_lock(session)
    return session.get(Job, job_id, populate_existing=True, with_for_update=True)


def held(session: Session, job_id: str, lease: str) -> Job:
    """The job, locked, if it is running (or cancelling) under ``lease``; else JobGone."""
    job = locked(session, job_id)
    if job is None or job.lease != lease or job.status not in HELD_STATUSES:
        raise JobGone(job_id)
    return job
