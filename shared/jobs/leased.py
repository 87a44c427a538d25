"""What a worker writes about the job it runs, each write under its lease (see ``shared.jobs``):
a write is refused once the job is no longer running under that lease."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import Artifact, Job, JobEvent, Metric, utcnow
from shared.finite_numbers import finite_json, finite_record
from shared.job_state import JobStatus
from shared.jobs.changes import HELD_STATUSES, ChangeType, append_change, held, locked, set_status
from shared.settings import get_settings
from shared.storage import StoredObject


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
    held(session, job_id, lease)


def record_start(
    session: Session,
    job_id: str,
    lease: str,
    param_count: int,
    replicas: int,
    global_batch_size: int,
) -> None:
    """The model is built: its size and how it is spread over the devices."""
    job = held(session, job_id, lease)
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
    append_change(session, job_id, ChangeType.PROGRESS, payload=payload)


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
    job = held(session, job_id, lease)
    values, _ = finite_json(values)  # a non-finite value (inf, NaN) is stored as null
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
    append_change(session, job_id, ChangeType.METRICS, payload=metrics)
    append_change(
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
    held(session, job_id, lease)
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
    append_change(session, job_id, ChangeType.ARTIFACT, payload=payload)


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
    job = locked(session, job_id)
    if job is None or job.lease != lease or job.status not in HELD_STATUSES:
        return None
    if target is JobStatus.SUCCEEDED and job.status == JobStatus.CANCELLING.value:
        target, message = JobStatus.CANCELLED, "cancelled after training finished"
    elif target is JobStatus.SUCCEEDED:
        job.results = finite_record(results or {})
        job.progress = 1.0
    set_status(session, job, target, message)
    return target


def hand_back(
    session: Session, job_id: str, lease: str, message: str, counts_as_attempt: bool
) -> bool:
    """Put a running job we hold back on the queue; False if it is no longer ours to hand back.

    A graceful hand-back (the worker shuts down) does not count as an attempt."""
    job = locked(session, job_id)
    if job is None or job.lease != lease or job.status != JobStatus.RUNNING.value:
        return False
    if not counts_as_attempt:
        job.attempts = max(0, job.attempts - 1)
    set_status(session, job, JobStatus.QUEUED, message)
    return True


LOG_TRUNCATED = (
    "[gentrain] this job's log reached its cap of {cap} characters; the rest is dropped\n"
)


@dataclass(frozen=True)
class LogWrite:
    """Where a chunk of a job's log went, and whether the log can take more."""

    attempt: int
    offset: int  # characters of the attempt's log before the chunk
    job_offset: int  # characters of the whole job's log before the chunk
    text: str  # what was stored: the chunk, cut short at the cap, or "" when dropped
    truncated: bool  # the log is at its cap: later chunks are dropped


def record_log(
    session: Session, job_id: str, lease: str, text: str, max_chars: int | None = None
) -> LogWrite:
    """Append a chunk of the holder's attempt's log as one ``log`` change (JobGone unless the
    job runs under ``lease``). Offsets follow the job's latest chunk; a chunk crossing the cap of
    ``max_chars`` (default: the setting) is cut there and followed by one truncation notice,
    and chunks after it are dropped (the notice's payload carries ``"truncated": true``)."""
    job = held(session, job_id, lease)
    cap = get_settings().max_log_bytes_per_job if max_chars is None else max_chars
    latest = session.scalar(
        select(JobEvent.payload)
        .where(JobEvent.job_id == job_id, JobEvent.type == ChangeType.LOG.value)
        .order_by(JobEvent.id.desc())
        .limit(1)
    )
    attempt, offset, job_offset = job.attempts, 0, 0
    if latest is not None:
        length = len(latest["text"])
        job_offset = latest["job_offset"] + length
        if latest["attempt"] == attempt:
            offset = latest["offset"] + length
        if latest.get("truncated"):
            return LogWrite(attempt, offset, job_offset, "", truncated=True)
    truncated = job_offset + len(text) > cap
    if truncated:
        text = text[: max(0, cap - job_offset)]
        newline = "\n" if text and not text.endswith("\n") else ""  # the notice is a line
        text += newline + LOG_TRUNCATED.format(cap=cap)
    if text:
        payload = {"attempt": attempt, "offset": offset, "job_offset": job_offset, "text": text}
        payload |= {"truncated": True} if truncated else {}
        append_change(session, job_id, ChangeType.LOG, payload=payload)
    return LogWrite(attempt, offset, job_offset, text, truncated)
