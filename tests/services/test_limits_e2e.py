"""Request limits against a real ``gentrain api`` (gunicorn, 2 processes) on the full stack
(issue 10): concurrent submissions from many connections cannot overrun the rate limit, and a
chunked sampling body is read."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish
from tests.conftest import REDIS_URL
from tests.e2e.stack import FullStack

pytestmark = pytest.mark.e2e

RATE = 10
BODY = {"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 1}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[FullStack]:
    """``gentrain api`` with its defaults (2 processes), no worker, on the full stack."""
    stack = FullStack(
        tmp_path_factory.mktemp("limits"),
        s3_endpoint,
        broker_url=REDIS_URL,
        submit_rate_per_minute=RATE,
        sample_rate_per_minute=2,
    )
    try:
        stack.start("api", "api")
        stack.wait_ready()
        yield stack
    finally:
        stack.close()


def test_concurrent_submissions_on_two_processes_hold_the_rate_limit(
    api: FullStack, mnist_path: Path
) -> None:
    with mnist_path.open("rb") as handle:
        upload = requests.post(
            f"{api.url}/v1/datasets", files={"file": handle}, data={"name": "mnist"}, timeout=30
        )
    assert upload.status_code == 201, upload.text

    def submit(_: int) -> int:
        with requests.Session() as session:  # a connection of its own
            return session.post(f"{api.url}/v1/jobs", json=BODY, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(submit, range(30)))
    assert sorted(statuses) == [202] * RATE + [429] * (30 - RATE), api.logs()
    listed = requests.get(f"{api.url}/v1/jobs", timeout=30).json()
    assert listed["total"] == RATE


def test_a_chunked_sampling_body_is_read_by_the_real_server(api: FullStack) -> None:
    job_id = requests.get(f"{api.url}/v1/jobs?limit=1", timeout=30).json()["items"][0]["id"]
    with session_scope(api.settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        finish(session, job_id, job.lease, JobStatus.SUCCEEDED)
    url = f"{api.url}/v1/jobs/{job_id}/samples"
    headers = {"Content-Type": "application/json"}

    def chunks(body: bytes) -> Iterator[bytes]:  # requests sends a generator chunked
        yield from (body[:7], body[7:])

    bad = requests.post(url, data=chunks(b'{"params": {"count": 0}}'), headers=headers, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "params.count"
    big = chunks(b'{"params": {"pad": "' + b"x" * 100_000 + b'"}}')
    assert requests.post(url, data=big, headers=headers, timeout=30).status_code == 413
    ok = requests.post(url, data=chunks(b'{"params": {"count": 9}}'), headers=headers, timeout=30)
    assert ok.status_code == 202 and ok.json()["params"]["count"] == 9
    statuses = [requests.post(url, timeout=30).status_code for _ in range(2)]
    assert statuses == [202, 429]  # sample_rate_per_minute=2
