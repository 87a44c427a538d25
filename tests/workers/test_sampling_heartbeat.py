"""A sampling job beats like a training job (issue 10): one that outlasts the heartbeat timeout
is alive, and the reaper leaves it running rather than re-queue it as a dead worker's."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.db.models import Artifact, Job
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import NewJob, claim, create_job, finish, record_artifact
from shared.kinds import SAMPLE_KIND
from shared.queue import make_celery
from shared.settings import Settings
from shared.storage import job_key, open_store
from tests.conftest import create_test_job
from workers.reaper import reap_once
from workers.runner import RunResult, run_sampling_job

pytest.importorskip("tensorflow")

SAMPLING_SECONDS = 3.0


def trained_parent(settings: Settings) -> str:
    """A succeeded GAN training job with a model artifact (its bytes never read here)."""
    url = settings.database_url
    parent = create_test_job(url, kind="gan")
    with session_scope(url) as session:
        job = claim(session, parent, "w1@host")
        assert job is not None and job.lease is not None
        lease = job.lease
    key = job_key(parent, "model.keras")
    stored = open_store(settings).put_bytes(key, b"a model", "application/octet-stream")
    with session_scope(url) as session:
        record_artifact(session, parent, lease, "model.keras", stored, "application/octet-stream")
        assert finish(session, parent, lease, JobStatus.SUCCEEDED) is JobStatus.SUCCEEDED
    return parent


def test_a_sampling_job_longer_than_the_heartbeat_timeout_is_not_reaped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.engine import sampling

    tuned = settings.model_copy(update={"heartbeat_seconds": 0.2, "heartbeat_timeout_seconds": 1.0})
    url = tuned.database_url
    parent = trained_parent(tuned)
    with session_scope(url) as session:
        new = NewJob(SAMPLE_KIND, "gan", "", {"count": 4, "seed": 0}, parent_id=parent)
        sample_id = create_job(session, new)

    def slow_sampling(*_: Any) -> dict[str, bytes]:
        time.sleep(SAMPLING_SECONDS)  # three heartbeat timeouts: a big grid, a slow machine
        return {"samples/grid.png": b"\x89PNG"}

    monkeypatch.setattr(sampling, "load_model", lambda key, fetch: object())
    monkeypatch.setattr(sampling, "sample_images", slow_sampling)
    outcome: list[RunResult] = []
    run = threading.Thread(target=lambda: outcome.append(run_sampling_job(tuned, sample_id, "w")))
    app = make_celery(tuned)
    reaped: list[str] = []
    run.start()
    while run.is_alive():
        report = reap_once(tuned, app)
        reaped += report.requeued + report.failed + report.cancelled
        time.sleep(0.2)
    run.join()

    assert reaped == [] and outcome == [RunResult.FINISHED]
    with session_scope(url) as session:
        job = session.get(Job, sample_id)
        assert job is not None and job.status == "succeeded" and job.attempts == 1
        names = [a.name for a in session.query(Artifact).filter_by(job_id=sample_id)]
        assert names == ["samples/grid.png"]
