"""Event streams (Server-Sent Events): one job's changes, and the caller's job list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from flask import Blueprint, Response, current_app, request

from services.api import deps, event_reads
from services.api.auth import caller, can_see
from services.api.errors import ApiError, not_found
from services.api.event_cursor import CrossJobCursor, CursorError
from services.api.event_stream import StreamSettings, job_events, list_events
from services.api.event_wakeups import WakeUps

bp = Blueprint("events", __name__)

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # A buffering proxy (nginx) must pass each event on as it comes.
    "X-Accel-Buffering": "no",
}


def _stream_settings() -> StreamSettings:
    settings = deps.settings()
    return StreamSettings(
        database_url=settings.database_url,
        base_url=request.host_url,
        keepalive_seconds=settings.event_keepalive_seconds,
        wakeups=cast(WakeUps, current_app.extensions["gentrain.wakeups"]),
    )


def _last_event_id() -> str | None:
    """The id a reconnecting client resumes after: the Last-Event-ID header (sent by browsers'
    EventSource), or ``last_event_id`` in the query for a first connection."""
    return request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or None


def _flag(name: str) -> bool:
    raw = request.args.get(name, "0").lower()
    if raw not in {"0", "1", "true", "false"}:
        raise ApiError(422, "invalid_parameter", f"{name} must be 0 or 1", name)
    return raw in {"1", "true"}


def _stream(events: Iterator[str]) -> Response:
    return Response(events, mimetype="text/event-stream", headers=STREAM_HEADERS)


@bp.get("/v1/jobs/<job_id>/events")
def job_stream(job_id: str) -> Response:
    """A job's history, progress, metrics, artifacts (and, with ``logs=1``, log lines) as they
    happen; it replays what already happened first and ends after the terminal status."""
    logs = _flag("logs")
    raw = _last_event_id()
    after = 0
    if raw is not None:
        if not raw.strip().isdigit():
            raise ApiError(
                422,
                "invalid_parameter",
                "Last-Event-ID must be an id of this stream",
                "Last-Event-ID",
            )
        after = int(raw)
    with deps.db_read() as connection:
        state = event_reads.job_state(connection, job_id)
    if state is None or not can_see(state.owner):
        raise not_found("job", job_id)
    return _stream(job_events(_stream_settings(), job_id, after, logs))


@bp.get("/v1/events")
def list_stream() -> Response:
    """The caller's jobs (an admin's: everyone's) being created and changing status or progress;
    it replays from the start, or from ``Last-Event-ID``, and does not end by itself."""
    raw = _last_event_id()
    try:
        cursor = CrossJobCursor.parse(raw) if raw is not None else CrossJobCursor(0)
    except CursorError as error:
        raise ApiError(422, "invalid_parameter", str(error), "Last-Event-ID") from None
    owner = None if caller().is_admin else caller().owner
    return _stream(list_events(_stream_settings(), owner, cursor))
