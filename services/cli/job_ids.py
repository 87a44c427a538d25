"""Short job ids: every command that takes a job id also takes a unique prefix of it."""

from __future__ import annotations

import os
import string

import click
from click.shell_completion import CompletionItem

from services.cli.client import ApiClient, ApiClientError
from services.cli.common import current_settings

ID_LENGTH = 32
MIN_PREFIX = 6
# How many matches an ambiguous prefix lists.
SHOWN_MATCHES = 10
# How many recent jobs a completion offers, and how long it waits for the API.
COMPLETIONS = 50
COMPLETION_TIMEOUT = 2.0


def resolve_job_id(client: ApiClient, job_id: str) -> str:
    """The full id of the job ``job_id`` names: a whole id as it is, or the one job whose id
    starts with it (at least 6 characters); a usage error otherwise, listing the matches of an
    ambiguous prefix."""
    wanted = job_id.strip().lower()
    if len(wanted) == ID_LENGTH:
        return wanted
    if not wanted or any(char not in string.hexdigits for char in wanted):
        raise click.ClickException(
            f"{job_id!r} is not a job id (hex digits, as `gentrain status` shows)"
        )
    if len(wanted) < MIN_PREFIX:
        raise click.ClickException(
            f"job id {job_id!r} is too short: give at least {MIN_PREFIX} characters of it"
        )
    if len(wanted) > ID_LENGTH:
        raise click.ClickException(f"{job_id!r} is longer than a job id ({ID_LENGTH} characters)")
    page = client.jobs(id_prefix=wanted, limit=SHOWN_MATCHES)
    items = page["items"]
    if not items:
        raise click.ClickException(f"no job id starts with {wanted!r}")
    if len(items) == 1:
        return str(items[0]["id"])
    listed = ", ".join(f"{item['id']} ({item['kind']}, {item['status']})" for item in items)
    more = f" and {page['total'] - len(items)} more" if page["total"] > len(items) else ""
    raise click.ClickException(
        f"job id {wanted!r} is ambiguous: {page['total']} jobs start with it: {listed}{more}"
    )


def complete_job_ids(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of a job id: the short ids of recent jobs that start with what was typed,
    each with its kind and status (none when the API does not answer)."""
    api_url = ctx.params.get("api_url") or current_settings().api_url
    client = ApiClient(
        api_url, timeout=COMPLETION_TIMEOUT, api_key=os.environ.get("GENTRAIN_API_KEY")
    )
    wanted = incomplete.lower()
    try:
        page = client.jobs(
            limit=COMPLETIONS, id_prefix=wanted if len(wanted) >= MIN_PREFIX else None
        )
    except ApiClientError:
        return []
    return [
        CompletionItem(job["id"][:8], help=f"{job['kind']} {job['status']}")
        for job in page["items"]
        if job["id"].startswith(wanted)
    ]
