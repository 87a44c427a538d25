"""The lifecycle module on SQLite and PostgreSQL: claims, transitions, the lease rule and the
change log."""

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.db.models import Artifact, Job, JobEvent, Metric
from shared.db.session import session_scope
from shared.job_state import IllegalTransition, JobStatus
from shared.jobs import (
    ChangeType,
    JobGone,
    NewJob,
    Reaped,
    claim,
    create_jobs,
    finish,
    hand_back,
    heartbeat,
    reap,
    record_artifact,
    record_epoch,
    record_start,
    request_cancel,
    standing,
)
from shared.settings import Settings
from shared.storage import StoredObject
from tests.conftest import create_test_job


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        from shared.db.migrate import upgrade

        database_url = Settings(data_dir=tmp_path).database_url
        upgrade(database_url)
        return database_url
    return str(request.getfixturevalue("pg_database"))


def claimed(url: str) -> tuple[str, str]:
    """A running job and its lease."""
    job_id = create_test_job(url)
    with session_scope(url) as session:
        job = claim(session, job_id, "w1@host")
        assert job is not None and job.lease is not None
        return job_id, job.lease


def epoch(
    url: str, job_id: str, lease: str, step: int, loss: float, replayed: bool = False
) -> None:
    with session_scope(url) as session:
        record_epoch(
            session,
            job_id,
            lease,
            step=step,
            values={"loss": loss},
            seconds=1.0,
            progress=step / 4,
            eta_seconds=3.0,
            replayed=replayed,
        )


def log_of(url: str, job_id: str) -> list[tuple[str, str | None]]:
    with session_scope(url) as session:
        rows = session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).all()
        return [(row.type, row.status) for row in rows]


def test_claim_takes_a_queued_job_once(url: str) -> None:
    job_id = create_test_job(url)
    with session_scope(url) as session:
        job = claim(session, job_id)
        assert job is not None and job.status == "running" and job.attempts == 1
    with session_scope(url) as session:
        assert claim(session, job_id) is None


def test_many_jobs_are_created_in_one_transaction(url: str) -> None:
    with session_scope(url) as session:
        ids = create_jobs(session, [NewJob("gan", "gan", "alice", {"steps": n}) for n in (1, 2)])
    with session_scope(url) as session:
        jobs = [session.get(Job, job_id) for job_id in ids]
        assert [job.params["steps"] for job in jobs if job] == [1, 2]
    assert all(log_of(url, job_id) == [("status", "queued")] for job_id in ids)


def test_an_ended_job_keeps_no_lease_and_refuses_every_write(url: str) -> None:
    job_id, lease = claimed(url)
    epoch(url, job_id, lease, 1, 0.5)
    with session_scope(url) as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        assert reap(session, job, max_attempts=1) is Reaped.FAILED  # as the reaper would
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.lease is None and job.status == "failed"
        assert not standing(session, job_id, lease).held
        assert not heartbeat(session, job_id, lease)
    with pytest.raises(JobGone):
        epoch(url, job_id, lease, 2, 0.4)
    stored = StoredObject(key="k", size=1, sha256="0" * 64)
    for write in (
        lambda s: record_artifact(s, job_id, lease, "model.keras", stored, "x"),
        lambda s: record_start(s, job_id, lease, 10, 1, 64),
    ):
        with pytest.raises(JobGone), session_scope(url) as session:
            write(session)
    with session_scope(url) as session:
        assert finish(session, job_id, lease, JobStatus.SUCCEEDED, None, {"x": 1}) is None
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "failed" and job.results == {}
        assert "worker lost" in (job.error or "")
        assert session.scalar(select(Artifact).where(Artifact.job_id == job_id)) is None
        steps = session.scalars(select(Metric.step).where(Metric.job_id == job_id)).all()
        assert steps == [1]


def test_a_requeued_job_refuses_its_old_lease_and_takes_the_new_one(url: str) -> None:
    job_id, old = claimed(url)
    with session_scope(url) as session:
        assert hand_back(session, job_id, old, "worker lost", counts_as_attempt=True)
        job = claim(session, job_id, "w2@host")
        assert job is not None and job.attempts == 2 and job.lease != old
        new = str(job.lease)
    with pytest.raises(JobGone):
        epoch(url, job_id, old, 1, 0.5)
    epoch(url, job_id, new, 1, 0.4)
    with session_scope(url) as session:
        rows = session.scalars(select(Metric).where(Metric.job_id == job_id)).all()
        assert [(row.attempt, row.values["loss"]) for row in rows] == [(2, 0.4)]


def test_terminal_is_final_and_a_cancel_of_an_ended_job_is_refused(url: str) -> None:
    job_id, lease = claimed(url)
    with session_scope(url) as session:
        assert request_cancel(session, job_id) is JobStatus.CANCELLING
        assert standing(session, job_id, lease).cancelling
    with session_scope(url) as session:
        # A success that meets a pending cancel: the user asked to stop.
        assert finish(session, job_id, lease, JobStatus.SUCCEEDED) is JobStatus.CANCELLED
    with session_scope(url) as session, pytest.raises(IllegalTransition):
        request_cancel(session, job_id)
    with session_scope(url) as session, pytest.raises(LookupError):
        request_cancel(session, "nope")


def test_a_replayed_epoch_is_recorded_only_if_absent(url: str) -> None:
    job_id, lease = claimed(url)
    epoch(url, job_id, lease, 1, 0.5)
    epoch(url, job_id, lease, 1, 0.9, replayed=True)
    epoch(url, job_id, lease, 2, 0.4, replayed=True)
    with session_scope(url) as session:
        rows = session.scalars(select(Metric).where(Metric.job_id == job_id)).all()
        assert sorted((row.step, row.values["loss"]) for row in rows) == [(1, 0.5), (2, 0.4)]


def test_every_change_of_a_finished_job_is_in_the_change_log_in_order(url: str) -> None:
    job_id, lease = claimed(url)
    with session_scope(url) as session:
        record_start(session, job_id, lease, 50_992, 1, 256)
    epoch(url, job_id, lease, 1, 0.5)
    with session_scope(url) as session:
        stored = StoredObject(key="k", size=3, sha256="0" * 64)
        record_artifact(session, job_id, lease, "samples/x.png", stored, "image/png")
    epoch(url, job_id, lease, 2, 0.4)
    with session_scope(url) as session:
        finish(session, job_id, lease, JobStatus.SUCCEEDED, None, {"test_mse": 0.02})
    M, P = ChangeType.METRICS.value, ChangeType.PROGRESS.value
    assert log_of(url, job_id) == [
        ("status", "queued"),
        ("status", "running"),
        (P, None),
        (M, None),
        (P, None),
        (ChangeType.ARTIFACT.value, None),
        (M, None),
        (P, None),
        ("status", "succeeded"),
    ]
    with session_scope(url) as session:
        rows = session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).all()
    assert rows[3].payload == {"step": 1, "values": {"loss": 0.5}, "seconds": 1.0, "attempt": 1}
    assert rows[5].payload == {
        "name": "samples/x.png",
        "size_bytes": 3,
        "content_type": "image/png",
    }
    assert rows[-1].payload == {"attempt": 1, "results": {"test_mse": 0.02}}
    assert [row.id for row in rows] == sorted(row.id for row in rows)


def test_a_cancel_and_a_finish_racing_do_not_overwrite_each_other(url: str) -> None:
    # The cancel reads the job as running and holds it a moment before writing; the worker's
    # finish, arriving meanwhile, must wait and then see the cancel (SQLite too).
    job_id, lease = claimed(url)
    cancel_holds = threading.Event()
    outcome: dict[str, object] = {}

    def cancel() -> None:
        with session_scope(url) as session:
            job = session.get(Job, job_id)  # warm the identity map, as a route would
            assert job is not None
            outcome["cancel"] = request_cancel_slowly(session, job_id, cancel_holds)

    def request_cancel_slowly(session, job_id, holds):  # type: ignore[no-untyped-def]
        from shared.jobs.changes import locked

        assert locked(session, job_id) is not None
        holds.set()
        time.sleep(0.5)
        return request_cancel(session, job_id)

    thread = threading.Thread(target=cancel)
    thread.start()
    assert cancel_holds.wait(10)
    with session_scope(url) as session:
        outcome["finish"] = finish(session, job_id, lease, JobStatus.SUCCEEDED, None, {"x": 1})
    thread.join(10)
    assert outcome == {"cancel": JobStatus.CANCELLING, "finish": JobStatus.CANCELLED}
    assert [s for t, s in log_of(url, job_id) if t == "status"] == [
        "queued",
        "running",
        "cancelling",
        "cancelled",
    ]
