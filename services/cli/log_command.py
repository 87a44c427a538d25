"""``gentrain logs JOB [--attempt N] [-f]``: print a job's stored log, or follow it to its end
(on the job's event stream, polling when the stream cannot be had)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from services.cli.client import ApiClient, ApiClientError
from services.cli.client_commands import api_url_option
from services.cli.common import current_settings
from services.cli.event_stream import StreamUnavailable, follow_job
from services.cli.short_ids import complete_job_ids, resolve_job_id

# How often a follower asks for more while the job runs.
FOLLOW_SECONDS = 1.0
# How long a follower keeps asking through an outage (API restarting, 5xx) before it gives up.
OUTAGE_SECONDS = 120.0


def follow_log(
    client: ApiClient,
    job_id: str,
    attempt: int | None,
    follow: bool,
    write: Callable[[str], None],
) -> dict[str, Any]:
    """Pass the job's log to ``write`` from the start; with ``follow``, until the job has ended
    and all of it was read: on the job's event stream (each chunk the moment it is stored), or
    by polling if the stream cannot be had. The last page read is returned."""
    written = [0]  # the offset written up to, kept if the stream breaks
    if follow:
        with contextlib.suppress(StreamUnavailable):  # then poll from where the stream stopped
            _stream_log(client, job_id, attempt, write, written)
    return _poll_log(client, job_id, attempt, follow, write, written[0])


def _stream_log(
    client: ApiClient,
    job_id: str,
    attempt: int | None,
    write: Callable[[str], None],
    written: list[int],
) -> None:
    """Write the log chunks of the job's stream until its end, noting the offset written up to."""
    for event in follow_job(client, job_id, logs=True):
        if event.type != "log" or (attempt is not None and event.data["attempt"] != attempt):
            continue
        text = event.data["text"]
        write(text)
        start = event.data["offset"] if attempt is not None else event.data["job_offset"]
        written[0] = start + len(text)


def _poll_log(
    client: ApiClient,
    job_id: str,
    attempt: int | None,
    follow: bool,
    write: Callable[[str], None],
    offset: int,
) -> dict[str, Any]:
    down_since: float | None = None
    while True:
        try:
            page = client.logs(job_id, attempt, offset)
        except ApiClientError as error:
            transient = error.status == 0 or error.status >= 500
            now = time.monotonic()
            down_since = now if down_since is None else down_since
            if not (follow and transient) or now - down_since > OUTAGE_SECONDS:
                raise
            time.sleep(FOLLOW_SECONDS)  # the API is restarting or away: from the same offset
            continue
        down_since = None
        if page["text"]:
            write(page["text"])
            offset = page["next_offset"]
            continue  # more may be waiting (a page holds at most 256 KiB)
        # Read after the job ended, an empty page means the log is complete: the worker stores
        # its log before the job's final status.
        if not follow or page["finished"]:
            return page
        time.sleep(FOLLOW_SECONDS)


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@click.option("--attempt", type=click.IntRange(1), default=None, help="one attempt's log only")
@click.option("--follow", "-f", is_flag=True, help="keep printing until the job ends")
@api_url_option
def logs(job_id: str, attempt: int | None, follow: bool, api_url: str | None) -> None:
    """Print JOB_ID's log (what its attempts printed and logged); -f follows it to the end."""
    client = ApiClient(
        api_url or current_settings().api_url, api_key=os.environ.get("GENTRAIN_API_KEY")
    )

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    page = follow_log(client, resolve_job_id(client, job_id), attempt, follow, write)
    if page["truncated"]:
        click.echo("(the log reached its size cap; later lines were not kept)", err=True)
