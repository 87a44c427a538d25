"""API keys and owners: each key sees only its own; no key, a wrong or revoked key is 401."""

import io
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from services.api import auth, create_app
from shared.api_keys import create_key, revoke_key
from shared.settings import Settings


@pytest.fixture
def secured(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth": "required", "submit_rate_per_minute": 5})


@pytest.fixture
def client(secured: Settings) -> FlaskClient:
    return create_app(secured).test_client()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(client: FlaskClient, key: str, mnist: bytes, name: str = "mnist") -> None:
    response = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(mnist), "m.npz"), "name": name},
        content_type="multipart/form-data",
        headers=bearer(key),
    )
    assert response.status_code == 201, response.json


def submit(client: FlaskClient, key: str, **headers: str):
    body = {"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 1}}
    return client.post("/v1/jobs", json=body, headers={**bearer(key), **headers})


def test_each_owner_sees_only_their_own(
    client: FlaskClient, secured: Settings, mnist_path: Path
) -> None:
    _, alice = create_key(secured.database_url, "alice")
    _, bob = create_key(secured.database_url, "bob")
    _, admin = create_key(secured.database_url, "ops", is_admin=True)
    mnist = mnist_path.read_bytes()
    upload(client, alice, mnist)
    upload(client, bob, mnist)  # the same name in another tenancy is fine
    job = submit(client, alice).json["id"]

    assert client.get(f"/v1/jobs/{job}", headers=bearer(alice)).status_code == 200
    for path in (
        f"/v1/jobs/{job}",
        f"/v1/jobs/{job}/metrics",
        f"/v1/jobs/{job}/artifacts/model.keras",
    ):
        response = client.get(path, headers=bearer(bob))
        assert response.status_code == 404, path
    assert client.post(f"/v1/jobs/{job}/cancel", headers=bearer(bob)).status_code == 404
    assert client.post(f"/v1/jobs/{job}/samples", json={}, headers=bearer(bob)).status_code == 404
    assert client.get("/v1/jobs", headers=bearer(bob)).json["total"] == 0
    assert [d["name"] for d in client.get("/v1/datasets", headers=bearer(bob)).json["items"]] == [
        "mnist"
    ]
    assert client.get("/v1/jobs", headers=bearer(alice)).json["total"] == 1
    assert client.get("/v1/jobs", headers=bearer(admin)).json["total"] == 1
    assert len(client.get("/v1/datasets", headers=bearer(admin)).json["items"]) == 2
    # Bob cannot train on Alice's dataset by naming it: his own "mnist" is used.
    bobs_job = submit(client, bob).json
    assert bobs_job["dataset"] == "mnist"
    assert client.get(f"/v1/jobs/{bobs_job['id']}", headers=bearer(alice)).status_code == 404


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer gt_wrong"}, {"X-API-Key": "nope"}]
)
def test_missing_or_wrong_keys_are_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/jobs", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_401_at_once_without_the_key_cache(secured: Settings) -> None:
    client = create_app(secured.model_copy(update={"api_key_cache_seconds": 0})).test_client()
    row, key = create_key(secured.database_url, "carol")
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 200
    assert revoke_key(secured.database_url, row.id)
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 401


def test_a_revoked_key_stops_working_once_its_cache_entry_expires(
    client: FlaskClient, secured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert secured.api_key_cache_seconds == 10
    row, key = create_key(secured.database_url, "dave")
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 200
    assert revoke_key(secured.database_url, row.id)
    # Remembered as verified: the documented window in which a revoked key still works.
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 200
    now = time.monotonic()
    monkeypatch.setattr(auth.time, "monotonic", lambda: now + 10.5)
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 401


def test_unknown_keys_are_not_remembered(client: FlaskClient, secured: Settings) -> None:
    row, key = create_key(secured.database_url, "erin")
    assert revoke_key(secured.database_url, row.id)
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 401
    _, fresh = create_key(secured.database_url, "erin")
    assert client.get("/v1/jobs", headers=bearer(fresh)).status_code == 200
    assert client.get("/v1/jobs", headers=bearer(key)).status_code == 401


def test_probes_need_no_key(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_keys_are_stored_hashed(secured: Settings) -> None:
    from sqlalchemy import select

    from shared.db.models import ApiKey
    from shared.db.session import session_scope

    _, key = create_key(secured.database_url, "dave")
    with session_scope(secured.database_url) as session:
        rows = session.scalars(select(ApiKey)).all()
    assert all(key not in (row.digest, row.prefix) for row in rows)
    assert all(len(row.digest) == 64 for row in rows)


def test_idempotency_key_returns_the_same_job(
    client: FlaskClient, secured: Settings, mnist_path: Path
) -> None:
    _, key = create_key(secured.database_url, "erin")
    upload(client, key, mnist_path.read_bytes())
    first = submit(client, key, **{"Idempotency-Key": "nightly-42"})
    second = submit(client, key, **{"Idempotency-Key": "nightly-42"})
    assert first.status_code == second.status_code == 202
    assert first.json["id"] == second.json["id"]
    other = submit(client, key, **{"Idempotency-Key": "nightly-43"})
    assert other.json["id"] != first.json["id"]
    assert client.get("/v1/jobs", headers=bearer(key)).json["total"] == 2
    bad = submit(client, key, **{"Idempotency-Key": "x" * 200})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "Idempotency-Key"


def test_submissions_are_rate_limited_per_key(
    client: FlaskClient, secured: Settings, mnist_path: Path
) -> None:
    _, frank = create_key(secured.database_url, "frank")
    _, grace = create_key(secured.database_url, "grace")
    upload(client, frank, mnist_path.read_bytes())
    upload(client, grace, mnist_path.read_bytes())
    statuses = [submit(client, frank).status_code for _ in range(6)]
    assert statuses == [202] * 5 + [429]
    limited = submit(client, frank)
    assert limited.headers["Retry-After"] == "60"
    assert submit(client, grace).status_code == 202  # another key has its own budget


def test_max_runtime_is_capped(client: FlaskClient, secured: Settings, mnist_path: Path) -> None:
    _, key = create_key(secured.database_url, "heidi")
    upload(client, key, mnist_path.read_bytes())
    body = {"kind": "autoencoder", "dataset": "mnist", "params": {"max_runtime_seconds": 10**8}}
    response = client.post("/v1/jobs", json=body, headers=bearer(key))
    assert response.status_code == 422
    assert response.json["error"]["field"] == "params.max_runtime_seconds"
