"""Following a job's event stream from the CLI: a Server-Sent Events reader that reconnects with
``Last-Event-ID`` when the connection drops, and tells its caller to fall back to polling when
the stream cannot be had (an older server, a proxy that refuses it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from services.cli.client import ApiClient, ApiClientError

TERMINAL = {"succeeded", "failed", "cancelled"}
# Longer than the server's keep-alive (15 s): a silent connection this long is dead.
READ_TIMEOUT = 45.0
RECONNECTS = 5


class StreamUnavailable(Exception):
    """The event stream could not be read; poll instead."""


@dataclass(frozen=True)
class StreamEvent:
    """One event: its type, its JSON data, and its id. A keep-alive comment has type ``""``."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """Events of a text/event-stream body, given line by line (keep-alives as empty events)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                data = json.loads(fields["data"])
                yield StreamEvent(fields.get("event", "message"), data, fields.get("id"))
            fields = {}
        elif line.startswith(":"):
            yield StreamEvent("")
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = (
                f"{fields[name]}\n{value}" if name == "data" and name in fields else value
            )


def follow_job(client: ApiClient, job_id: str, logs: bool = False) -> Iterator[StreamEvent]:
    """A job's events from the start until its terminal status, across dropped connections;
    StreamUnavailable if it cannot be read (a 404 for the job is an ApiClientError)."""
    last_id: str | None = None
    failures = 0
    params = {"logs": "1"} if logs else {}
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            response = client.open_stream(
                f"/v1/jobs/{job_id}/events", params, headers, READ_TIMEOUT
            )
        except ApiClientError as error:
            if error.status == 404 and last_id is None:
                # An API without streams answers 404 for the path, but so does a missing job:
                # tell them apart by the job itself.
                client.job(job_id)
                raise StreamUnavailable(str(error)) from None
            if error.status == 0 or error.status >= 500:  # unreachable for now: retry
                failures += 1
                if failures > RECONNECTS:
                    raise StreamUnavailable(str(error)) from None
                time.sleep(min(2.0, 0.2 * 2**failures))
                continue
            raise
        except requests.RequestException as error:
            failures += 1
            if failures > RECONNECTS:
                raise StreamUnavailable(str(error)) from None
            time.sleep(min(2.0, 0.2 * 2**failures))
            continue
        ended = False
        try:
            with response:
                for event in parse_events(response.iter_lines(decode_unicode=True)):
                    if event.id is not None:
                        last_id, failures = event.id, 0
                    yield event
                    if event.type == "status" and event.data.get("status") in TERMINAL:
                        ended = True
                        return
        except (requests.RequestException, ValueError):
            pass  # dropped mid-stream: resume from the last id
        if not ended:
            failures += 1
            if failures > RECONNECTS:
                raise StreamUnavailable("the event stream kept closing")
            time.sleep(min(2.0, 0.2 * 2**failures))
