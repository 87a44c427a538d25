"""The API under its real server (``gentrain api``): slow clients do not stop it, its own errors
are JSON, and a connection that is slow to send its headers is dropped."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from shared.api_keys import create_key
from tests.conftest import REDIS_URL, create_test_job
from tests.e2e.stack import FullStack

pytestmark = pytest.mark.e2e

SLOW_CONNECTIONS = 64
HOLD_SECONDS = 30.0
HEADER_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[FullStack]:
    """``gentrain api`` with its defaults (2 processes), keys required, on the full stack."""
    stack = FullStack(
        tmp_path_factory.mktemp("serving"),
        s3_endpoint,
        broker_url=REDIS_URL,
        auth="required",
        header_timeout_seconds=HEADER_TIMEOUT,
    )
    try:
        stack.start("api", "api")
        stack.wait_ready()
        yield stack
    finally:
        stack.close()


def _openings(port: int, key: str) -> list[bytes]:
    """What each kind of slow client sends at once, before trickling the rest a byte a second."""
    partial_line = b"GET /v1/jobs/"
    partial_headers = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    body = b'{"kind": "autoencoder", "dataset": "mnist", "params": {}}'.ljust(4000)
    partial_body = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body[:10]
    return [partial_line, partial_headers, partial_body]


class SlowClients:
    """``count`` connections that each send part of a request and then a byte a second; a
    connection the server closes is opened again, so ``count`` are held all along."""

    def __init__(self, port: int, key: str, count: int) -> None:
        self.port = port
        self.openings = _openings(port, key)
        self.count = count
        self.reopened = [0, 0, 0]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self, kind: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(self.openings[kind])
        return sock

    def _run(self) -> None:
        held = [(i % 3, self._connect(i % 3)) for i in range(self.count)]
        while not self.stop.wait(1.0):
            for index, (kind, sock) in enumerate(held):
                try:
                    sock.sendall(b"a")
                    sock.setblocking(False)
                    closed = sock.recv(1024) == b""  # an answer or EOF: the server let go
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    sock.close()
                    self.reopened[kind] += 1
                    held[index] = (kind, self._connect(kind))
                else:
                    sock.setblocking(True)
        for _, sock in held:
            sock.close()

    def __enter__(self) -> SlowClients:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_slow_clients_do_not_stop_the_api(api: FullStack) -> None:
    """64 slowloris connections (partial request lines, headers and bodies) held for 30 s:
    /healthz and an authenticated job read keep answering within 1 s each, every second."""
    _, key = create_key(api.settings.database_url, "alice")
    job_id = create_test_job(api.settings.database_url, owner="alice")
    headers = {"Authorization": f"Bearer {key}"}
    slowest, answered = 0.0, 0
    with SlowClients(api.settings.api_port, key, SLOW_CONNECTIONS) as slow:
        time.sleep(1.0)  # every slow connection is open and waiting
        deadline = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < deadline:
            started = time.monotonic()
            for path in ("/healthz", f"/v1/jobs/{job_id}"):
                began = time.monotonic()
                try:
                    response = requests.get(f"{api.url}{path}", headers=headers, timeout=1.0)
                except requests.RequestException as error:
                    pytest.fail(
                        f"{path} did not answer within 1 s after {answered} answers: {error}"
                    )
                assert response.status_code == 200, response.text
                slowest = max(slowest, time.monotonic() - began)
                answered += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    assert slowest < 1.0
    assert answered >= 2 * int(HOLD_SECONDS) - 2
    # The header deadline dropped the connections that never finished their headers (and they
    # came back); the trickled bodies were kept, moving a byte a second.
    line, header, _body = slow.reopened
    assert line >= SLOW_CONNECTIONS // 3 and header >= SLOW_CONNECTIONS // 3, slow.reopened


def test_uploads_and_submissions_work_under_gevent(api: FullStack, mnist_path: Path) -> None:
    """psycopg, boto3 (S3) and kombu (Redis) all run inside the gevent worker's greenlets."""
    _, key = create_key(api.settings.database_url, "bob")
    headers = {"Authorization": f"Bearer {key}"}
    with mnist_path.open("rb") as handle:
        upload = requests.post(
            f"{api.url}/v1/datasets",
            files={"file": ("mnist.npz", handle)},
            data={"name": "mnist"},
            headers=headers,
            timeout=60,
        )
    assert upload.status_code == 201, upload.text
    body = {"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 1}}
    submitted = requests.post(f"{api.url}/v1/jobs", json=body, headers=headers, timeout=10)
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["status"] == "queued"
    assert redis.Redis.from_url(api.settings.broker_url).llen("train") >= 1


def test_a_request_gunicorn_cannot_parse_is_answered_in_json(api: FullStack) -> None:
    with socket.create_connection(("127.0.0.1", api.settings.api_port), timeout=5) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, answer
    assert body.startswith(b'{"error": {"code": "bad_request"'), body


def test_headers_that_take_too_long_are_dropped(api: FullStack) -> None:
    with socket.create_connection(("127.0.0.1", api.settings.api_port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed without an answer
        assert HEADER_TIMEOUT - 0.5 < time.monotonic() - started < HEADER_TIMEOUT + 3
