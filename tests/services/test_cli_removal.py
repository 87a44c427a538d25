"""`gentrain delete`, `gentrain datasets delete` and `gentrain usage` against a real API served
over HTTP on loopback (issue 13)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from services.api import create_app
from services.cli.main import cli
from shared.settings import Settings
from shared.storage import job_prefix, open_store
from tests.conftest import free_port


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


def gentrain(api_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--api-url", api_url], env={"GENTRAIN_API_KEY": ""})
    return result.exit_code, result.output


def test_delete_commands(api_url: str, settings: Settings, mnist_path: Path) -> None:
    code, out = gentrain(api_url, "datasets", "upload", str(mnist_path), "--name", "mnist")
    assert code == 0, out
    code, job_id = gentrain(
        api_url, "submit", "autoencoder", "--dataset", "mnist", "-p", "epochs=1"
    )
    assert code == 0, job_id
    job_id = job_id.strip()

    code, out = gentrain(api_url, "delete", job_id, "--yes")
    assert code == 1 and "409 job_active" in out and "cancel it first" in out
    code, out = gentrain(api_url, "datasets", "delete", "mnist", "--yes")
    assert code == 1 and "409 dataset_in_use" in out and job_id in out

    assert gentrain(api_url, "cancel", job_id)[0] == 0
    code, out = gentrain(api_url, "delete", job_id)  # stdin is not a terminal here
    assert code == 1 and "--yes" in out
    assert gentrain(api_url, "status", job_id)[0] == 0  # still there

    code, out = gentrain(api_url, "delete", job_id, "--yes")
    assert code == 0 and f"deleted job {job_id}" in out
    code, out = gentrain(api_url, "status", job_id)
    assert code == 1 and "404" in out
    assert open_store(settings).list_keys(job_prefix(job_id)) == []

    code, out = gentrain(api_url, "usage")
    assert code == 0, out
    usage = json.loads(out)
    assert usage["datasets"]["count"] == 1 and usage["total_bytes"] == mnist_path.stat().st_size
    code, out = gentrain(api_url, "datasets", "delete", "mnist", "-y")
    assert code == 0 and "deleted dataset mnist" in out
    assert json.loads(gentrain(api_url, "datasets", "list", "-o", "json")[1]) == []
    code, out = gentrain(api_url, "datasets", "delete", "mnist", "--yes")
    assert code == 1 and "404" in out
