import base64
import io
import json
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from shared.db.models import Job
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, hand_back, record_artifact, record_epoch
from shared.settings import Settings
from shared.storage import StoredObject


@pytest.fixture
def dataset(client: FlaskClient, mnist_path: Path) -> str:
    response = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(mnist_path.read_bytes()), "mnist.npz"), "name": "mnist"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201
    return "mnist"


def submit(client: FlaskClient, body: object, raw: str | None = None):
    if raw is not None:
        return client.post("/v1/jobs", data=raw, content_type="application/json")
    return client.post("/v1/jobs", json=body)


def count_jobs(settings: Settings) -> int:
    from sqlalchemy import func, select

    with session_scope(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def test_submit_queues_the_job_and_sends_only_its_id(
    client: FlaskClient, dataset: str, settings: Settings
) -> None:
    response = submit(client, {"kind": "autoencoder", "dataset": dataset, "params": {"epochs": 2}})
    assert response.status_code == 202, response.json
    job = response.json
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["params"]["epochs"] == 2
    assert job["params"]["batch_size"] == 256  # the seed's default filled in
    assert [h["status"] for h in job["history"]] == ["queued"]
    if settings.broker_url.startswith("redis"):
        messages = redis.Redis.from_url(settings.broker_url).lrange("train", 0, -1)
        assert len(messages) == 1
        body = json.loads(base64.b64decode(json.loads(messages[0])["body"]))
        assert body[0] == [job["id"]] and body[1] == {}
    else:
        files = list((settings.broker_dir / "in").glob("*.msg"))
        assert len(files) == 1


@pytest.mark.parametrize(
    ("body", "raw", "status", "field", "message"),
    [
        (None, "{not json", 400, None, "not valid JSON"),
        (None, "[1, 2]", 400, None, "JSON object"),
        ({"kind": "flow", "dataset": "mnist"}, None, 422, "kind", "unknown kind"),
        (
            {"kind": "autoencoder", "dataset": "mnist", "params": {"epohcs": 3}},
            None,
            422,
            "params.epohcs",
            "unknown parameter",
        ),
        (
            {"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 0}},
            None,
            422,
            "params.epochs",
            "at least 1",
        ),
        (
            {"kind": "autoencoder", "dataset": "mnist", "params": {"batch_size": 10**9}},
            None,
            422,
            "params.batch_size",
            "at most",
        ),
        (
            {"kind": "denoiser", "dataset": "mnist", "params": {"architecture": "resnet"}},
            None,
            422,
            "params.architecture",
            "one of 'dense' or 'conv'",
        ),
        (
            {"kind": "gan", "dataset": "mnist", "params": {"ema": 1.0}},
            None,
            422,
            "params.ema",
            "at most 0.9999",
        ),
        (
            {"kind": "vae", "dataset": "mnist", "params": {"latent_dim": 0}},
            None,
            422,
            "params.latent_dim",
            "at least 1",
        ),
        (
            {"kind": "vae", "dataset": "mnist", "params": {"beta": "high"}},
            None,
            422,
            "params.beta",
            "a number",
        ),
        ({"kind": "autoencoder", "dataset": "nope"}, None, 422, "dataset", "not found"),
        ({"kind": "autoencoder"}, None, 422, "dataset", "dataset"),
        (
            {"kind": "autoencoder", "dataset": "mnist", "queue": "fast"},
            None,
            422,
            "queue",
            "unknown field",
        ),
        ({"kind": "autoencoder", "dataset": "mnist", "priority": 10}, None, 422, "priority", "0-9"),
        (
            {"kind": "autoencoder", "dataset": "mnist", "priority": "9"},
            None,
            422,
            "priority",
            "integer",
        ),
        (
            {"kind": "autoencoder", "dataset": "mnist", "priority": True},
            None,
            422,
            "priority",
            "integer",
        ),
    ],
)
def test_bad_submissions_get_a_clear_4xx_and_store_nothing(
    client: FlaskClient,
    dataset: str,
    settings: Settings,
    body: object,
    raw: str | None,
    status: int,
    field: str | None,
    message: str,
) -> None:
    response = submit(client, body, raw)
    assert response.status_code == status
    error = response.json["error"]
    assert error["field"] == field and message in error["message"]
    assert count_jobs(settings) == 0


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post("/v1/jobs", data="kind=autoencoder")
    assert response.status_code == 415


def test_unknown_job_and_artifact_are_404(client: FlaskClient, dataset: str) -> None:
    assert client.get("/v1/jobs/doesnotexist").status_code == 404
    assert client.get("/v1/jobs/doesnotexist/metrics").status_code == 404
    assert client.post("/v1/jobs/doesnotexist/cancel").status_code == 404
    job_id = submit(client, {"kind": "autoencoder", "dataset": dataset}).json["id"]
    response = client.get(f"/v1/jobs/{job_id}/artifacts/../../etc/passwd")
    assert response.status_code == 404


def test_cancel_queued_is_immediate_and_cancelling_a_finished_job_is_409(
    client: FlaskClient, dataset: str
) -> None:
    job_id = submit(client, {"kind": "autoencoder", "dataset": dataset}).json["id"]
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202 and response.json["status"] == "cancelled"
    assert [h["status"] for h in response.json["history"]] == ["queued", "cancelled"]
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json["error"]["message"]


def test_cancel_running_moves_to_cancelling(
    client: FlaskClient, dataset: str, settings: Settings
) -> None:
    job_id = submit(client, {"kind": "autoencoder", "dataset": dataset}).json["id"]
    with session_scope(settings.database_url) as session:
        claim(session, job_id)
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202 and response.json["status"] == "cancelling"


def test_sampling_needs_a_succeeded_parent(
    client: FlaskClient, dataset: str, settings: Settings
) -> None:
    job_id = submit(client, {"kind": "autoencoder", "dataset": dataset}).json["id"]
    response = client.post(f"/v1/jobs/{job_id}/samples", json={"params": {"count": 4}})
    assert response.status_code == 409 and "queued" in response.json["error"]["message"]
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        finish(session, job_id, job.lease, JobStatus.SUCCEEDED)
    bad = client.post(f"/v1/jobs/{job_id}/samples", json={"params": {"count": 0}})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "params.count"
    ok = client.post(f"/v1/jobs/{job_id}/samples", json={"params": {"count": 4}})
    assert ok.status_code == 202
    assert ok.json["kind"] == "sample" and ok.json["parent_id"] == job_id


def test_list_filters_then_paginates(client: FlaskClient, dataset: str) -> None:
    ids = [submit(client, {"kind": "autoencoder", "dataset": dataset}).json["id"] for _ in range(5)]
    client.post(f"/v1/jobs/{ids[0]}/cancel")
    page = client.get("/v1/jobs?status=queued&limit=3").json
    assert page["total"] == 4 and len(page["items"]) == 3
    rest = client.get("/v1/jobs?status=queued&limit=3&offset=3").json
    assert len(rest["items"]) == 1
    listed = {item["id"] for item in page["items"] + rest["items"]}
    assert listed == set(ids[1:])
    assert client.get("/v1/jobs?kind=autoencoder").json["total"] == 5
    assert client.get("/v1/jobs?status=bogus").status_code == 422
    bad = client.get("/v1/jobs?limit=0")
    assert bad.status_code == 422 and bad.json["error"]["field"] == "limit"


def test_the_full_view_of_a_finished_job(
    client: FlaskClient, dataset: str, settings: Settings
) -> None:
    job_id = submit(client, {"kind": "autoencoder", "dataset": dataset}).json["id"]

    def epoch(lease: str, step: int, loss: float, seconds: float) -> None:
        with session_scope(settings.database_url) as session:
            record_epoch(
                session,
                job_id,
                lease,
                step=step,
                values={"loss": loss},
                seconds=seconds,
                progress=step / 2,
                eta_seconds=None,
            )

    # Epoch 2 trained by two attempts (the first one's worker died after it): the view shows
    # the second attempt's figures, one row per epoch.
    with session_scope(settings.database_url) as session:
        first = claim(session, job_id)
        assert first is not None and first.lease is not None
        lease = first.lease
    epoch(lease, 1, 0.30, 1.5)
    epoch(lease, 2, 0.20, 1.4)
    with session_scope(settings.database_url) as session:
        assert hand_back(session, job_id, lease, "worker lost", counts_as_attempt=True)
        second = claim(session, job_id)
        assert second is not None and second.lease is not None
        lease = second.lease
    epoch(lease, 2, 0.19, 1.3)
    with session_scope(settings.database_url) as session:
        stored = StoredObject(key=f"jobs/{job_id}/model.keras", size=123, sha256="ab" * 32)
        record_artifact(session, job_id, lease, "model.keras", stored, "application/octet-stream")
        finish(session, job_id, lease, JobStatus.SUCCEEDED)

    view = client.get(f"/v1/jobs/{job_id}").json
    assert view["status"] == "succeeded" and view["dataset"] == dataset
    statuses = [event["status"] for event in view["history"]]
    assert statuses == ["queued", "running", "queued", "running", "succeeded"]
    assert view["latest_metrics"]["step"] == 2
    assert view["latest_metrics"]["values"] == {"loss": 0.19}
    assert view["latest_metrics"]["at"].endswith("+00:00")
    [artifact] = view["artifacts"]
    assert artifact["name"] == "model.keras" and artifact["size_bytes"] == 123
    assert artifact["url"] == f"http://localhost/v1/jobs/{job_id}/artifacts/model.keras"
    assert view["finished_at"] is not None and view["created_at"].endswith("+00:00")

    metrics = client.get(f"/v1/jobs/{job_id}/metrics").json["items"]
    assert [(row["step"], row["values"]["loss"]) for row in metrics] == [(1, 0.30), (2, 0.19)]
    [listed] = client.get("/v1/jobs?status=succeeded").json["items"]
    assert listed["id"] == job_id and listed["dataset"] == dataset


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_unknown_route_and_method_are_json_errors(client: FlaskClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    response = client.delete("/v1/jobs")
    assert response.status_code == 405 and "error" in response.json
