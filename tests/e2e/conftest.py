"""Real service processes (API and workers) on the embedded default and on the full stack."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.conftest import REDIS_URL, free_port, settings_env
from tests.e2e.stack import GENTRAIN, FullStack, start_process, stop_processes, wait_ready


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


@pytest.fixture(scope="module")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``gentrain up`` on the embedded default: one command, nothing else running."""
    root = tmp_path_factory.mktemp("embedded")
    port = free_port()
    settings = Settings(data_dir=root / "data", api_port=port)
    env = settings_env(settings)
    process = start_process([*GENTRAIN, "up"], env, root / "up.log")
    try:
        wait_ready(settings.api_url, [process], root)
        yield Service(settings.api_url, settings, env, root)
    finally:
        stop_processes([process])


@pytest.fixture(scope="module")
def full_service(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Service]:
    """``gentrain api`` (gunicorn) and ``gentrain worker`` on PostgreSQL, Redis and S3."""
    stack = FullStack(tmp_path_factory.mktemp("full"), s3_endpoint, broker_url=REDIS_URL)
    try:
        stack.start("api", "api", "--workers", "2")
        stack.start_worker("train", "train")
        stack.start_worker("sample", "sample")
        stack.wait_ready()
        yield Service(stack.url, stack.settings, stack.env, stack.root)
    finally:
        stack.close()


@pytest.fixture(params=["embedded", "full"])
def service(request: pytest.FixtureRequest) -> Service:
    """Each way of running gentrain, as real processes."""
    return request.getfixturevalue(f"{request.param}_service")  # type: ignore[no-any-return]
