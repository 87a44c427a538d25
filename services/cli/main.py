"""The ``gentrain`` command: ``up``, ``api``, ``worker``, ``db upgrade`` and client commands."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from services.cli.client import ApiClient, ApiClientError
from shared.settings import Settings, get_settings

TERMINAL = {"succeeded", "failed", "cancelled"}


def _settings() -> Settings:
    return get_settings()


def _client(api_url: str | None) -> ApiClient:
    return ApiClient(api_url or _settings().api_url, api_key=os.environ.get("GENTRAIN_API_KEY"))


def _migrate_if_embedded(settings: Settings) -> None:
    if settings.is_embedded:
        from shared.db.migrate import upgrade

        upgrade(settings.database_url)


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
def cli() -> None:
    """gentrain: train generative image models through a job queue."""


@cli.command()
@click.option("--host", default=None, help="address to bind (default GENTRAIN_API_HOST)")
@click.option("--port", type=int, default=None, help="port (default GENTRAIN_API_PORT)")
def up(host: str | None, port: int | None) -> None:
    """Run the API and workers together (embedded default: nothing else needed)."""
    _apply_bind(host, port)
    settings = _settings()
    _check_auth(settings)
    _migrate_if_embedded(settings)
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


@cli.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn processes")
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="threads per process: 1 runs gunicorn's sync workers (the fastest for this API; put a "
    "buffering proxy in front of them on the internet), more runs gthread workers, which "
    "tolerate slow clients by themselves",
)
@click.option(
    "--keep-alive",
    type=click.IntRange(0, 300),
    default=0,
    show_default=True,
    help="gthread workers only: seconds an idle client connection is kept open (0: one request "
    "per connection, which spreads load evenly over the processes)",
)
def api(host: str | None, port: int | None, workers: int, threads: int, keep_alive: int) -> None:
    """Run the HTTP API under gunicorn."""
    _apply_bind(host, port)
    settings = _settings()
    _check_auth(settings)
    _migrate_if_embedded(settings)
    from services.cli.processes import api_command

    command = api_command(settings, workers, threads, keep_alive)
    os.execv(command[0], command)


@cli.command()
@click.option("--queues", default="train,sample", show_default=True)
@click.option("--concurrency", type=int, default=1, show_default=True)
@click.option("--name", default="worker", show_default=True)
def worker(queues: str, concurrency: int, name: str) -> None:
    """Run a Celery worker (TensorFlow loads only in its pool children)."""
    settings = _settings()
    _migrate_if_embedded(settings)
    from services.cli.processes import worker_command

    command = worker_command(settings, queues.split(","), concurrency, name)
    os.execv(command[0], command)


@cli.command()
def reaper() -> None:
    """Re-queue jobs whose worker died and re-send queued jobs the broker lost (run one)."""
    settings = _settings()
    _migrate_if_embedded(settings)
    from services.cli.processes import run_reaper_process

    run_reaper_process(settings)


@cli.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.argument("owner")
@click.option("--admin", is_flag=True, help="the key sees every owner's jobs and datasets")
def keys_create(owner: str, admin: bool) -> None:
    """Create a key for OWNER; the secret is printed once and never stored."""
    from shared.api_keys import create_key

    settings = _settings()
    _migrate_if_embedded(settings)
    try:
        row, secret = create_key(settings.database_url, owner, admin)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"key {row.id} for {owner}{' (admin)' if admin else ''}; keep it, it is shown once:")
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """List keys (prefixes only)."""
    from shared.api_keys import list_keys

    for row in list_keys(_settings().database_url):
        state = "revoked" if row.revoked_at else "active"
        admin = " admin" if row.is_admin else ""
        click.echo(
            f"{row.id}  {row.prefix}…  {row.owner}{admin}  {state}  {row.created_at:%Y-%m-%d}"
        )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke the key with id KEY_ID."""
    from shared.api_keys import revoke_key

    if not revoke_key(_settings().database_url, key_id):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"revoked {key_id}")


@cli.group()
def db() -> None:
    """Database administration."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations up to the latest schema."""
    from shared.db.migrate import upgrade

    upgrade(_settings().database_url)
    click.echo("database is up to date")


api_url_option = click.option(
    "--api-url", envvar="GENTRAIN_API_URL", default=None, help="API base URL"
)


@cli.group()
def datasets() -> None:
    """Upload and list datasets."""


@datasets.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="dataset name (default: file name)")
@api_url_option
def datasets_upload(path: Path, name: str | None, api_url: str | None) -> None:
    """Upload an .npz of digits (x_train [, y_train, x_test, y_test])."""
    _print(_call(lambda: _client(api_url).upload_dataset(path, name)))


@datasets.command("fetch-mnist")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a copy of Keras's mnist.npz (default: download it with Keras's loader)",
)
def datasets_fetch_mnist(file: Path | None) -> None:
    """Register Keras's MNIST (sha256 checked) as dataset 'mnist' in storage, for every worker."""
    from shared.dataset_registry import MNIST_NAME, DatasetExists, fetch_mnist, register_dataset
    from shared.datasets import DatasetError
    from shared.storage import open_store

    settings = _settings()
    _migrate_if_embedded(settings)
    try:
        data = fetch_mnist(file)
        dataset = register_dataset(
            settings.database_url,
            open_store(settings),
            MNIST_NAME,
            data,
            settings.max_dataset_bytes,
        )
    except DatasetError as error:
        raise click.ClickException(error.message) from None
    except DatasetExists:
        raise click.ClickException("dataset 'mnist' is already registered") from None
    click.echo(f"registered dataset 'mnist' ({dataset.size_bytes} bytes, {dataset.arrays})")


@datasets.command("list")
@api_url_option
def datasets_list(api_url: str | None) -> None:
    """List datasets."""
    _print(_call(lambda: _client(api_url).list_datasets()))


def _call(action: Any) -> Any:
    try:
        return action()
    except ApiClientError as error:
        raise click.ClickException(str(error)) from None


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@cli.command()
@click.argument("kind")
@click.option("--dataset", required=True)
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE (JSON value), repeatable")
@api_url_option
def submit(kind: str, dataset: str, params: tuple[str, ...], api_url: str | None) -> None:
    """Submit a training job of KIND; prints the job id."""
    job = _call(lambda: _client(api_url).submit(kind, dataset, _parse_params(params)))
    click.echo(job["id"])


@cli.command()
@click.argument("job_id")
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE, e.g. count=64")
@api_url_option
def sample(job_id: str, params: tuple[str, ...], api_url: str | None) -> None:
    """Draw samples from trained job JOB_ID; prints the sampling job's id."""
    job = _call(lambda: _client(api_url).sample(job_id, _parse_params(params)))
    click.echo(job["id"])


@cli.command()
@click.argument("job_id", required=False)
@api_url_option
def status(job_id: str | None, api_url: str | None) -> None:
    """Show one job, or list recent jobs."""
    client = _client(api_url)
    _print(_call(lambda: client.job(job_id) if job_id else client.jobs()))


@cli.command()
@click.argument("job_id")
@click.option("--timeout", type=float, default=0, help="give up after this many seconds (0: never)")
@api_url_option
def wait(job_id: str, timeout: float, api_url: str | None) -> None:
    """Show a progress bar until the job ends; exit 1 unless it succeeded."""
    client = _client(api_url)
    started = time.monotonic()
    job = _call(lambda: client.job(job_id))
    with click.progressbar(length=1000, label=f"{job['kind']} {job_id[:8]}", show_eta=False) as bar:
        shown = 0
        while True:
            target = int(job["progress"] * 1000)
            bar.update(target - shown)
            shown = target
            latest = job.get("latest_metrics") or {}
            bar.label = f"{job['kind']} {job_id[:8]} {job['status']} {_metric_text(latest)}"
            if job["status"] in TERMINAL:
                break
            if timeout and time.monotonic() - started > timeout:
                raise click.ClickException(f"job still {job['status']} after {timeout:g} s")
            time.sleep(0.5)
            job = _call(lambda: client.job(job_id))
    click.echo(f"{job_id} {job['status']}" + (f": {job['error']}" if job.get("error") else ""))
    if job["results"]:
        _print(job["results"])
    sys.exit(0 if job["status"] == "succeeded" else 1)


def _metric_text(latest: dict[str, Any]) -> str:
    values = latest.get("values") or {}
    return " ".join(f"{k}={v:.4g}" for k, v in values.items())


@cli.command()
@click.argument("job_id")
@click.argument("name", required=False)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
@api_url_option
def download(job_id: str, name: str | None, output: Path | None, api_url: str | None) -> None:
    """Download artifact NAME of JOB_ID (default: its latest sample grid)."""
    client = _client(api_url)
    if name is None:
        images = [
            a for a in _call(lambda: client.job(job_id))["artifacts"] if a["name"].endswith(".png")
        ]
        if not images:
            raise click.ClickException(f"job {job_id} has no sample grid yet")
        name = max(images, key=lambda a: a["created_at"])["name"]
    chosen = name
    target = output or Path(chosen.rsplit("/", 1)[-1])
    size = _call(lambda: client.download(job_id, chosen, target))
    click.echo(f"saved {target} ({size} bytes)")


@cli.command()
@click.argument("job_id")
@api_url_option
def cancel(job_id: str, api_url: str | None) -> None:
    """Cancel a job."""
    job = _call(lambda: _client(api_url).cancel(job_id))
    click.echo(f"{job_id} {job['status']}")


if __name__ == "__main__":
    cli()
