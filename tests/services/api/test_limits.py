"""Request and output limits (issue 10): JSON bodies, rates, quotas, pages, idempotency."""

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, record_artifact, record_epoch
from shared.settings import Settings
from shared.storage import StoredObject

AUTOENCODER = {"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 1}}


def limited(settings: Settings, **limits: Any) -> FlaskClient:
    return create_app(settings.model_copy(update=limits)).test_client()


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def upload(client: FlaskClient, data: bytes, name: str = "mnist", **headers: str) -> None:
    response = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(data), "d.npz"), "name": name},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert response.status_code == 201, response.json


@pytest.fixture
def mnist(mnist_path: Path) -> bytes:
    return mnist_path.read_bytes()


def succeeded_job(client: FlaskClient, settings: Settings) -> str:
    job_id: str = client.post("/v1/jobs", json=AUTOENCODER).json["id"]
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        finish(session, job_id, job.lease, JobStatus.SUCCEEDED)
    return job_id


def chunked(client: FlaskClient, path: str, body: bytes) -> Any:
    """POST ``body`` with no Content-Length, as a chunked request reaches the app."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_large_json_body_is_413_before_it_is_parsed(settings: Settings) -> None:
    client = limited(settings, max_json_bytes=4096)
    padding = {"kind": "autoencoder", "dataset": "mnist", "params": {"x" * 5000: 1}}
    response = client.post("/v1/jobs", json=padding)
    assert response.status_code == 413, response.json
    assert "4096" in response.json["error"]["message"]
    # Without a Content-Length the body is read only up to the limit, and refused the same.
    big = b'{"params": {"count": 4, "pad": "' + b"x" * 10_000 + b'"}}'
    assert chunked(client, "/v1/jobs/nope/samples", big).status_code == 413
    # The default allows 64 KiB: a 60 MB body is refused at once.
    response = limited(settings).post(
        "/v1/jobs", data=b"[" + b"0," * 100_000 + b"0]", content_type="application/json"
    )
    assert response.status_code == 413


@pytest.mark.parametrize("depth", [40, 1500])
def test_deeply_nested_json_is_a_400_not_a_500(client: FlaskClient, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    raw = '{"kind": "autoencoder", "dataset": "mnist", "params": {"x": ' + nested + "}}"
    response = client.post("/v1/jobs", data=raw, content_type="application/json")
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "malformed_json"
    assert "deeper than 32 levels" in response.json["error"]["message"]


def test_a_chunked_sampling_body_is_read(
    client: FlaskClient, settings: Settings, mnist: bytes
) -> None:
    upload(client, mnist)
    job_id = succeeded_job(client, settings)
    bad = chunked(client, f"/v1/jobs/{job_id}/samples", b'{"params": {"count": 0}}')
    assert bad.status_code == 422 and bad.json["error"]["field"] == "params.count"
    ok = chunked(client, f"/v1/jobs/{job_id}/samples", b'{"params": {"count": 9, "seed": 3}}')
    assert ok.status_code == 202 and ok.json["params"] == {"count": 9, "seed": 3}
    # An empty body still means the defaults.
    assert client.post(f"/v1/jobs/{job_id}/samples").json["params"]["count"] == 16


def test_sampling_is_rate_limited_per_owner(settings: Settings, mnist: bytes) -> None:
    client = limited(settings, sample_rate_per_minute=3)
    upload(client, mnist)
    job_id = succeeded_job(client, settings)
    statuses = [client.post(f"/v1/jobs/{job_id}/samples").status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    refused = client.post(f"/v1/jobs/{job_id}/samples")
    assert refused.json["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Sampling has its own budget: training submissions are still accepted.
    assert client.post("/v1/jobs", json=AUTOENCODER).status_code == 202


def test_concurrent_submissions_cannot_overrun_the_rate_limit(
    settings: Settings, mnist: bytes
) -> None:
    app: Flask = create_app(settings.model_copy(update={"submit_rate_per_minute": 10}))
    upload(app.test_client(), mnist)
    statuses: list[int] = []
    start = threading.Barrier(24)

    def submit() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(client.post("/v1/jobs", json=AUTOENCODER).status_code)

    threads = [threading.Thread(target=submit) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202] * 10 + [429] * 14
    assert app.test_client().get("/v1/jobs").json["total"] == 10


def test_queued_and_running_jobs_per_owner_are_capped(settings: Settings, mnist: bytes) -> None:
    secured = settings.model_copy(update={"auth": "required", "max_active_jobs_per_owner": 2})
    client = create_app(secured).test_client()
    _, alice = create_key(secured.database_url, "alice")
    _, bob = create_key(secured.database_url, "bob")
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    upload(client, mnist, **as_alice)
    upload(client, mnist, **as_bob)
    first = client.post("/v1/jobs", json=AUTOENCODER, headers=as_alice).json["id"]
    assert client.post("/v1/jobs", json=AUTOENCODER, headers=as_alice).status_code == 202
    refused = client.post("/v1/jobs", json=AUTOENCODER, headers=as_alice)
    assert refused.status_code == 429, refused.json
    assert refused.json["error"]["code"] == "too_many_active_jobs"
    assert "2 queued or running" in refused.json["error"]["message"]
    # Another owner is not held up; a finished job frees a place.
    assert client.post("/v1/jobs", json=AUTOENCODER, headers=as_bob).status_code == 202
    assert client.post(f"/v1/jobs/{first}/cancel", headers=as_alice).status_code == 202
    assert client.post("/v1/jobs", json=AUTOENCODER, headers=as_alice).status_code == 202


@pytest.mark.parametrize(
    ("kind", "params", "field", "message"),
    [
        ("gan", {"steps": 1_000_000, "steps_per_epoch": 1}, "steps_per_epoch", "at least 1000"),
        ("gan", {"steps": 2000, "sample_every": 1}, "sample_every", "at least 20"),
        ("gan", {"quality_samples": 1}, "quality_samples", "0 or at least 2"),
        ("autoencoder", {"epochs": 1000, "sample_every": 1}, "sample_every", "at least 10"),
        ("denoiser", {"epochs": 500, "sample_every": 4}, "sample_every", "at least 5"),
        ("classifier", {"epochs": 300, "sample_every": 2}, "sample_every", "at least 3"),
        ("vae", {"epochs": 1000, "sample_every": 2}, "sample_every", "at least 10"),
        ("vae", {"quality_samples": 1}, "quality_samples", "0 or at least 2"),
    ],
)
def test_per_job_output_is_bounded_by_the_run_length(
    client: FlaskClient, mnist: bytes, kind: str, params: dict[str, int], field: str, message: str
) -> None:
    upload(client, mnist)
    response = client.post("/v1/jobs", json={"kind": kind, "dataset": "mnist", "params": params})
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == f"params.{field}"
    assert message in response.json["error"]["message"]


def test_the_bounds_leave_the_seed_defaults_and_the_largest_runs_valid(
    client: FlaskClient, mnist: bytes
) -> None:
    upload(client, mnist)
    for kind, params in (
        ("gan", {}),
        ("gan", {"steps": 1_000_000, "steps_per_epoch": 1000, "sample_every": 10_000}),
        ("gan", {"quality_samples": 2}),
        ("autoencoder", {"epochs": 1000, "sample_every": 10}),
        ("classifier", {"sample_every": 1}),
        ("vae", {}),
        ("vae", {"quality_samples": 2, "epochs": 1000, "sample_every": 10}),
    ):
        body = {"kind": kind, "dataset": "mnist", "params": params}
        assert client.post("/v1/jobs", json=body).status_code == 202, (kind, params)


def test_a_gan_scored_on_a_one_image_test_split_is_refused(client: FlaskClient) -> None:
    digits = np.zeros((10, 28, 28), dtype=np.uint8)
    upload(client, npz(x_train=digits, x_test=digits[:1]), name="tiny")
    body = {"kind": "gan", "dataset": "tiny", "params": {"steps": 10}}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == "dataset"
    assert "x_test" in response.json["error"]["message"]
    body["params"] = {"steps": 10, "quality_samples": 0}
    assert client.post("/v1/jobs", json=body).status_code == 202


def test_an_idempotency_key_reused_with_another_body_is_422(
    client: FlaskClient, mnist: bytes
) -> None:
    upload(client, mnist)
    key = {"Idempotency-Key": "order-1"}
    first = client.post("/v1/jobs", json=AUTOENCODER, headers=key)
    assert first.status_code == 202
    again = client.post("/v1/jobs", json=AUTOENCODER, headers=key)
    assert again.status_code == 202 and again.json["id"] == first.json["id"]
    # The same request with a default spelled out is the same request.
    spelled = {**AUTOENCODER, "params": {"epochs": 1, "batch_size": 256}}
    assert client.post("/v1/jobs", json=spelled, headers=key).json["id"] == first.json["id"]
    other = {**AUTOENCODER, "params": {"epochs": 2}}
    refused = client.post("/v1/jobs", json=other, headers=key)
    assert refused.status_code == 422, refused.json
    assert refused.json["error"]["code"] == "idempotency_key_reused"
    assert refused.json["error"]["field"] == "Idempotency-Key"
    assert client.get("/v1/jobs").json["total"] == 1


def test_the_job_view_pages_its_artifacts_and_metrics_are_paged(
    settings: Settings, mnist: bytes
) -> None:
    client = limited(settings, job_view_artifacts=3)
    upload(client, mnist)
    job_id = client.post("/v1/jobs", json=AUTOENCODER).json["id"]
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        lease = job.lease
    for step in range(1, 8):
        with session_scope(settings.database_url) as session:
            record_epoch(
                session,
                job_id,
                lease,
                step=step,
                values={"loss": 1.0 / step},
                seconds=1.0,
                progress=step / 7,
                eta_seconds=None,
            )
            name = f"samples/epoch-{step:06d}.png"
            stored = StoredObject(key=f"jobs/{job_id}/{name}", size=10, sha256="ab" * 32)
            record_artifact(session, job_id, lease, name, stored, "image/png")

    view = client.get(f"/v1/jobs/{job_id}").json
    names = [artifact["name"] for artifact in view["artifacts"]]
    assert names == [f"samples/epoch-{step:06d}.png" for step in (5, 6, 7)]
    assert view["artifact_count"] == 7
    assert view["artifacts_url"].endswith(f"/v1/jobs/{job_id}/artifacts")
    page = client.get(f"/v1/jobs/{job_id}/artifacts?limit=4&offset=2").json
    assert page["total"] == 7 and page["limit"] == 4 and page["offset"] == 2
    assert [item["name"] for item in page["items"]] == [
        f"samples/epoch-{step:06d}.png" for step in (3, 4, 5, 6)
    ]
    first_url = f"/v1/jobs/{job_id}/artifacts/samples/epoch-000003.png"
    assert page["items"][0]["url"].endswith(first_url)

    metrics = client.get(f"/v1/jobs/{job_id}/metrics?limit=3").json
    assert [row["step"] for row in metrics["items"]] == [1, 2, 3]
    assert metrics["total"] == 7 and metrics["next_after_step"] == 3
    rest = client.get(f"/v1/jobs/{job_id}/metrics?limit=3&after_step=6").json
    assert [row["step"] for row in rest["items"]] == [7] and rest["next_after_step"] is None
    skipped = client.get(f"/v1/jobs/{job_id}/metrics?limit=2&offset=5").json
    assert [row["step"] for row in skipped["items"]] == [6, 7]
    too_many = client.get(f"/v1/jobs/{job_id}/metrics?limit=100000")
    assert too_many.status_code == 422 and too_many.json["error"]["field"] == "limit"
    assert client.get("/v1/jobs/nope/artifacts").status_code == 404


def test_an_admin_can_get_a_dataset_its_list_shows(settings: Settings, mnist: bytes) -> None:
    client = create_app(settings.model_copy(update={"auth": "required"})).test_client()
    _, alice = create_key(settings.database_url, "alice")
    _, bob = create_key(settings.database_url, "bob")
    _, admin = create_key(settings.database_url, "ops", is_admin=True)
    as_alice, as_bob = {"Authorization": f"Bearer {alice}"}, {"Authorization": f"Bearer {bob}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    upload(client, mnist, name="digits", **as_alice)
    listed = client.get("/v1/datasets", headers=as_admin).json["items"]
    assert [(item["name"], item["owner"]) for item in listed] == [("digits", "alice")]
    one = client.get("/v1/datasets/digits", headers=as_admin)
    assert one.status_code == 200 and one.json["owner"] == "alice"
    upload(client, mnist, name="digits", **as_bob)
    ambiguous = client.get("/v1/datasets/digits", headers=as_admin)
    assert ambiguous.status_code == 409 and ambiguous.json["error"]["field"] == "owner"
    by_owner = client.get("/v1/datasets/digits?owner=bob", headers=as_admin)
    assert by_owner.status_code == 200 and by_owner.json["owner"] == "bob"
    # An owner still sees only their own.
    assert client.get("/v1/datasets/digits?owner=bob", headers=as_alice).status_code == 404
    assert client.get("/v1/datasets/digits", headers=as_alice).json["owner"] == "alice"
