"""Request ids on the real app (SQLite and PostgreSQL with Redis and S3): a client's sane
``X-Request-ID`` comes back, anything else is replaced by a fresh id, on every response (errors,
refusals by auth and event streams included); and records logged while a request is served
carry its id as JSON lines."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from flask.testing import FlaskClient

from services.api import create_app
from shared.log_format import JsonFormatter, job_context
from shared.settings import Settings
from tests.conftest import create_test_job

FRESH = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("path", ["/healthz", "/v1/jobs", "/v1/jobs/nope", "/v1/jobs?limit=0"])
def test_a_sane_id_is_echoed_on_answers_and_errors(client: FlaskClient, path: str) -> None:
    for sent in ("req-1", "a3f9c2d1-55e0-4d2b-9c1e-0f8a7b6c5d4e", "trace:span/1+2=3_x.y"):
        response = client.get(path, headers={"X-Request-ID": sent})
        assert response.headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["", "a" * 129, "has space", "<script>", "é", "semi;colon"])
def test_anything_else_gets_a_fresh_id(client: FlaskClient, sent: str) -> None:
    response = client.get("/v1/jobs", headers={"X-Request-ID": sent})
    assert FRESH.fullmatch(response.headers["X-Request-ID"])


def test_every_request_without_one_gets_its_own(client: FlaskClient) -> None:
    ids = {client.get("/v1/jobs/nope").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5 and all(FRESH.fullmatch(i) for i in ids)


def test_refusals_by_auth_carry_the_id(settings: Settings) -> None:
    client = create_app(settings.model_copy(update={"auth": "required"})).test_client()
    response = client.get("/v1/jobs", headers={"X-Request-ID": "no-key-1"})
    assert response.status_code == 401 and response.headers["X-Request-ID"] == "no-key-1"


def test_event_streams_carry_the_id(client: FlaskClient, settings: Settings) -> None:
    job_id = create_test_job(settings.database_url)
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    # The job has ended: its stream replays what happened and ends.
    response = client.get(f"/v1/jobs/{job_id}/events", headers={"X-Request-ID": "stream-1"})
    assert response.mimetype == "text/event-stream"
    assert response.headers["X-Request-ID"] == "stream-1"
    assert "event: status" in response.get_data(as_text=True)


def test_records_logged_in_a_request_name_it(client: FlaskClient, settings: Settings) -> None:
    """A JSON handler on the root logger, as ``GENTRAIN_LOG_FORMAT=json`` gives the API: the
    warning the API logs when the broker refuses a job names the request it was logged in."""
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("api"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        from tests.services.ui.test_new_job_page import tiny_npz, upload

        test_client = app.test_client()
        upload(test_client, "digits", tiny_npz())
        body = {"kind": "autoencoder", "dataset": "digits"}
        response = test_client.post("/v1/jobs", json=body, headers={"X-Request-ID": "submit-7"})
        assert response.status_code == 202  # queued; the reaper sends it when the broker is back
    finally:
        root.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    refused = [e for e in entries if e["logger"] == "services.api.routes.jobs"]
    assert refused and refused[0]["request_id"] == "submit-7"
    assert refused[0]["role"] == "api" and refused[0]["level"] == "WARNING"
    assert {"time", "message"} <= set(refused[0])


def test_json_lines_name_the_job_and_attempt_and_keep_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("worker"))
    logger = logging.getLogger("gentrain.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with job_context("job-1", 2):
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed %s", "here", extra={"step": 3})
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["job_id"], inside["attempt"], inside["step"]) == ("job-1", 2, 3)
    assert inside["message"] == "failed here" and "ValueError: boom" in inside["exception"]
    assert inside["role"] == "worker" and inside["logger"] == "gentrain.test.json"
    assert "job_id" not in outside and "attempt" not in outside


def test_an_unexpected_error_is_logged_with_the_request_id(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that cannot be reached (nothing listens on port 1): a 500 whose traceback in
    the API's log names the id the client got back."""
    down = settings.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/gentrain"}
    )
    client = create_app(down).test_client()
    with caplog.at_level(logging.ERROR, logger="services.api.errors"):
        response = client.get("/v1/jobs", headers={"X-Request-ID": "broken-db-1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "broken-db-1"
    logged = [r for r in caplog.records if r.name == "services.api.errors"]
    assert logged and "(request broken-db-1)" in logged[0].getMessage()
    assert logged[0].exc_info is not None
