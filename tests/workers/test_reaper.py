"""The reaper against a real database and broker: dead workers' jobs and lost messages."""

from datetime import timedelta

import pytest

from shared.db.models import Job, utcnow
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, reap, request_cancel
from shared.queue import TRAIN_QUEUE, make_celery, queue_length
from shared.settings import Settings
from tests.conftest import create_test_job
from workers.reaper import reap_once


@pytest.fixture
def tuned(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"heartbeat_timeout_seconds": 30, "requeue_after_seconds": 30, "max_attempts": 2}
    )


def age(url: str, job_id: str, seconds: float, column: str) -> None:
    """Pretend the job's ``column`` (heartbeat_at, enqueued_at) was stamped ``seconds`` ago.

    Tests may move a job's clock back; only the lifecycle module changes its state."""
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        setattr(job, column, utcnow() - timedelta(seconds=seconds))


def new_job(
    url: str, status: JobStatus = JobStatus.QUEUED, age_seconds: float = 0, attempts: int = 0
) -> str:
    job_id = create_test_job(url)
    if status is JobStatus.QUEUED:
        age(url, job_id, age_seconds, "enqueued_at")
        return job_id
    for attempt in range(1, attempts + 1):
        with session_scope(url) as session:
            claimed = claim(session, job_id, "w1@host")
            assert claimed is not None
        if attempt < attempts:
            age(url, job_id, 120, "heartbeat_at")
            with session_scope(url) as session:
                job = session.get(Job, job_id, with_for_update=True)
                assert job is not None
                reap(session, job, max_attempts=attempts)  # worker lost; re-queued
    if status is JobStatus.CANCELLING:
        with session_scope(url) as session:
            request_cancel(session, job_id)
    age(url, job_id, age_seconds, "heartbeat_at")
    return job_id


def status_of(url: str, job_id: str) -> Job:
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_dead_workers_job_is_requeued_then_failed_past_the_cap(tuned: Settings) -> None:
    app = make_celery(tuned)
    url = tuned.database_url
    alive = new_job(url, JobStatus.RUNNING, age_seconds=1, attempts=1)
    dead = new_job(url, JobStatus.RUNNING, age_seconds=120, attempts=1)
    exhausted = new_job(url, JobStatus.RUNNING, age_seconds=120, attempts=2)
    stopping = new_job(url, JobStatus.CANCELLING, age_seconds=120, attempts=1)

    report = reap_once(tuned, app)

    assert report.requeued == [dead] and report.failed == [exhausted]
    assert report.cancelled == [stopping]
    assert status_of(url, alive).status == "running"
    requeued = status_of(url, dead)
    assert requeued.status == "queued" and requeued.lease is None and requeued.enqueued_at
    assert "worker lost" in (status_of(url, exhausted).error or "")
    assert status_of(url, stopping).status == "cancelled"
    assert dead in report.resent  # sent again in the same pass
    assert queue_length(app, TRAIN_QUEUE) >= 1


def test_a_lost_message_is_sent_again_but_a_waiting_one_is_not(tuned: Settings) -> None:
    app = make_celery(tuned)
    url = tuned.database_url
    lost = new_job(url, JobStatus.QUEUED, age_seconds=120)
    new_job(url, JobStatus.QUEUED, age_seconds=1)  # sent a second ago: not lost yet
    assert queue_length(app, TRAIN_QUEUE) == 0  # as after a broker flush
    report = reap_once(tuned, app)
    assert report.resent == [lost]
    assert queue_length(app, TRAIN_QUEUE) == 1
    # Now a message waits in the queue: an old queued job is presumed to be among them.
    waiting = new_job(url, JobStatus.QUEUED, age_seconds=120)
    assert reap_once(tuned, app).resent == []
    untouched = status_of(url, waiting)
    assert untouched.enqueued_at is not None
    assert untouched.enqueued_at < utcnow() - timedelta(seconds=100)  # not marked as sent again
    assert status_of(url, waiting).status == "queued"
