"""The CLI pages through a job's artifacts and metrics (issue 10): `gentrain status
--all-artifacts`, `gentrain metrics`, `gentrain download` and `gentrain datasets show`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from services.api import create_app
from services.cli import client_commands
from services.cli.client import ApiClient
from services.cli.main import cli
from shared.db.session import session_scope
from shared.jobs import claim, record_artifact, record_epoch
from shared.settings import Settings
from shared.storage import StoredObject


class _Answer:
    """What ApiClient reads of a requests.Response, from a Flask test response."""

    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self.text = response.get_data(as_text=True)

    def json(self) -> Any:
        return json.loads(self.text)


class _ThroughTestClient:
    """A stand-in for requests.Session that sends every request to a Flask test client."""

    def __init__(self, client: FlaskClient) -> None:
        self.client, self.headers = client, {}
        self.paths: list[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        path = urlsplit(url).path
        self.paths.append(f"{path}?{kwargs.get('params') or ''}")
        response = self.client.open(
            path, method=method, query_string=kwargs.get("params"), json=kwargs.get("json")
        )
        return _Answer(response)


@pytest.fixture
def api(settings: Settings, mnist_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    limited = settings.model_copy(update={"job_view_artifacts": 2, "max_page_size": 10})
    test_client = create_app(limited).test_client()
    upload = {"file": (io.BytesIO(mnist_path.read_bytes()), "m.npz"), "name": "mnist"}
    assert test_client.post("/v1/datasets", data=upload).status_code == 201
    body = {"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 30}}
    job_id = test_client.post("/v1/jobs", json=body).json["id"]
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        lease = job.lease
    with session_scope(settings.database_url) as session:
        for step in range(1, 26):
            record_epoch(
                session, job_id, lease, step=step, values={"loss": step / 100}, seconds=1.0,
                progress=step / 30, eta_seconds=None,
            )  # fmt: skip
        for name in ("checkpoints/latest.npz", *(f"samples/epoch-{n:06d}.png" for n in (5, 10))):
            stored = StoredObject(key=f"jobs/{job_id}/{name}", size=3, sha256="ab" * 32)
            record_artifact(session, job_id, lease, name, stored, "image/png")
    transport = _ThroughTestClient(test_client)

    def client(_api_url: str | None) -> ApiClient:
        api_client = ApiClient("http://api")
        api_client.http = transport  # type: ignore[assignment]
        return api_client

    monkeypatch.setattr(client_commands, "_client", client)
    return job_id, transport


def test_status_shows_the_newest_artifacts_and_pages_through_all(api: Any) -> None:
    job_id, _ = api
    result = CliRunner().invoke(cli, ["status", job_id])
    assert result.exit_code == 0, result.output
    assert "2 newest of 3 artifacts" in result.output
    every = CliRunner().invoke(cli, ["status", job_id, "--all-artifacts", "-o", "json"])
    assert every.exit_code == 0, every.output
    shown = json.loads(every.stdout)
    assert [item["name"] for item in shown["artifacts"]][0] == "checkpoints/latest.npz"
    assert len(shown["artifacts"]) == 3


def test_metrics_pages_through_every_row(api: Any) -> None:
    job_id, transport = api
    result = CliRunner().invoke(cli, ["metrics", job_id])
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["STEP", "LOSS", "SECONDS"]
    assert [int(line.split()[0]) for line in lines] == list(range(1, 26))
    assert sum("/metrics" in path for path in transport.paths) == 3  # pages of at most 10
    later = CliRunner().invoke(
        cli, ["metrics", job_id, "--after-step", "20", "--limit", "2", "-o", "json"]
    )
    assert [row["step"] for row in json.loads(later.stdout)] == [21, 22]
