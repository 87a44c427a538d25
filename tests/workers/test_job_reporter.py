"""The worker's side of the lease rule, on a real database and store: once a job has ended, its
old run writes nothing, uploads nothing, and an error it meets is not counted against the job."""

from __future__ import annotations

import pytest

from shared.db.models import Job
from shared.db.session import session_scope
from shared.jobs import claim, reap
from shared.settings import Settings
from shared.storage import open_store
from tests.conftest import create_test_job
from workers.engine.reporter import LeaseLost
from workers.job_reporter import JobReporter, StopReason
from workers.runner import RunResult, _handle_failure


def running_reporter(settings: Settings) -> JobReporter:
    job_id = create_test_job(settings.database_url)
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id, "w1@host")
        assert job is not None and job.lease is not None
        lease, attempts = job.lease, job.attempts
    return JobReporter(settings, open_store(settings), job_id, lease, attempts)


def fail_as_the_reaper_would(settings: Settings, job_id: str) -> None:
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        reap(session, job, max_attempts=1)


def test_a_run_whose_job_ended_writes_and_uploads_nothing(settings: Settings) -> None:
    reporter = running_reporter(settings)
    reporter.epoch_done(1, {"loss": 0.5}, 1.0, 0.5, 1.0)
    fail_as_the_reaper_would(settings, reporter.job_id)
    assert reporter.should_stop() and reporter.stop_reason is StopReason.LOST
    with pytest.raises(LeaseLost):
        reporter.epoch_done(2, {"loss": 0.4}, 1.0, 1.0, 0.0)
    uploads: list[str] = []
    reporter.store.put_bytes = lambda key, *_: uploads.append(key)  # type: ignore[method-assign]
    with pytest.raises(LeaseLost):
        reporter.save_bytes("samples/final.png", b"png", "image/png")
    assert uploads == []


def test_an_error_met_after_the_job_ended_is_not_the_jobs_failure(settings: Settings) -> None:
    reporter = running_reporter(settings)
    fail_as_the_reaper_would(settings, reporter.job_id)
    # As when a frozen worker wakes to find its database session ended by the server.
    result = _handle_failure(settings, reporter, RuntimeError("server closed the connection"))
    assert result is RunResult.FINISHED and reporter.stop_reason is StopReason.LOST
    with session_scope(settings.database_url) as session:
        job = session.get(Job, reporter.job_id)
        assert job is not None and job.status == "failed"
        assert "worker lost" in (job.error or "") and "infrastructure" not in (job.error or "")


def test_an_error_of_a_held_job_is_retried(settings: Settings) -> None:
    reporter = running_reporter(settings)
    result = _handle_failure(settings, reporter, RuntimeError("S3 timed out"))
    assert result is RunResult.REQUEUED
    with session_scope(settings.database_url) as session:
        job = session.get(Job, reporter.job_id)
        assert job is not None and job.status == "queued" and job.lease is None
