"""``GET /v1/jobs/<id>/logs`` on SQLite and PostgreSQL: the whole job's log or one attempt's, read
on from an offset, with its attempts, truncation and whether more can come; tenancy and 422s."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, hand_back, record_log
from shared.settings import Settings
from tests.conftest import create_test_job

FIRST = "[gentrain] attempt 1\nepoch 1/3\n"
SECOND = "[gentrain] attempt 2\nresumed\nepoch 2/3\n"


def claimed(settings: Settings, job_id: str) -> str:
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id, "w1@host")
        assert job is not None and job.lease is not None
        return job.lease


def write(settings: Settings, job_id: str, lease: str, *chunks: str, cap: int = 10_000) -> None:
    for chunk in chunks:
        with session_scope(settings.database_url) as session:
            record_log(session, job_id, lease, chunk, cap)


def two_attempts(settings: Settings, owner: str = "") -> tuple[str, str]:
    """A job whose first attempt was lost after two chunks; its second runs (lease returned)."""
    job_id = create_test_job(settings.database_url, owner=owner)
    lease = claimed(settings, job_id)
    write(settings, job_id, lease, FIRST[:21], FIRST[21:])
    with session_scope(settings.database_url) as session:
        hand_back(session, job_id, lease, "worker lost", counts_as_attempt=True)
    lease = claimed(settings, job_id)
    write(settings, job_id, lease, SECOND[:29], SECOND[29:])
    return job_id, lease


def logs(client: FlaskClient, job_id: str, **query: Any) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}/logs", query_string=query)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.get_json()
    return body


def test_the_whole_log_and_each_attempts(client: FlaskClient, settings: Settings) -> None:
    job_id, lease = two_attempts(settings)
    whole = logs(client, job_id)
    assert whole == {
        "job_id": job_id,
        "attempts": [1, 2],
        "attempt": None,
        "offset": 0,
        "next_offset": len(FIRST + SECOND),
        "text": FIRST + SECOND,
        "truncated": False,
        "finished": False,
    }
    assert logs(client, job_id, attempt=1)["text"] == FIRST
    second = logs(client, job_id, attempt=2, offset=5)
    assert second["text"] == SECOND[5:] and second["next_offset"] == len(SECOND)
    # Read on from anywhere, inside a chunk or at a chunk's start; past the end is empty.
    for offset in (0, 3, 21, len(FIRST), len(FIRST) + 29, len(FIRST + SECOND), 10**6):
        page = logs(client, job_id, offset=offset)
        assert page["text"] == (FIRST + SECOND)[offset:]
        assert page["next_offset"] == offset + len(page["text"])
    none_yet = logs(client, job_id, attempt=3)
    assert none_yet["attempt"] == 3 and none_yet["text"] == "" and none_yet["attempts"] == [1, 2]
    with session_scope(settings.database_url) as session:
        finish(session, job_id, lease, JobStatus.SUCCEEDED, None, {})
    assert logs(client, job_id)["finished"] is True


def test_a_job_without_logs_and_a_truncated_one(client: FlaskClient, settings: Settings) -> None:
    job_id = create_test_job(settings.database_url)
    empty = logs(client, job_id)
    assert empty["attempts"] == [] and empty["text"] == "" and empty["next_offset"] == 0
    lease = claimed(settings, job_id)
    write(settings, job_id, lease, "a" * 1500, "b" * 10, cap=1024)
    full = logs(client, job_id)
    assert full["truncated"] is True and full["text"].startswith("a" * 1024 + "\n[gentrain]")
    assert "bbb" not in full["text"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"attempt": "0"}, "attempt"),
        ({"attempt": "one"}, "attempt"),
        ({"attempt": ""}, "attempt"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    client: FlaskClient, settings: Settings, query: dict[str, str], field: str
) -> None:
    job_id = create_test_job(settings.database_url)
    response = client.get(f"/v1/jobs/{job_id}/logs", query_string=query)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field


def test_another_owners_job_is_404(settings: Settings) -> None:
    secured = settings.model_copy(update={"auth": "required"})
    client = create_app(secured).test_client()
    _, alice = create_key(secured.database_url, "alice")
    _, bob = create_key(secured.database_url, "bob")
    job_id, _ = two_attempts(secured, owner="alice")
    mine = client.get(f"/v1/jobs/{job_id}/logs", headers={"Authorization": f"Bearer {alice}"})
    assert mine.status_code == 200 and mine.get_json()["text"] == FIRST + SECOND
    theirs = client.get(f"/v1/jobs/{job_id}/logs", headers={"Authorization": f"Bearer {bob}"})
    assert theirs.status_code == 404
    missing = client.get("/v1/jobs/nope/logs", headers={"Authorization": f"Bearer {alice}"})
    assert missing.status_code == 404
