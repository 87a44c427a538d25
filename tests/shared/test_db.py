from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from shared.db.models import Job, JobEvent, Metric
from shared.db.session import get_engine, session_scope
from shared.job_records import claim, record_metric, transition
from shared.job_state import IllegalTransition, JobStatus
from shared.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        from shared.db.migrate import upgrade

        url = Settings(data_dir=tmp_path).database_url
        upgrade(url)
        return url
    return str(request.getfixturevalue("pg_database"))


def make_job(url: str) -> str:
    with session_scope(url) as session:
        job = Job(kind="autoencoder", model_kind="autoencoder", params={})
        session.add(job)
        session.flush()
        session.add(JobEvent(job_id=job.id, status="queued"))
        return job.id


def test_migrations_create_every_table(database_url: str) -> None:
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {"jobs", "job_events", "metrics", "artifacts", "datasets", "alembic_version"} <= tables


def test_claim_takes_a_queued_job_once(database_url: str) -> None:
    job_id = make_job(database_url)
    with session_scope(database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.status == "running" and job.attempts == 1
    with session_scope(database_url) as session:
        assert claim(session, job_id) is None


def test_transitions_are_stamped_and_terminal_is_final(database_url: str) -> None:
    job_id = make_job(database_url)
    with session_scope(database_url) as session:
        claim(session, job_id)
    with session_scope(database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        transition(session, job, JobStatus.FAILED, "boom")
    with session_scope(database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.finished_at is not None and job.error == "boom"
        with pytest.raises(IllegalTransition):
            transition(session, job, JobStatus.RUNNING)
        statuses = [
            e.status
            for e in session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
            )
        ]
        assert statuses == ["queued", "running", "failed"]


def test_a_step_is_recorded_once(database_url: str) -> None:
    job_id = make_job(database_url)
    for loss in (0.5, 0.4):
        with session_scope(database_url) as session:
            record_metric(session, job_id, 1, {"loss": loss}, 1.0)
    with session_scope(database_url) as session:
        rows = session.scalars(select(Metric).where(Metric.job_id == job_id)).all()
        assert [(r.step, r.values["loss"]) for r in rows] == [(1, 0.4)]
