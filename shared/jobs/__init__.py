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

from shared.jobs.changes import ChangeType, JobGone
from shared.jobs.leased import (
    LOG_TRUNCATED,
    LogWrite,
    Standing,
    check_held,
    finish,
    hand_back,
    heartbeat,
    record_artifact,
    record_epoch,
    record_log,
    record_start,
    standing,
)
from shared.jobs.lifecycle import (
    NewJob,
    Reaped,
    claim,
    claim_next,
    create_job,
    create_jobs,
    mark_enqueued,
    queue_order,
    reap,
    request_cancel,
    request_drain,
    stale_jobs,
    unsent_jobs,
)
from shared.jobs.removal import (
    JobActive,
    delete_job,
    expire_job,
    expiry_candidates,
    kept_keys,
    mark_swept,
    release_dataset,
    sweep_candidates,
)

__all__ = [
    "LOG_TRUNCATED",
    "ChangeType",
    "JobActive",
    "JobGone",
    "LogWrite",
    "NewJob",
    "Reaped",
    "Standing",
    "check_held",
    "claim",
    "claim_next",
    "create_job",
    "create_jobs",
    "delete_job",
    "expire_job",
    "expiry_candidates",
    "finish",
    "hand_back",
    "heartbeat",
    "kept_keys",
    "mark_enqueued",
    "mark_swept",
    "queue_order",
    "reap",
    "record_artifact",
    "record_epoch",
    "record_log",
    "record_start",
    "release_dataset",
    "request_cancel",
    "request_drain",
    "stale_jobs",
    "standing",
    "sweep_candidates",
    "unsent_jobs",
]
