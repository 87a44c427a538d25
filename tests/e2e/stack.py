"""The full stack for end-to-end tests, set up in one place: a fresh PostgreSQL database, a
broker (a Redis database of the shared server, or a private ``redis-server`` a test may kill),
moto's S3, and gentrain processes started by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

from shared.db.migrate import upgrade
from shared.settings import Settings
from tests.conftest import PG_ADMIN_URL, free_port, settings_env

GENTRAIN = [sys.executable, "-m", "services.cli.main"]
# Heartbeats and reaper passes short enough that a lost worker is noticed within seconds.
FAST_FAULTS: dict[str, Any] = {
    "heartbeat_seconds": 0.5,
    "heartbeat_timeout_seconds": 4,
    "reaper_interval_seconds": 0.5,
    "requeue_after_seconds": 2,
}


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in its own session (so it and its children are stopped together)."""
    return subprocess.Popen(
        command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, then SIGKILL what is still there after 20 s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(url: str, processes: list[subprocess.Popen[bytes]], log_dir: Path) -> None:
    """Wait until ``url``/readyz answers 200; fail at once if a process exits."""
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


class FullStack:
    """PostgreSQL, Redis and S3 on loopback, with gentrain processes started on demand.

    ``broker_url`` None starts a private ``redis-server`` (which ``kill_redis`` can take down);
    ``overrides`` are Settings fields (timeouts, S3 credentials, say); ``database_password`` goes
    into the database URL (the test server trusts loopback: any password connects)."""

    def __init__(
        self,
        root: Path,
        s3: str,
        broker_url: str | None = None,
        database_password: str = "",
        **overrides: Any,
    ):
        self.root = root
        self.private_redis = broker_url is None
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.db_name = f"gentrain_e2e_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        if database_password:
            base = base.replace("@", f":{database_password}@", 1)
        fields: dict[str, Any] = {
            "data_dir": root / "data",
            "database_url": f"{base}/{self.db_name}",
            "broker_url": broker_url or f"redis://127.0.0.1:{self.redis_port}/0",
            "s3_bucket": f"e2e-{uuid.uuid4().hex[:10]}",
            "s3_endpoint_url": s3,
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "api_port": free_port(),
        }
        self.settings = Settings(**(fields | overrides))
        upgrade(self.settings.database_url)
        self.env = settings_env(self.settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        if self.private_redis:
            self.start_redis()
        else:
            redis.Redis.from_url(self.settings.broker_url).flushdb()

    @property
    def url(self) -> str:
        return self.settings.api_url

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=(self.root / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(100):
            ping = ["redis-cli", "-p", str(self.redis_port), "ping"]
            if subprocess.run(ping, capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """``gentrain ARGS`` as the process ``name`` (its output in ``name``.log)."""
        process = start_process([*GENTRAIN, *args], self.env, self.root / f"{name}.log")
        self.processes[name] = process
        return process

    def start_worker(self, name: str, queues: str = "train") -> None:
        self.start(name, "worker", "--queues", queues, "--name", name)

    def start_api(self, workers: int = 1) -> None:
        self.start("api", "api", "--workers", str(workers))
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_ready(self.url, list(self.processes.values()), self.root)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.root.glob("*.log"))
        )

    def close(self) -> None:
        stop_processes(list(self.processes.values()))
        if self.redis and self.redis.poll() is None:
            self.kill_redis()
        if not self.private_redis:
            redis.Redis.from_url(self.settings.broker_url).flushdb()
        from shared.db.session import get_engine

        get_engine(self.settings.database_url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
