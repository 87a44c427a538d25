"""GET /metrics: requests counted by route template, jobs and storage as the database holds
them, queue lengths from the broker, and an admin key needed from other machines."""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from services.api import create_app
from shared.api_keys import create_key
from shared.db.models import Job
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, heartbeat
from shared.settings import Settings
from shared.storage import open_store
from shared.usage import owner_usage
from tests.conftest import create_test_job
from workers.job_reporter import JobReporter

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient, **kwargs: object) -> Samples:
    """Every sample of a scrape, by name and sorted labels."""
    response = client.get("/metrics", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def upload(client: FlaskClient, mnist_path: Path, **headers: str) -> None:
    data = {"file": (io.BytesIO(mnist_path.read_bytes()), "m.npz"), "name": "mnist"}
    response = client.post(
        "/v1/datasets", data=data, content_type="multipart/form-data", headers=headers
    )
    assert response.status_code == 201, response.json


def test_requests_are_counted_by_route_template(client: FlaskClient) -> None:
    route = ("gentrain_http_requests_total",)
    labels = {"route": "/v1/jobs/<job_id>", "method": "GET", "status": "404"}
    before = scrape(client)
    missing = [uuid.uuid4().hex for _ in range(3)]
    for job_id in missing:
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    after = scrape(client)
    assert value(after, *route, **labels) - value(before, *route, **labels) == 3
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, *route, **unmatched) - value(before, *route, **unmatched) == 1
    count = ("gentrain_http_request_duration_seconds_count",)
    template = {"route": "/v1/jobs/<job_id>", "method": "GET"}
    assert value(after, *count, **template) - value(before, *count, **template) == 3
    assert not any(job_id in text for job_id in missing)  # ids never become series


def test_jobs_gauges_queues_and_storage_match_the_database(
    client: FlaskClient, settings: Settings, mnist_path: Path
) -> None:
    upload(client, mnist_path)
    submitted = [client.post("/v1/jobs", json={"kind": "autoencoder", "dataset": "mnist"})]
    submitted.append(client.post("/v1/jobs", json={"kind": "classifier", "dataset": "mnist"}))
    assert all(response.status_code == 202 for response in submitted)
    others = [create_test_job(settings.database_url, "gan", owner="bob") for _ in range(3)]
    store = open_store(settings)
    ended = {others[0]: JobStatus.SUCCEEDED, others[1]: JobStatus.FAILED}
    for job_id, status in ended.items():
        with session_scope(settings.database_url) as session:
            job = claim(session, job_id, "w@test")
            assert job is not None
            lease, attempt = str(job.lease), job.attempts
        JobReporter(settings, store, job_id, lease, attempt).save_bytes(
            "model.keras", b"x" * 1234, "application/octet-stream"
        )
        with session_scope(settings.database_url) as session:
            assert finish(session, job_id, lease, status, None, {}) is status
    with session_scope(settings.database_url) as session:
        running = claim(session, others[2], "w@host")
        assert running is not None
        assert heartbeat(session, others[2], str(running.lease))

    samples = scrape(client)

    with session_scope(settings.database_url) as session:
        rows = session.execute(
            select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
        )
        expected = {(kind, status): count for kind, status, count in rows}
        attempts = dict(
            session.execute(select(Job.kind, func.sum(Job.attempts)).group_by(Job.kind)).all()
        )
        usage = {owner: owner_usage(session, owner) for owner in ("", "bob")}
    found = {
        (dict(labels)["kind"], dict(labels)["status"]): count
        for (name, labels), count in samples.items()
        if name == "gentrain_jobs"
    }
    assert found == expected
    assert found[("autoencoder", "queued")] == 1 and found[("gan", "running")] == 1
    summed: Counter[str] = Counter()
    for (name, labels), count in samples.items():
        if name == "gentrain_job_attempts_total":
            summed[dict(labels)["kind"]] += int(count)
    assert dict(summed) == {kind: int(total) for kind, total in attempts.items()}
    # Two jobs wait on the training queue: their messages are on the broker.
    assert value(samples, "gentrain_queue_messages", queue="train") == 2
    assert value(samples, "gentrain_queue_messages", queue="sample") == 0
    assert value(samples, "gentrain_broker_up") == 1
    assert value(samples, "gentrain_queued_job_oldest_age_seconds", queue="train") > 0
    assert value(samples, "gentrain_queued_job_oldest_age_seconds", queue="sample") == 0
    beats = [
        dict(labels)
        for (name, labels) in samples
        if name == "gentrain_running_job_heartbeat_age_seconds"
    ]
    assert beats == [{"job_id": others[2], "kind": "gan", "worker": "w@host"}]
    for owner, stored in usage.items():
        assert value(samples, "gentrain_storage_bytes", owner=owner, type="datasets") == (
            stored.dataset_bytes
        )
        assert value(samples, "gentrain_storage_bytes", owner=owner, type="artifacts") == (
            stored.artifact_bytes
        )
    assert usage["bob"].artifact_bytes == 2 * 1234


def test_metrics_need_an_admin_key_from_other_machines(settings: Settings) -> None:
    public = settings.model_copy(update={"api_host": "0.0.0.0"})  # keys required (auto)
    _, alice = create_key(public.database_url, "alice")
    _, ops = create_key(public.database_url, "ops", is_admin=True)
    remote = create_app(public).test_client()
    remote.environ_base.update({"REMOTE_ADDR": "10.1.2.3"})
    assert remote.get("/metrics").status_code == 401
    assert remote.get("/metrics", headers={"Authorization": f"Bearer {alice}"}).status_code == 403
    scrape(remote, headers={"Authorization": f"Bearer {ops}"})
    # From this machine (a Prometheus beside the API) no key is needed...
    local = create_app(public).test_client()
    scrape(local)
    # ...but a proxy on loopback forwarding someone else's request is not this machine.
    forwarded = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 401
    # Only /metrics: the rest of the API still wants a key from loopback.
    assert local.get("/v1/jobs").status_code == 401
    # With keys required for everything, loopback too.
    strict = create_app(public.model_copy(update={"auth": "required"})).test_client()
    assert strict.get("/metrics").status_code == 401
    scrape(strict, headers={"Authorization": f"Bearer {ops}"})


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_a_scrape_passes_promtool_check_metrics(client: FlaskClient) -> None:
    client.get("/v1/jobs")
    text = client.get("/metrics").get_data(as_text=True)
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
