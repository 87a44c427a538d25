"""Deleting jobs and datasets, and showing storage usage: `gentrain delete`, `gentrain datasets
delete`, `gentrain usage` (issue 13)."""

from __future__ import annotations

import sys

import click

from services.cli.client_commands import _call, _client, _print, api_url_option
from services.cli.short_ids import complete_job_ids, resolve_job_id

yes_option = click.option(
    "--yes", "-y", is_flag=True, help="do not ask (needed when stdin is not a terminal)"
)


def _confirm(question: str, yes: bool) -> None:
    """Go on with ``--yes``; ask on a terminal; refuse otherwise (a script must say --yes)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException("stdin is not a terminal: add --yes to delete without asking")
    click.confirm(question, abort=True)


@click.command("delete")
@click.argument("job_id", shell_complete=complete_job_ids)
@yes_option
@api_url_option
def delete(job_id: str, yes: bool, api_url: str | None) -> None:
    """Delete an ended job and its sampling jobs: artifacts, metrics, logs and history."""
    client = _client(api_url)
    job_id = resolve_job_id(client, job_id)
    _confirm(f"Delete job {job_id}, its sampling jobs and all their files?", yes)
    result = _call(lambda: client.delete_job(job_id))
    deleted = result["deleted_jobs"]
    others = f" and {len(deleted) - 1} sampling job(s)" if len(deleted) > 1 else ""
    click.echo(f"deleted job {job_id}{others}")


@click.command("delete")
@click.argument("name")
@click.option("--owner", default=None, help="admins: another owner's dataset of that name")
@yes_option
@api_url_option
def datasets_delete(name: str, owner: str | None, yes: bool, api_url: str | None) -> None:
    """Delete a dataset no queued or running job uses (ended jobs keep their results)."""
    _confirm(f"Delete dataset {name!r}?", yes)
    _call(lambda: _client(api_url).delete_dataset(name, owner))
    click.echo(f"deleted dataset {name}")


@click.command()
@click.option("--owner", default=None, help="admins: another owner's usage")
@api_url_option
def usage(owner: str | None, api_url: str | None) -> None:
    """What you store (datasets, job artifacts) against the storage quota, as JSON."""
    _print(_call(lambda: _client(api_url).usage(owner)))


COMMANDS = (delete, usage)
