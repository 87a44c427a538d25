"""The reaper's retention: superseded attempts' objects go once a job ends; with
GENTRAIN_RETAIN_DAYS, the artifacts of jobs that ended long ago go (the row and metrics stay).
Real database and storage (the local directory, and S3 on moto's server); the clock is patched."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

import shared.retention
from shared.db.models import Artifact, Metric, utcnow
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, hand_back, record_epoch
from shared.queue import make_celery
from shared.settings import Settings
from shared.storage import ObjectStore, job_prefix, open_store
from tests.conftest import create_test_job
from workers.job_reporter import JobReporter
from workers.reaper import reap_once


def run_attempt(settings: Settings, store: ObjectStore, job_id: str, names: list[str]) -> str:
    """Claim the job as a worker does and save ``names`` as its attempt's artifacts; the lease."""
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id, "w@test")
        assert job is not None
        lease, attempt = str(job.lease), job.attempts
    reporter = JobReporter(settings, store, job_id, lease, attempt)
    for name in names:
        reporter.save_bytes(name, f"{name} of attempt {attempt}".encode(), "image/png")
    with session_scope(settings.database_url) as session:
        values = {"loss": 0.5}
        record_epoch(
            session, job_id, lease, step=attempt, values=values, seconds=1.0, progress=0.5,
            eta_seconds=None,
        )  # fmt: skip
    return lease


def end(settings: Settings, job_id: str, lease: str, status: JobStatus) -> None:
    with session_scope(settings.database_url) as session:
        assert finish(session, job_id, lease, status, None, {}) is status


def artifact_keys(settings: Settings, job_id: str) -> set[str]:
    with session_scope(settings.database_url) as session:
        query = select(Artifact.storage_key).where(Artifact.job_id == job_id)
        return set(session.scalars(query))


def test_superseded_attempts_leave_no_objects_once_the_job_ends(settings: Settings) -> None:
    store, app = open_store(settings), make_celery(settings)
    job_id = create_test_job(settings.database_url)
    lease = run_attempt(
        settings, store, job_id, ["model.keras", "checkpoints/latest.npz", "samples/a.png"]
    )
    with session_scope(settings.database_url) as session:
        assert hand_back(session, job_id, lease, "worker lost", counts_as_attempt=True)
    lease = run_attempt(settings, store, job_id, ["checkpoints/latest.npz", "samples/b.png"])
    keys = store.list_keys(job_prefix(job_id))
    assert len(keys) == 5
    reap_once(settings, app, store)  # running: nothing of it is swept
    assert store.list_keys(job_prefix(job_id)) == keys

    end(settings, job_id, lease, JobStatus.SUCCEEDED)
    report = reap_once(settings, app, store)
    assert report.swept == [job_id]
    kept = artifact_keys(settings, job_id)
    assert set(store.list_keys(job_prefix(job_id))) == kept
    # The first attempt's model and grid are still the job's; its checkpoint was superseded.
    assert sorted(key.split("/", 2)[2] for key in kept) == [
        "attempt-1/model.keras",
        "attempt-1/samples/a.png",
        "attempt-2/checkpoints/latest.npz",
        "attempt-2/samples/b.png",
    ]
    assert all(store.exists(key) for key in kept)
    assert reap_once(settings, app, store).swept == []  # once


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_retention_expires_artifacts_of_jobs_ended_long_ago(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, status: JobStatus
) -> None:
    tuned = settings.model_copy(update={"retain_days": 2.0})
    store, app = open_store(tuned), make_celery(tuned)
    old, recent, running = (create_test_job(tuned.database_url) for _ in range(3))
    for job_id in (old, recent, running):
        lease = run_attempt(tuned, store, job_id, ["model.keras", "samples/grid.png"])
        if job_id != running:
            end(tuned, job_id, lease, status)
    assert reap_once(tuned, app, store).expired == []  # nothing is two days old yet

    # Three days later for the old job only: move the clock, then end the recent one "now".
    started = utcnow()
    monkeypatch.setattr(shared.retention, "utcnow", lambda: started + timedelta(days=3))
    with session_scope(tuned.database_url) as session:
        from shared.db.models import Job

        job = session.get(Job, recent)
        assert job is not None
        job.finished_at = started + timedelta(days=2)  # test-only: pretend it ended later
    report = reap_once(tuned, app, store)
    assert report.expired == [old]
    assert store.list_keys(job_prefix(old)) == []
    assert artifact_keys(tuned, old) == set()
    assert len(store.list_keys(job_prefix(recent))) == 2
    assert len(store.list_keys(job_prefix(running))) == 2  # never a job that has not ended
    with session_scope(tuned.database_url) as session:
        job = session.get(Job, old)
        assert job is not None and job.status == status.value and job.expired_at is not None
        metrics = session.scalar(select(func.count()).where(Metric.job_id == old))
        assert metrics == 1  # the row and its metrics stay
    assert reap_once(tuned, app, store).expired == []


def test_no_retention_without_the_setting(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, app = open_store(settings), make_celery(settings)
    job_id = create_test_job(settings.database_url)
    end(settings, job_id, run_attempt(settings, store, job_id, ["model.keras"]), JobStatus.FAILED)
    later = utcnow() + timedelta(days=10_000)
    monkeypatch.setattr(shared.retention, "utcnow", lambda: later)
    assert reap_once(settings, app, store).expired == []
    assert len(store.list_keys(job_prefix(job_id))) == 1
