"""A job's stored log on PostgreSQL: chunks as ``log`` changes with per-attempt and per-job
offsets, the per-job cap with one truncation notice, and the lease rule."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from shared.db.models import Job, JobEvent
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import (
    LOG_TRUNCATED,
    ChangeType,
    JobGone,
    LogWrite,
    claim,
    finish,
    hand_back,
    record_log,
)
from tests.conftest import create_test_job


def claimed(url: str, job_id: str) -> str:
    with session_scope(url) as session:
        job = claim(session, job_id, "w1@host")
        assert job is not None and job.lease is not None
        return job.lease


def log(url: str, job_id: str, lease: str, text: str, cap: int = 10_000) -> LogWrite:
    with session_scope(url) as session:
        return record_log(session, job_id, lease, text, cap)


def chunks(url: str, job_id: str) -> list[dict[str, Any]]:
    with session_scope(url) as session:
        query = (
            select(JobEvent.payload)
            .where(JobEvent.job_id == job_id, JobEvent.type == ChangeType.LOG.value)
            .order_by(JobEvent.id)
        )
        return [dict(payload) for payload in session.scalars(query)]


def test_offsets_run_per_attempt_and_per_job(pg_database: str) -> None:
    job_id = create_test_job(pg_database)
    first = claimed(pg_database, job_id)
    log(pg_database, job_id, first, "header 1\n")
    log(pg_database, job_id, first, "epoch 1/3\n")
    with session_scope(pg_database) as session:
        assert hand_back(session, job_id, first, "worker lost", counts_as_attempt=True)
    second = claimed(pg_database, job_id)
    written = log(pg_database, job_id, second, "header 2\n")
    assert written == LogWrite(2, 0, 19, "header 2\n", truncated=False)
    log(pg_database, job_id, second, "epoch 2/3\n")
    assert chunks(pg_database, job_id) == [
        {"attempt": 1, "offset": 0, "job_offset": 0, "text": "header 1\n"},
        {"attempt": 1, "offset": 9, "job_offset": 9, "text": "epoch 1/3\n"},
        {"attempt": 2, "offset": 0, "job_offset": 19, "text": "header 2\n"},
        {"attempt": 2, "offset": 9, "job_offset": 28, "text": "epoch 2/3\n"},
    ]


def test_the_cap_cuts_once_with_a_notice_and_drops_the_rest(pg_database: str) -> None:
    job_id = create_test_job(pg_database)
    lease = claimed(pg_database, job_id)
    assert not log(pg_database, job_id, lease, "a" * 60, cap=100).truncated
    crossing = log(pg_database, job_id, lease, "b" * 60, cap=100)
    notice = LOG_TRUNCATED.format(cap=100)
    assert crossing.truncated and crossing.text == "b" * 40 + "\n" + notice
    dropped = log(pg_database, job_id, lease, "c" * 10, cap=100)
    assert dropped.truncated and dropped.text == ""
    stored = chunks(pg_database, job_id)
    assert len(stored) == 2 and stored[-1]["truncated"] is True
    assert "".join(c["text"] for c in stored) == "a" * 60 + "b" * 40 + "\n" + notice


def test_a_job_at_exactly_its_cap_gets_the_notice_with_the_next_chunk(pg_database: str) -> None:
    job_id = create_test_job(pg_database)
    lease = claimed(pg_database, job_id)
    assert not log(pg_database, job_id, lease, "a" * 100, cap=100).truncated
    assert log(pg_database, job_id, lease, "b", cap=100).text == LOG_TRUNCATED.format(cap=100)
    assert log(pg_database, job_id, lease, "c", cap=100).text == ""
    assert len(chunks(pg_database, job_id)) == 2


def test_no_chunk_is_stored_once_the_job_has_ended(pg_database: str) -> None:
    job_id = create_test_job(pg_database)
    lease = claimed(pg_database, job_id)
    log(pg_database, job_id, lease, "last words\n")
    with session_scope(pg_database) as session:
        finish(session, job_id, lease, JobStatus.FAILED, "boom")
    with pytest.raises(JobGone):
        log(pg_database, job_id, lease, "too late\n")
    assert [c["text"] for c in chunks(pg_database, job_id)] == ["last words\n"]
    with session_scope(pg_database) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "failed"


def test_another_lease_cannot_write_the_log(pg_database: str) -> None:
    job_id = create_test_job(pg_database)
    claimed(pg_database, job_id)
    with pytest.raises(JobGone):
        log(pg_database, job_id, "not-the-lease", "forged\n")
    assert chunks(pg_database, job_id) == []
