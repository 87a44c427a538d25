"""The reads behind ``GET /v1/jobs/<id>/logs``: a job's log chunks (``log`` entries of the change
log, see ``shared.jobs.record_log``) through SQLAlchemy Core, found by their offsets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select

from services.api.job_reads import EVENTS, JOBS
from shared.jobs import ChangeType

_IS_LOG = EVENTS.c.type == ChangeType.LOG.value
_ATTEMPT = EVENTS.c.payload["attempt"].as_integer()
_OFFSET = EVENTS.c.payload["offset"].as_integer()
_JOB_OFFSET = EVENTS.c.payload["job_offset"].as_integer()
# Most chunks one read stitches together (a chunk is about a second of a job's output).
MAX_CHUNKS = 1000


@dataclass(frozen=True)
class LogPage:
    """A stretch of a job's log from an offset."""

    status: str
    attempts: list[int]
    text: str
    truncated: bool


def read_log(
    connection: Connection,
    job_id: str,
    visible: Callable[[str], bool],
    attempt: int | None,
    offset: int,
    max_chars: int,
) -> LogPage | None:
    """At most ``max_chars`` of the job's log from ``offset`` (characters of the whole job's
    log, or of ``attempt``'s), or None if there is no such job or its owner is not ``visible``.

    The job's status is read first: once it is terminal every chunk was committed before it
    (the worker stores its log before the final status), so ``finished`` with nothing more to
    read means the log is complete."""
    job = connection.execute(select(JOBS.c.owner, JOBS.c.status).where(JOBS.c.id == job_id)).first()
    if job is None or not visible(job.owner):
        return None
    of_job = and_(EVENTS.c.job_id == job_id, _IS_LOG)
    attempts = connection.scalars(
        select(_ATTEMPT).where(of_job).group_by(_ATTEMPT).order_by(_ATTEMPT)
    ).all()
    latest = connection.scalar(
        select(EVENTS.c.payload).where(of_job).order_by(EVENTS.c.id.desc()).limit(1)
    )
    where: ColumnElement[bool] = of_job
    position = _JOB_OFFSET
    if attempt is not None:
        where, position = and_(of_job, _ATTEMPT == attempt), _OFFSET  # noqa: SIM300 - SQL
    # The chunk holding ``offset`` (the last one starting at or before it), then every later one.
    first = connection.scalar(
        select(EVENTS.c.id).where(where, position <= offset).order_by(EVENTS.c.id.desc()).limit(1)
    )
    start = [EVENTS.c.id >= first] if first is not None else []
    rows = connection.scalars(
        select(EVENTS.c.payload).where(where, *start).order_by(EVENTS.c.id).limit(MAX_CHUNKS)
    ).all()
    return LogPage(
        status=job.status,
        attempts=[int(number) for number in attempts],
        text=_stitch(rows, "job_offset" if attempt is None else "offset", offset, max_chars),
        truncated=bool(latest and latest.get("truncated")),
    )


def _stitch(chunks: Sequence[dict[str, Any]], key: str, offset: int, max_chars: int) -> str:
    """The text from ``offset`` on, at most ``max_chars`` of it."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        text: str = chunk["text"]
        begin = chunk[key]
        if begin + len(text) <= offset:
            continue
        piece = text[max(0, offset - begin) :]
        parts.append(piece[: max_chars - size])
        size += len(parts[-1])
        if size >= max_chars:
            break
    return "".join(parts)
