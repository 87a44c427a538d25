"""The reaper against a real database and broker: dead workers' jobs and lost messages."""

from datetime import timedelta

import pytest

from shared.db.models import Job, JobEvent, utcnow
from shared.db.session import session_scope
from shared.job_records import claim, transition
from shared.job_state import JobStatus
from shared.queue import TRAIN_QUEUE, make_celery, queue_length
from shared.settings import Settings
from workers.reaper import reap_once


@pytest.fixture
def tuned(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"heartbeat_timeout_seconds": 30, "requeue_after_seconds": 30, "max_attempts": 2}
    )


def new_job(
    url: str, status: JobStatus = JobStatus.QUEUED, age: float = 0, attempts: int = 0
) -> str:
    with session_scope(url) as session:
        job = Job(kind="autoencoder", model_kind="autoencoder", params={})
        session.add(job)
        session.flush()
        session.add(JobEvent(job_id=job.id, status="queued"))
        job_id = job.id
    if status is not JobStatus.QUEUED:
        with session_scope(url) as session:
            claimed = claim(session, job_id, "w1@host")
            assert claimed is not None
            claimed.attempts = attempts
            claimed.heartbeat_at = utcnow() - timedelta(seconds=age)
            if status is JobStatus.CANCELLING:
                transition(session, claimed, JobStatus.CANCELLING)
    else:
        with session_scope(url) as session:
            queued = session.get(Job, job_id)
            assert queued is not None
            queued.enqueued_at = utcnow() - timedelta(seconds=age)
    return job_id


def status_of(url: str, job_id: str) -> Job:
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_dead_workers_job_is_requeued_then_failed_past_the_cap(tuned: Settings) -> None:
    app = make_celery(tuned)
    url = tuned.database_url
    alive = new_job(url, JobStatus.RUNNING, age=1, attempts=1)
    dead = new_job(url, JobStatus.RUNNING, age=120, attempts=1)
    exhausted = new_job(url, JobStatus.RUNNING, age=120, attempts=2)
    stopping = new_job(url, JobStatus.CANCELLING, age=120, attempts=1)

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
    lost = new_job(url, JobStatus.QUEUED, age=120)
    fresh = new_job(url, JobStatus.QUEUED, age=1)
    assert queue_length(app, TRAIN_QUEUE) == 0  # as after a broker flush
    report = reap_once(tuned, app)
    assert report.resent == [lost]
    assert queue_length(app, TRAIN_QUEUE) == 1
    # Now a message waits in the queue: an old queued job is presumed to be among them.
    waiting = new_job(url, JobStatus.QUEUED, age=120)
    assert reap_once(tuned, app).resent == []
    assert fresh and waiting
