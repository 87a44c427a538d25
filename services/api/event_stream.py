"""Server-Sent Events of the change log: one job's stream, and the stream of an owner's jobs.

Both replay from a cursor and then follow: a stream reads the entries after its cursor from the
database, sends them, and once caught up takes new ones from the process's window of recent
entries (``event_recent``, read once for all streams by ``event_wakeups``) each time it is woken
or its keep-alive is due; it reads the database again only if it falls behind the window. It
holds no database connection while it waits, so an open stream costs its greenlet and a few
kilobytes, not a worker or a connection. Events carry ``id:`` lines; a client that reconnects
with ``Last-Event-ID`` gets exactly what it has not had.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.api import event_reads
from services.api.event_cursor import GAP_GRACE_SECONDS, CrossJobCursor
from services.api.event_wakeups import WakeUps, job_key, owner_key
from services.api.job_reads import AnyRow
from shared.db.session import read_connection
from shared.job_state import JobStatus
from shared.jobs import ChangeType

# The entry types of one job's stream; logs only when asked for.
JOB_TYPES = (
    ChangeType.STATUS.value,
    ChangeType.PROGRESS.value,
    ChangeType.METRICS.value,
    ChangeType.ARTIFACT.value,
)
PAGE = 500
# How long a client waits before reconnecting after the connection drops, in milliseconds.
RETRY_MS = 2000


def sse(event: str, data: dict[str, Any], event_id: str | int | None = None) -> str:
    """One event in the text/event-stream format (the JSON has no newline of its own)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    return f"{head}event: {event}\ndata: {body}\n\n"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def entry_data(row: AnyRow, base_url: str) -> dict[str, Any]:
    """What an event of one job's stream says: the entry's payload, its job, time and kind."""
    data: dict[str, Any] = {"job_id": row.job_id, "at": _iso(row.at)}
    data.update(row.payload or {})
    if row.type == ChangeType.STATUS.value:
        data["status"] = row.status
        data["message"] = row.message
    elif row.type == ChangeType.ARTIFACT.value:
        data["url"] = f"{base_url}v1/jobs/{row.job_id}/artifacts/{data.get('name', '')}"
    return data


def _is_terminal(row: AnyRow) -> bool:
    return row.type == ChangeType.STATUS.value and JobStatus(row.status).is_terminal()


@dataclass(frozen=True)
class StreamSettings:
    """What a stream needs once its request is gone."""

    database_url: str
    base_url: str
    keepalive_seconds: float
    wakeups: WakeUps


def job_events(settings: StreamSettings, job_id: str, after: int, logs: bool) -> Iterator[str]:
    """The stream of one job: every entry after ``after``, then new ones as they commit; it ends
    after the job's terminal status (at once if that was already sent)."""
    types = JOB_TYPES + ((ChangeType.LOG.value,) if logs else ())
    recent = settings.wakeups.recent
    with settings.wakeups.waiter([job_key(job_id)]) as waiter:
        yield f"retry: {RETRY_MS}\n\n"
        checked_end = False
        last_sent = time.monotonic()
        position: int | None = None  # where it reads on in the process's window, once caught up
        while True:
            window = recent.since_for_job(job_id, position) if position is not None else None
            if window is not None:
                fresh, position = window
                rows = [row for row in fresh if row.id > after and row.type in types]
            else:
                mark = recent.mark()  # what this read misses is in the window from here on
                with read_connection(settings.database_url) as connection:
                    rows = event_reads.job_entries(connection, job_id, after, types, PAGE)
                    if not rows and not checked_end:
                        state = event_reads.job_state(connection, job_id)
                        if state is None or JobStatus(state.status).is_terminal():
                            return  # ended before ``after`` (or deleted): nothing more will come
                        checked_end = True
            events, ended = [], False
            for row in rows:
                after = row.id
                events.append(sse(row.type, entry_data(row, settings.base_url), row.id))
                if ended := _is_terminal(row):
                    break
            if events:  # one write for what one read found
                yield "".join(events)
                last_sent = time.monotonic()
            if ended:
                return
            if window is None:
                if len(rows) == PAGE:
                    continue
                # Caught up: the rest comes from the window (log text is not kept there).
                position = None if logs else mark
            remaining = settings.keepalive_seconds - (time.monotonic() - last_sent)
            if remaining <= 0 or not waiter.wait(remaining):
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()


def list_entry_data(row: AnyRow) -> dict[str, Any]:
    """What an event of the job-list stream says: the change and the job's fixed fields."""
    data: dict[str, Any] = {
        "job_id": row.job_id,
        "at": _iso(row.at),
        "kind": row.kind,
        "model_kind": row.model_kind,
        "dataset": row.dataset_name,
        "parent_id": row.parent_id,
        "created_at": _iso(row.created_at),
    }
    data.update(row.payload or {})
    if row.type == ChangeType.STATUS.value:
        data["status"] = row.status
        data["message"] = row.message
    return data


def list_events(
    settings: StreamSettings, owner: str | None, cursor: CrossJobCursor
) -> Iterator[str]:
    """The stream of ``owner``'s jobs (None: everyone's): creations, status and progress
    changes after ``cursor``, then new ones as they commit. It never ends by itself."""
    recent = settings.wakeups.recent
    with settings.wakeups.waiter([owner_key(owner)]) as waiter:
        yield f"retry: {RETRY_MS}\n\n"
        last_sent = time.monotonic()
        start = cursor.floor
        position: int | None = None  # where it reads on in the process's window, once caught up
        while True:
            window = recent.since(position) if position is not None else None
            if window is not None:
                rows, position = window
            else:
                mark = recent.mark()  # what this read misses is in the window from here on
                with read_connection(settings.database_url) as connection:
                    rows = event_reads.entries_after(connection, start, PAGE)
            events = []
            settled_before = datetime.now(UTC) - timedelta(seconds=GAP_GRACE_SECONDS)
            cursor.take([])  # settles holes waited out, even when nothing new came
            for row in rows:  # one at a time: each event's id is the cursor just after it
                if not cursor.take([row.id], old=row.at < settled_before):
                    continue
                if row.type not in event_reads.LIST_TYPES:
                    continue
                if owner is not None and row.owner != owner:
                    continue
                cursor.delivered(row.id)
                events.append(sse(row.type, list_entry_data(row), cursor.token()))
            if events:  # one write for what one read found
                yield "".join(events)
                last_sent = time.monotonic()
            if window is None:
                if len(rows) == PAGE:
                    # Read on past this page, even while a hole below it holds the floor back
                    # (else a hole with a page behind it would stall the stream for the grace
                    # period).
                    start = rows[-1].id
                    continue
                start = cursor.floor  # caught up: from the floor again, for ids committed late
                position = mark  # then from the window
            # Waiting out a hole (an id not committed yet): look again soon even unwoken.
            pause = 0.5 if cursor.waiting else settings.keepalive_seconds
            remaining = min(pause, settings.keepalive_seconds - (time.monotonic() - last_sent))
            woken = remaining > 0 and waiter.wait(remaining)
            if not woken and time.monotonic() - last_sent >= settings.keepalive_seconds:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
