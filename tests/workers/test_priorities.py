"""The order workers take queued jobs in, on a real database (SQLite and PostgreSQL) and broker:
highest priority first, then the oldest; a job re-queued by the reaper or handed back by a
draining worker keeps its place ahead of newer jobs of its priority."""

from __future__ import annotations

import pytest

from shared.db.session import session_scope
from shared.jobs import NewJob, claim_next, create_job, hand_back, mark_enqueued
from shared.kinds import SAMPLE_KIND
from shared.queue import TRAIN_QUEUE, TRAIN_TASK, enqueue, make_celery, queue_length
from shared.settings import Settings
from tests.workers.test_reaper import age
from workers.reaper import reap_once


def submit(url: str, priority: int = 5, kind: str = "autoencoder") -> str:
    """A queued job made as the API makes one (each in its own transaction, so in order)."""
    model_kind = "autoencoder"
    with session_scope(url) as session:
        return create_job(session, NewJob(kind, model_kind, "", {}, priority=priority))


def take(url: str, sampling: bool = False) -> str | None:
    """What a worker woken by a message runs: the id of the job it claims, or None."""
    with session_scope(url) as session:
        job = claim_next(session, sampling, "w1@host")
        return job.id if job is not None else None


def test_highest_priority_first_then_oldest(settings: Settings) -> None:
    url = settings.database_url
    low, five_a, nine_a, five_b, nine_b = (submit(url, p) for p in (0, 5, 9, 5, 9))
    sampling = submit(url, 9, kind=SAMPLE_KIND)
    taken = [take(url) for _ in range(6)]
    assert taken == [nine_a, nine_b, five_a, five_b, low, None]
    # Sampling jobs are taken from their own line, by sampling workers.
    assert take(url, sampling=True) == sampling
    assert take(url, sampling=True) is None


def test_a_job_requeued_by_the_reaper_runs_before_newer_jobs_of_its_priority(
    settings: Settings,
) -> None:
    tuned = settings.model_copy(update={"heartbeat_timeout_seconds": 30})
    url = tuned.database_url
    app = make_celery(tuned)
    lost = submit(url)
    assert take(url) == lost
    newer = [submit(url), submit(url)]
    urgent = submit(url, 9)
    for job_id in (*newer, urgent):  # sent as the API sends them
        enqueue(app, TRAIN_TASK, job_id)
        with session_scope(url) as session:
            mark_enqueued(session, job_id)
    age(url, lost, 120, "heartbeat_at")  # its worker died two minutes ago
    report = reap_once(tuned, app)
    assert report.requeued == [lost]
    # Its wake-up is sent at once, though the newer jobs' messages still wait.
    assert report.resent == [lost] and queue_length(app, TRAIN_QUEUE) == 4
    assert [take(url) for _ in range(4)] == [urgent, lost, *newer]


def test_a_job_handed_back_by_a_draining_worker_keeps_its_place(settings: Settings) -> None:
    url = settings.database_url
    first = submit(url)
    with session_scope(url) as session:
        job = claim_next(session, False, "w1@host")
        assert job is not None and job.id == first
        lease = str(job.lease)
    newer = submit(url)
    with session_scope(url) as session:
        assert hand_back(session, first, lease, "draining", counts_as_attempt=False)
    assert [take(url), take(url)] == [first, newer]


@pytest.mark.parametrize("priority", [0, 9])
def test_priority_is_stored_on_the_job(settings: Settings, priority: int) -> None:
    from shared.db.models import Job

    job_id = submit(settings.database_url, priority)
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.priority == priority


def test_a_wake_up_waits_for_a_queued_job_another_transaction_holds(settings: Settings) -> None:
    """While the only queued job's row is locked (a reaper's pass, a cancel), a woken worker
    waits for it instead of claiming nothing: its message would be spent and the job left
    queued with none until the reaper sent another (a minute later)."""
    import threading

    from shared.db.models import Job

    url = settings.database_url
    job_id = submit(url)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with session_scope(url) as session:
            session.get(Job, job_id, with_for_update=True)
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    taken: list[str | None] = []
    taker = threading.Thread(target=lambda: taken.append(take(url)))
    taker.start()
    taker.join(0.5)  # still waiting on PostgreSQL (SQLite's write lock has no row locks)
    release.set()
    holder.join(10)
    taker.join(10)
    assert taken == [job_id]
