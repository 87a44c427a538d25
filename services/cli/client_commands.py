"""Commands that talk to the API over HTTP: datasets upload/list, submit, sample, status, ..."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from services.cli.client import ApiClient
from services.cli.common import current_settings
from services.cli.job_views import (
    artifacts_table,
    dataset_text,
    datasets_table,
    job_summary_text,
    jobs_table,
    metrics_table,
)
from services.cli.kind_commands import parse_params
from services.cli.output import emit, output_option
from services.cli.short_ids import complete_job_ids, resolve_job_id
from shared.job_state import TERMINAL_STATUSES, JobStatus
from shared.kinds import KIND_SPECS, SAMPLE_KIND, job_kinds, sample_param_models

TERMINAL = {str(status) for status in TERMINAL_STATUSES}


def _client(api_url: str | None) -> ApiClient:
    return ApiClient(
        api_url or current_settings().api_url, api_key=os.environ.get("GENTRAIN_API_KEY")
    )


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _call(action: Any) -> Any:
    # An ApiClientError goes up to the root group (services/cli/common.py), which prints it.
    return action()


api_url_option = click.option(
    "--api-url", envvar="GENTRAIN_API_URL", default=None, help="API base URL"
)
priority_option = click.option(
    "--priority",
    type=click.IntRange(0, 9),
    default=None,
    help="0-9, higher runs first (default 5; above 7 needs an admin key by default)",
)


@click.group()
def datasets() -> None:
    """Upload and list datasets."""


@datasets.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="dataset name (default: file name)")
@api_url_option
def datasets_upload(path: Path, name: str | None, api_url: str | None) -> None:
    """Upload an .npz of digits (x_train [, y_train, x_test, y_test])."""
    _print(_call(lambda: _client(api_url).upload_dataset(path, name)))


@datasets.command("list")
@output_option
@api_url_option
def datasets_list(fmt: str, api_url: str | None) -> None:
    """List datasets: name, owner, size, images, labels, test images, age."""
    emit(_client(api_url).list_datasets(), fmt, datasets_table)


@datasets.command("show")
@click.argument("name")
@click.option("--owner", default=None, help="admins: another owner's dataset of that name")
@output_option
@api_url_option
def datasets_show(name: str, owner: str | None, fmt: str, api_url: str | None) -> None:
    """Show one dataset: its row of `datasets list`, then each array's shape and type."""
    emit(_client(api_url).dataset(name, owner), fmt, dataset_text)


@click.command()
@click.argument("kind", type=click.Choice(list(KIND_SPECS)))
@click.option("--dataset", required=True)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    help="KEY=VALUE, repeatable; VALUE is read by the parameter's type (gentrain kinds KIND)",
)
@priority_option
@api_url_option
def submit(
    kind: str, dataset: str, params: tuple[str, ...], priority: int | None, api_url: str | None
) -> None:
    """Submit a training job of KIND; prints the job id."""
    body = parse_params(params, KIND_SPECS[kind].params)
    job = _call(lambda: _client(api_url).submit(kind, dataset, body, priority))
    click.echo(job["id"])


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    help="KEY=VALUE, e.g. count=64; a conditional GAN's digits=7,3 or digits=all",
)
@priority_option
@api_url_option
def sample(job_id: str, params: tuple[str, ...], priority: int | None, api_url: str | None) -> None:
    """Draw samples from trained job JOB_ID; prints the sampling job's id."""
    # The model's kind is the server's to know: read as any kind's sampling params read it.
    body = parse_params(params, sample_param_models())
    client = _client(api_url)
    job = client.sample(resolve_job_id(client, job_id), body, priority)
    click.echo(job["id"])


@click.command()
@click.argument("job_id", required=False, shell_complete=complete_job_ids)
@click.option(
    "--all-artifacts", is_flag=True, help="list every artifact, not only the newest (paged)"
)
@click.option("--status", "status_filter", type=click.Choice([s.value for s in JobStatus]))
@click.option("--kind", type=click.Choice(job_kinds()), default=None)
@click.option(
    "--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="jobs listed"
)
@output_option
@api_url_option
def status(
    job_id: str | None,
    all_artifacts: bool,
    status_filter: str | None,
    kind: str | None,
    limit: int,
    fmt: str,
    api_url: str | None,
) -> None:
    """Show job JOB_ID (status, progress, metrics, results, newest artifacts), or list recent
    jobs newest first (--status, --kind, --limit filter them)."""
    client = _client(api_url)
    if not job_id:
        page = client.jobs(status=status_filter, kind=kind, limit=limit)
        emit(page, fmt, jobs_table)
        if fmt == "table" and page["total"] > len(page["items"]):
            click.echo(f"({len(page['items'])} of {page['total']}; --limit shows more)", err=True)
        return
    job_id = resolve_job_id(client, job_id)
    job = client.job(job_id)
    if all_artifacts:
        job["artifacts"] = client.all_artifacts(job_id)
    emit(job, fmt, job_summary_text)
    shown, count = len(job["artifacts"]), job.get("artifact_count", len(job["artifacts"]))
    if shown < count:
        click.echo(
            f"({shown} newest of {count} artifacts; --all-artifacts lists them all)", err=True
        )


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@output_option
@api_url_option
def artifacts(job_id: str, fmt: str, api_url: str | None) -> None:
    """List JOB_ID's artifacts (the names `gentrain download JOB_ID NAME` takes)."""
    client = _client(api_url)
    emit(client.all_artifacts(resolve_job_id(client, job_id)), fmt, artifacts_table)


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@click.option("--after-step", type=int, default=0, help="only steps after this one")
@click.option("--limit", type=int, default=0, help="at most this many rows (0: all, paged)")
@output_option
@api_url_option
def metrics(job_id: str, after_step: int, limit: int, fmt: str, api_url: str | None) -> None:
    """Print a job's metrics: a row per epoch (or step block), a column per metric."""
    client = _client(api_url)
    job_id = resolve_job_id(client, job_id)
    if limit:
        rows = _call(lambda: client.metrics(job_id, limit, after_step))["items"]
    else:
        rows = _call(lambda: client.all_metrics(job_id, after_step))
    emit(rows, fmt, metrics_table)


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@click.argument("name", required=False)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
@api_url_option
def download(job_id: str, name: str | None, output: Path | None, api_url: str | None) -> None:
    """Download artifact NAME of JOB_ID (default: a sampling job's samples/grid.png, a training
    job's final grid, else its latest image); `gentrain artifacts JOB_ID` lists the names."""
    client = _client(api_url)
    job_id = resolve_job_id(client, job_id)
    chosen = name or default_grid(client.job(job_id), client.all_artifacts(job_id))
    target = output or Path(chosen.rsplit("/", 1)[-1])
    size = client.download(job_id, chosen, target)
    click.echo(f"saved {target} ({size} bytes)")


def default_grid(job: dict[str, Any], artifacts: list[dict[str, Any]]) -> str:
    """The grid a person means by a job's images: the samples a sampling job was asked for
    (not its interpolation strip), a training job's final grid, else the newest image."""
    names = {a["name"] for a in artifacts}
    if job["kind"] == SAMPLE_KIND:
        wanted = "samples/grid.png"
    else:
        spec = KIND_SPECS.get(job["kind"])
        wanted = spec.final_grid if spec else ""
    if wanted in names:
        return wanted
    images = [a for a in artifacts if a["name"].endswith(".png")]
    if not images:
        raise click.ClickException(f"job {job['id']} has no sample grid yet ({job['status']})")
    return str(max(images, key=lambda a: a["created_at"])["name"])


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@api_url_option
def cancel(job_id: str, api_url: str | None) -> None:
    """Cancel a job."""
    client = _client(api_url)
    job_id = resolve_job_id(client, job_id)
    job = client.cancel(job_id)
    click.echo(f"{job_id} {job['status']}")


COMMANDS: tuple[click.Command, ...] = (
    datasets,
    submit,
    sample,
    status,
    artifacts,
    metrics,
    download,
    cancel,
)
