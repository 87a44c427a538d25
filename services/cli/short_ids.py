"""Short ids: every command that takes a job or sweep id also takes a unique prefix of it."""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from typing import Any

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


def resolve_id(
    noun: str, given: str, matching: Callable[[str], dict[str, Any]], shown_by: str
) -> str:
    """The full id of the ``noun`` (job, sweep) that ``given`` names: a whole id as it is, or
    the one whose id starts with it (at least 6 characters); a usage error otherwise, listing
    the matches of an ambiguous prefix. ``matching(prefix)`` is a page of the API's list filtered
    by ``id_prefix``; ``shown_by`` is the command that shows such ids."""
    wanted = given.strip().lower()
    if len(wanted) == ID_LENGTH:
        return wanted
    if not wanted or any(char not in string.hexdigits for char in wanted):
        raise click.ClickException(
            f"{given!r} is not a {noun} id (hex digits, as `{shown_by}` shows)"
        )
    if len(wanted) < MIN_PREFIX:
        raise click.ClickException(
            f"{noun} id {given!r} is too short: give at least {MIN_PREFIX} characters of it"
        )
    if len(wanted) > ID_LENGTH:
        raise click.ClickException(f"{given!r} is longer than a {noun} id ({ID_LENGTH} characters)")
    page = matching(wanted)
    items = page["items"]
    if not items:
        raise click.ClickException(f"no {noun} id starts with {wanted!r}")
    if len(items) == 1:
        return str(items[0]["id"])
    listed = ", ".join(f"{item['id']} ({item['kind']}, {item['status']})" for item in items)
    more = f" and {page['total'] - len(items)} more" if page["total"] > len(items) else ""
    raise click.ClickException(
        f"{noun} id {wanted!r} is ambiguous: {page['total']} {noun}s start with it: {listed}{more}"
    )


def resolve_job_id(client: ApiClient, job_id: str) -> str:
    """The full id of the job ``job_id`` names (a whole id or a unique prefix)."""
    return resolve_id(
        "job",
        job_id,
        lambda prefix: client.jobs(id_prefix=prefix, limit=SHOWN_MATCHES),
        "gentrain status",
    )


def resolve_sweep_id(client: ApiClient, sweep_id: str) -> str:
    """The full id of the sweep ``sweep_id`` names (a whole id or a unique prefix)."""
    return resolve_id(
        "sweep",
        sweep_id,
        lambda prefix: client.sweeps(id_prefix=prefix, limit=SHOWN_MATCHES),
        "gentrain sweep status",
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
