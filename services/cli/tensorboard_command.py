"""``gentrain tensorboard JOB [JOB ...] --logdir DIR``: jobs' TensorBoard event files in one log
directory, a run folder per job, ready for ``tensorboard --logdir DIR``."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import uuid
from pathlib import Path
from typing import Any

import click

from services.cli.client import ApiClient
from services.cli.client_commands import _call, _client, api_url_option
from services.cli.short_ids import complete_job_ids, resolve_job_id
from shared.storage import check_key, file_sha256

PREFIX = "tensorboard/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_name(job: dict[str, Any]) -> str:
    """A job's run folder: its model kind and the start of its id (``gan-1f2e3d4c``)."""
    kind = _UNSAFE.sub("-", str(job.get("model_kind") or job.get("kind") or "job")).strip(".-")
    return f"{kind or 'job'}-{str(job['id'])[:8]}"


def _current(target: Path, artifact: dict[str, Any]) -> bool:
    """Whether ``target`` already holds the artifact's bytes (a second run fetches only what
    grew: an event file is only ever appended to)."""
    return (
        target.is_file()
        and target.stat().st_size == artifact["size_bytes"]
        and file_sha256(target) == artifact["sha256"]
    )


def _fetch(client: ApiClient, job_id: str, artifact: dict[str, Any], target: Path) -> None:
    # Into a name without "tfevents", then renamed: a TensorBoard already watching the folder
    # never reads half a file.
    partial = target.with_name(f".download-{uuid.uuid4().hex}")
    try:
        _call(lambda: client.download(job_id, artifact["name"], partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def download_runs(client: ApiClient, job_id: str, logdir: Path) -> tuple[Path, int, int]:
    """Download job ``job_id``'s event files into its run folder under ``logdir``.

    Returns the folder, how many files the job has and how many were fetched."""
    job = _call(lambda: client.job(job_id))
    run = logdir / run_name(job)
    files = [a for a in _call(lambda: client.all_artifacts(job_id)) if a["name"].startswith(PREFIX)]
    fetched = 0
    for artifact in files:
        # The artifact's own name, checked as the service checks keys: no "..", no "/" left.
        target = run / check_key(artifact["name"]).rsplit("/", 1)[-1]
        if _current(target, artifact):
            continue
        run.mkdir(parents=True, exist_ok=True)
        _fetch(client, job_id, artifact, target)
        fetched += 1
    return run, len(files), fetched


@click.command("tensorboard")
@click.argument(
    "job_ids", nargs=-1, required=True, metavar="JOB [JOB ...]", shell_complete=complete_job_ids
)
@click.option(
    "--logdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="the log directory: one run folder per job (<kind>-<id prefix>) is made in it",
)
@api_url_option
def tensorboard(job_ids: tuple[str, ...], logdir: Path, api_url: str | None) -> None:
    """Download the TensorBoard files of each JOB into one log directory, then print the
    "tensorboard --logdir" command that shows them (run it again to fetch what is new)."""
    client = _client(api_url)
    found = 0
    for job_id in job_ids:
        run, count, fetched = download_runs(client, resolve_job_id(client, job_id), logdir)
        if not count:
            click.echo(f"{job_id}: no TensorBoard files yet", err=True)
            continue
        found += 1
        click.echo(f"{job_id}: {count} file(s) in {run} ({fetched} downloaded)", err=True)
    if not found:
        raise click.ClickException("none of these jobs has TensorBoard files (yet)")
    if importlib.util.find_spec("tensorboard") is None:
        click.echo(
            "TensorBoard is not installed here: pip install 'gentrain[tensorboard]'", err=True
        )
    click.echo(f"tensorboard --logdir {shlex.quote(str(logdir))}")
