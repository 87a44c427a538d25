"""Shared fixtures: real PostgreSQL, Redis and an S3 HTTP endpoint (moto's server), and settings
for the embedded default and the full stack."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from shared.db.migrate import upgrade
from shared.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get("GENTRAIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GENTRAIN_TEST_REDIS", "redis://127.0.0.1:6379/11")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """5,000 real MNIST digits shipped with the tests (see tests/fixtures/README.md)."""
    return FIXTURES / "mnist_5k.npz"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint: moto's threaded server on a loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the PostgreSQL server on loopback."""
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    return PG_ADMIN_URL


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test; dropped afterwards."""
    name = f"gentrain_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    upgrade(url)
    yield url
    from shared.db.session import get_engine

    get_engine(url).dispose()
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """A Redis database for the broker, emptied before and after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


def embedded_settings(tmp_path: Path) -> Settings:
    """The embedded default: SQLite, filesystem broker and local object store under tmp_path."""
    settings = Settings(data_dir=tmp_path / "data")
    upgrade(settings.database_url)
    return settings


def full_stack_settings(tmp_path: Path, database_url: str, broker_url: str, s3: str) -> Settings:
    """PostgreSQL, Redis and S3: the production stack, on loopback."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        broker_url=broker_url,
        s3_bucket=f"gentrain-{uuid.uuid4().hex[:10]}",
        s3_endpoint_url=s3,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )


@pytest.fixture(params=["embedded", "full"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each backend: the embedded default and the full stack."""
    if request.param == "embedded":
        return embedded_settings(tmp_path)
    database_url = request.getfixturevalue("pg_database")
    broker_url = request.getfixturevalue("redis_broker")
    s3 = request.getfixturevalue("s3_endpoint")
    return full_stack_settings(tmp_path, database_url, broker_url, s3)


def settings_env(settings: Settings) -> dict[str, str]:
    """The GENTRAIN_* environment that reproduces ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENTRAIN_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value not in ("", None):
            env[f"GENTRAIN_{name.upper()}"] = str(value)
    return env


def create_test_job(database_url: str, kind: str = "autoencoder", owner: str = "") -> str:
    """A queued job straight in the database (through the lifecycle module, as the API does)."""
    from shared.db.session import session_scope
    from shared.jobs import NewJob, create_job

    with session_scope(database_url) as session:
        return create_job(session, NewJob(kind, kind, owner, {}))
