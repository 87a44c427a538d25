"""Real service processes (API and workers) on the embedded default and on the full stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import requests

from shared.db.migrate import upgrade
from shared.settings import Settings
from tests.conftest import PG_ADMIN_URL, REDIS_URL, free_port, settings_env

GENTRAIN = [sys.executable, "-m", "services.cli.main"]


@dataclass
class Service:
    """A running gentrain: its base URL, settings and the environment that reaches it."""

    url: str
    settings: Settings
    env: dict[str, str]
    log_dir: Path

    def logs(self) -> str:
        """Everything the service's processes printed (for failure messages)."""
        return "\n".join(
            p.read_text(errors="replace")[-6000:] for p in sorted(self.log_dir.glob("*.log"))
        )


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], log_dir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                logs = "\n".join(p.read_text() for p in log_dir.glob("*.log"))
                raise RuntimeError(f"a service process exited early:\n{logs[-4000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("service did not become ready in 60 s")


@pytest.fixture(scope="module")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``gentrain up`` on the embedded default: one command, nothing else running."""
    root = tmp_path_factory.mktemp("embedded")
    port = free_port()
    settings = Settings(data_dir=root / "data", api_port=port)
    env = settings_env(settings)
    process = _start([*GENTRAIN, "up"], env, root / "up.log")
    try:
        _wait_ready(settings.api_url, [process], root)
        yield Service(settings.api_url, settings, env, root)
    finally:
        _stop([process])


@pytest.fixture(scope="module")
def full_service(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Service]:
    """``gentrain api`` (gunicorn) and ``gentrain worker`` on PostgreSQL, Redis and S3."""
    root = tmp_path_factory.mktemp("full")
    name = f"gentrain_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    settings = Settings(
        data_dir=root / "data",
        database_url=PG_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+psycopg://"
        )
        + f"/{name}",
        broker_url=REDIS_URL,
        s3_bucket=f"e2e-{uuid.uuid4().hex[:10]}",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        api_port=port,
    )
    upgrade(settings.database_url)
    env = settings_env(settings)
    processes = [
        _start([*GENTRAIN, "api", "--workers", "2"], env, root / "api.log"),
        _start(
            [*GENTRAIN, "worker", "--queues", "train", "--name", "train"], env, root / "train.log"
        ),
        _start(
            [*GENTRAIN, "worker", "--queues", "sample", "--name", "sample"],
            env,
            root / "sample.log",
        ),
    ]
    try:
        _wait_ready(settings.api_url, processes, root)
        yield Service(settings.api_url, settings, env, root)
    finally:
        _stop(processes)
        redis.Redis.from_url(REDIS_URL).flushdb()
        from shared.db.session import get_engine

        get_engine(settings.database_url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["embedded", "full"])
def service(request: pytest.FixtureRequest) -> Service:
    """Each way of running gentrain, as real processes."""
    return request.getfixturevalue(f"{request.param}_service")  # type: ignore[no-any-return]
