"""Commands that run the service's processes: ``up``, ``api``, ``worker`` and ``reaper``."""

from __future__ import annotations

import os
import sys
import tempfile

import click

from services.cli.common import current_settings, migrate_if_embedded
from shared.settings import Settings, get_settings


@click.command()
@click.option("--host", default=None, help="address to bind (default GENTRAIN_API_HOST)")
@click.option("--port", type=int, default=None, help="port (default GENTRAIN_API_PORT)")
def up(host: str | None, port: int | None) -> None:
    """Run the API and workers together (embedded default: nothing else needed)."""
    _apply_bind(host, port)
    settings = current_settings()
    _check_auth(settings)
    migrate_if_embedded(settings)
    from services.cli.processes import run_all

    sys.exit(run_all(settings))


def _check_auth(settings: Settings) -> None:
    if settings.auth == "off" and not settings.loopback_only:
        raise click.ClickException(
            f"GENTRAIN_AUTH=off is allowed only on loopback, not on {settings.api_host}"
        )
    if settings.auth_required:
        click.echo("API keys required (create one with `gentrain keys create OWNER`)", err=True)
    else:
        click.echo(
            f"no API keys: the API listens on {settings.api_host} (loopback) only; "
            "bind elsewhere and keys become required",
            err=True,
        )


def _apply_bind(host: str | None, port: int | None) -> None:
    if host:
        os.environ["GENTRAIN_API_HOST"] = host
    if port:
        os.environ["GENTRAIN_API_PORT"] = str(port)
    if host or port:
        os.environ.pop("GENTRAIN_API_URL", None)
        get_settings.cache_clear()


@click.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn processes")
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="1 runs gevent workers: a greenlet per connection, so slow clients and long-lived "
    "streams hold no process; a connection must send its headers within "
    "GENTRAIN_HEADER_TIMEOUT_SECONDS and never stall for GENTRAIN_CLIENT_IDLE_TIMEOUT_SECONDS. "
    "More runs gthread workers, for comparison only: one slow client holds one of their threads "
    "for as long as it likes",
)
@click.option(
    "--keep-alive",
    type=click.IntRange(0, 300),
    default=0,
    show_default=True,
    help="seconds an idle client connection is kept open (0: one request per connection, "
    "which spreads load evenly over the processes)",
)
def api(host: str | None, port: int | None, workers: int, threads: int, keep_alive: int) -> None:
    """Run the HTTP API under gunicorn (gevent workers: slow clients hold no process)."""
    _apply_bind(host, port)
    settings = current_settings()
    _check_auth(settings)
    migrate_if_embedded(settings)
    from services.cli.processes import api_command, api_environment

    command = api_command(settings, workers, threads, keep_alive)
    os.execve(command[0], command, api_environment(settings))


_METRICS_PORT = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="serve Prometheus metrics on this port (0: none)",
)
_METRICS_ADDRESS = click.option(
    "--metrics-address", default="0.0.0.0", show_default=True, help="address of --metrics-port"
)


@click.command()
@click.option("--queues", default="train,sample", show_default=True)
@click.option("--concurrency", type=int, default=1, show_default=True)
@click.option("--name", default="worker", show_default=True)
@_METRICS_PORT
@_METRICS_ADDRESS
def worker(
    queues: str, concurrency: int, name: str, metrics_port: int, metrics_address: str
) -> None:
    """Run a Celery worker (TensorFlow loads only in its pool children)."""
    settings = current_settings()
    migrate_if_embedded(settings)
    from services.cli.processes import worker_command

    if metrics_port:
        # Pool children count into files of a fresh folder (prometheus_client's multiprocess
        # mode, chosen when it is first imported: set before Celery starts); the main process
        # serves their sum (workers/celery_app.py).
        folder = tempfile.mkdtemp(prefix=f"gentrain-metrics-{name}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        os.environ["GENTRAIN_WORKER_METRICS_PORT"] = str(metrics_port)
        os.environ["GENTRAIN_WORKER_METRICS_ADDRESS"] = metrics_address
    command = worker_command(settings, queues.split(","), concurrency, name)
    os.execv(command[0], command)


@click.command()
@_METRICS_PORT
@_METRICS_ADDRESS
def reaper(metrics_port: int, metrics_address: str) -> None:
    """Re-queue jobs whose worker died and re-send queued jobs the broker lost (run one)."""
    settings = current_settings()
    migrate_if_embedded(settings)
    from services.cli.processes import run_reaper_process

    if metrics_port:
        from workers.reaper import serve_metrics

        serve_metrics(metrics_port, metrics_address)
    run_reaper_process(settings)


COMMANDS: tuple[click.Command, ...] = (up, api, worker, reaper)
