"""The reaper: re-queues jobs whose worker died, and re-sends queued jobs the broker lost.

The database is the source of truth; the queue only carries ids, so anything the broker loses
(a Redis restart or flush, a message acknowledged by a worker that then died) is sent again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from celery import Celery
from sqlalchemy import or_, select

from shared.db.models import Job, utcnow
from shared.db.session import session_scope
from shared.job_records import requeue, transition
from shared.job_state import JobKind, JobStatus
from shared.queue import (
    SAMPLE_QUEUE,
    SAMPLE_TASK,
    TRAIN_QUEUE,
    TRAIN_TASK,
    enqueue,
    queue_length,
)
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ReapReport:
    """What one pass did, by job id."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def reap_once(settings: Settings, app: Celery) -> ReapReport:
    """One pass: handle jobs with a stale heartbeat, then (re)send queued jobs nobody took."""
    report = ReapReport()
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
    with session_scope(settings.database_url) as session:
        stale = session.scalars(
            select(Job)
            .where(
                Job.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value]),
                Job.heartbeat_at < stale_before,
            )
            .with_for_update(skip_locked=True)
        ).all()
        for job in stale:
            if job.status == JobStatus.CANCELLING.value:
                transition(session, job, JobStatus.CANCELLED, "worker lost while cancelling")
                report.cancelled.append(job.id)
            elif job.attempts >= settings.max_attempts:
                message = f"worker lost {job.attempts} times (max_attempts {settings.max_attempts})"
                transition(session, job, JobStatus.FAILED, message)
                report.failed.append(job.id)
            else:
                requeue(session, job, "worker lost (no heartbeat); re-queued")
                report.requeued.append(job.id)
    resend_before = now - timedelta(seconds=settings.requeue_after_seconds)
    # A queued job's message is presumed lost only when its queue is empty: while messages wait
    # there, its own is most likely among them (re-sending would only pile up duplicates).
    empty = {}
    for queue in (TRAIN_QUEUE, SAMPLE_QUEUE):
        try:
            empty[queue] = queue_length(app, queue) == 0
        except Exception:  # noqa: BLE001 - broker down: nothing can be sent this pass
            log.warning("cannot read the length of queue %s", queue, exc_info=True)
            return report
    with session_scope(settings.database_url) as session:
        waiting = session.scalars(
            select(Job)
            .where(
                Job.status == JobStatus.QUEUED.value,
                or_(Job.enqueued_at.is_(None), Job.enqueued_at < resend_before),
            )
            .with_for_update(skip_locked=True)
        ).all()
        for job in waiting:
            is_sample = job.kind == JobKind.SAMPLE.value
            if (
                job.enqueued_at is not None
                and not empty[SAMPLE_QUEUE if is_sample else TRAIN_QUEUE]
            ):
                continue
            task = SAMPLE_TASK if is_sample else TRAIN_TASK
            try:
                enqueue(app, task, job.id)
            except Exception:  # noqa: BLE001 - the broker is down; try again next pass
                log.warning("cannot send job %s; will retry", job.id, exc_info=True)
                break
            job.enqueued_at = now
            report.resent.append(job.id)
    for name in ("requeued", "failed", "cancelled", "resent"):
        if ids := getattr(report, name):
            log.info("reaper %s: %s", name, ", ".join(ids))
    return report


def run_reaper(settings: Settings, app: Celery, stop_after: float | None = None) -> None:
    """Reap every ``reaper_interval_seconds`` until interrupted (or ``stop_after`` seconds)."""
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        try:
            reap_once(settings, app)
        except Exception:  # noqa: BLE001 - a database hiccup must not end the reaper
            log.exception("reaper pass failed")
        time.sleep(settings.reaper_interval_seconds)
