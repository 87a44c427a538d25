"""Keys follow where a request really comes from; keyless loopback mode checks Host (DNS
rebinding) and refuses cross-site posts (CSRF); links come from GENTRAIN_PUBLIC_URL."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, record_artifact
from shared.settings import Settings
from shared.storage import StoredObject
from tests.conftest import create_test_job, embedded_settings


@pytest.fixture
def local(tmp_path: Path) -> Settings:
    """The embedded default: bound to loopback, no keys."""
    return embedded_settings(tmp_path)


def client_for(settings: Settings, **environ: Any) -> FlaskClient:
    client = create_app(settings).test_client()
    client.environ_base.update(environ)
    return client


class FakeConnection:
    """The socket gunicorn hands over in ``gunicorn.socket``: where the client connected to."""

    def __init__(self, local_address: str) -> None:
        self.local_address = local_address

    def getsockname(self) -> tuple[str, int]:
        return (self.local_address, 8000)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["error"]["code"] == code


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_keyless_mode_answers_loopback_names(local: Settings, host: str) -> None:
    assert client_for(local).get("/v1/jobs", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io:8000"])
def test_keyless_mode_refuses_other_hosts(local: Settings, host: str) -> None:
    """DNS rebinding: a page on evil.example, its name now resolving to 127.0.0.1."""
    assert_error(client_for(local).get("/v1/jobs", headers={"Host": host}), 403, "forbidden_host")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:9999"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_keyless_mode_refuses_cross_site_posts(
    local: Settings, mnist_path: Path, headers: dict[str, str]
) -> None:
    client = client_for(local)
    upload = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(mnist_path.read_bytes()), "m.npz"), "name": "mnist"},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert_error(upload, 403, "cross_site_request")
    form = client.post(
        "/v1/jobs",
        data="kind=autoencoder&dataset=mnist",
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )
    assert_error(form, 403, "cross_site_request")
    assert client.get("/v1/datasets").json["items"] == []


def test_keyless_mode_takes_same_origin_and_non_browser_posts(
    local: Settings, mnist_path: Path
) -> None:
    client = client_for(local)
    for index, headers in enumerate(
        [{}, {"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"}]
    ):
        upload = client.post(
            "/v1/datasets",
            data={"file": (io.BytesIO(mnist_path.read_bytes()), "m.npz"), "name": f"m{index}"},
            content_type="multipart/form-data",
            headers=headers,
        )
        assert upload.status_code == 201, upload.json


@pytest.mark.parametrize(
    ("environ", "headers"),
    [
        ({"REMOTE_ADDR": "203.0.113.7"}, {}),  # gunicorn -b 0.0.0.0, a client elsewhere
        ({"gunicorn.socket": FakeConnection("10.0.0.5")}, {}),  # arrived on a public address
        ({}, {"X-Forwarded-For": "203.0.113.7"}),  # a reverse proxy on 127.0.0.1
        ({}, {"Forwarded": "for=203.0.113.7"}),
        ({}, {"X-Real-IP": "203.0.113.7"}),
    ],
)
def test_a_request_not_from_loopback_needs_a_key_whatever_the_setting(
    local: Settings, environ: dict[str, Any], headers: dict[str, str]
) -> None:
    """GENTRAIN_API_HOST says loopback; the request says otherwise: the request wins."""
    assert local.loopback_only and not local.auth_required
    job_id = create_test_job(local.database_url, owner="alice")
    client = client_for(local, **environ)
    assert_error(client.get(f"/v1/jobs/{job_id}", headers=headers), 401, "unauthorized")
    assert_error(client.get("/v1/jobs", headers=headers), 401, "unauthorized")
    _, key = create_key(local.database_url, "alice")
    with_key = client.get(
        f"/v1/jobs/{job_id}", headers={**headers, "Authorization": f"Bearer {key}"}
    )
    assert with_key.status_code == 200
    # The probes stay open, as with keys.
    assert client.get("/healthz", headers=headers).status_code == 200


def test_a_loopback_connection_stays_keyless(local: Settings) -> None:
    client = client_for(local, **{"gunicorn.socket": FakeConnection("127.0.0.1")})
    assert client.get("/v1/jobs").status_code == 200


def _job_with_artifact(settings: Settings, owner: str = "") -> str:
    job_id = create_test_job(settings.database_url, owner=owner)
    with session_scope(settings.database_url) as session:
        claimed = claim(session, job_id)
        assert claimed is not None and claimed.lease is not None
        stored = StoredObject(key=f"jobs/{job_id}/model.keras", size=3, sha256="ab" * 32)
        record_artifact(session, job_id, claimed.lease, "model.keras", stored, "x/y")
        finish(session, job_id, claimed.lease, JobStatus.SUCCEEDED)
    return job_id


def test_links_come_from_the_public_url_not_the_host_header(local: Settings) -> None:
    public = local.model_copy(update={"public_url": "https://gentrain.example.com/"})
    job_id = _job_with_artifact(public)
    [artifact] = client_for(public).get(f"/v1/jobs/{job_id}").json["artifacts"]
    assert artifact["url"] == (
        f"https://gentrain.example.com/v1/jobs/{job_id}/artifacts/model.keras"
    )

    # With keys and no public URL: root-relative links, whatever Host a client sends.
    secured = local.model_copy(update={"auth": "required"})
    _, key = create_key(secured.database_url, "ops", is_admin=True)
    view = client_for(secured).get(
        f"/v1/jobs/{job_id}",
        headers={"Authorization": f"Bearer {key}", "Host": "attacker.example"},
    )
    assert view.json["artifacts"][0]["url"] == f"/v1/jobs/{job_id}/artifacts/model.keras"

    # Keyless on loopback: the request's own (checked) host.
    [artifact] = (
        client_for(local)
        .get(f"/v1/jobs/{job_id}", headers={"Host": "127.0.0.1:8000"})
        .json["artifacts"]
    )
    assert artifact["url"] == f"http://127.0.0.1:8000/v1/jobs/{job_id}/artifacts/model.keras"


def test_werkzeug_errors_are_json(local: Settings) -> None:
    client = client_for(local)
    assert_error(client.get("/no/such/path"), 404, "not_found")
    assert_error(client.get("/v1//jobs"), 404, "not_found")  # was a 308 with an HTML body
    assert_error(client.delete("/healthz"), 405, "method_not_allowed")
    big = client.post(
        "/v1/datasets",
        data=b"x" * (local.max_upload_bytes + 1),
        content_type="application/octet-stream",
    )
    assert big.status_code == 413 and big.is_json
