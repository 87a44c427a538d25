"""Removing jobs' objects: a deleted job's, an ended job's superseded attempts', and those of jobs
ended longer ago than ``GENTRAIN_RETAIN_DAYS``. The rows change through ``shared.jobs``, in a
transaction that first checks, under the job's lock, that nothing still running needs them, and
records what to remove (``object_removals``); the objects go after it commits, and again in the
reaper's pass once ``heartbeat_timeout_seconds`` have passed (then the record is dropped): a
storage failure, or an upload by a worker frozen across the delete, leaves nothing behind."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.db.models import utcnow
from shared.db.session import session_scope
from shared.jobs import (
    delete_job,
    expire_job,
    expiry_candidates,
    kept_keys,
    mark_swept,
    sweep_candidates,
)
from shared.object_removals import due_removals, forget_removal, remove_now, remove_objects
from shared.settings import Settings
from shared.storage import ObjectStore, job_prefix

log = logging.getLogger(__name__)


def delete_job_and_objects(database_url: str, store: ObjectStore, job_id: str) -> list[str]:
    """Delete an ended job, its sampling jobs and every object under their prefixes; the ids
    deleted. Raises LookupError and JobActive as ``shared.jobs.delete_job``."""
    with session_scope(database_url) as session:
        ids = delete_job(session, job_id)
    remove_now(store, [job_prefix(deleted) for deleted in ids])
    return ids


def sweep_job(database_url: str, store: ObjectStore, job_id: str) -> int:
    """Remove the objects of an ended job that no artifact row names (superseded attempts'
    checkpoints, models and grids) and mark it swept; how many were removed. A job that has not
    ended is left alone (0)."""
    with session_scope(database_url) as session:
        kept = kept_keys(session, job_id)
    if kept is None:
        return 0
    superseded = [key for key in store.list_keys(job_prefix(job_id)) if key not in kept]
    store.delete_many(superseded)
    with session_scope(database_url) as session:
        mark_swept(session, job_id)
    return len(superseded)


@dataclass
class RetentionReport:
    """What one retention pass did: jobs by id, and how many recorded removals were done."""

    swept: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    removed: int = 0


def _finish_removals(
    settings: Settings, store: ObjectStore, now: datetime, report: RetentionReport
) -> None:
    """Remove again what deletes and expiries recorded before the grace period, then forget it
    (a removal storage refuses stays for the next pass)."""
    noted_before = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
    with session_scope(settings.database_url) as session:
        due = [(row.id, row.key) for row in due_removals(session, noted_before, 1000)]
    for removal_id, key in due:
        try:
            remove_objects(store, key)
        except Exception:  # noqa: BLE001 - storage down: the record stays for the next pass
            log.warning("cannot remove %s; will retry", key, exc_info=True)
            continue
        with session_scope(settings.database_url) as session:
            forget_removal(session, removal_id)
        report.removed += 1


def retention_pass(
    settings: Settings, store: ObjectStore, now: datetime | None = None
) -> RetentionReport:
    """Sweep ended jobs' superseded objects, then (with ``retain_days``) expire the artifacts of
    jobs that ended before ``now`` minus that many days, at most ``retention_batch`` of each;
    then finish the recorded removals older than the grace period."""
    report = RetentionReport()
    now = now or utcnow()
    database_url = settings.database_url
    with session_scope(database_url) as session:
        to_sweep = sweep_candidates(session, settings.retention_batch)
    for job_id in to_sweep:
        sweep_job(database_url, store, job_id)
        report.swept.append(job_id)
    if settings.retain_days:
        ended_before = now - timedelta(days=settings.retain_days)
        with session_scope(database_url) as session:
            to_expire = expiry_candidates(session, ended_before, settings.retention_batch)
        for job_id in to_expire:
            with session_scope(database_url) as session:
                expired = expire_job(session, job_id, ended_before)
            if expired:
                remove_now(store, [job_prefix(job_id)])
                report.expired.append(job_id)
    _finish_removals(settings, store, now, report)
    return report
