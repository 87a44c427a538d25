"""A job's stored log: what its attempts printed and logged, read from an offset."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from services.api import deps, log_reads
from services.api.auth import can_see
from services.api.errors import not_found
from shared.job_state import JobStatus

bp = Blueprint("logs", __name__, url_prefix="/v1/jobs")

# Most characters one answer carries; a client reads on from next_offset.
LOG_PAGE_CHARS = 256 * 1024
MAX_ATTEMPT = 1_000_000
MAX_OFFSET = 2**40


@bp.get("/<job_id>/logs")
def get_logs(job_id: str) -> Response:
    """A job's log from ``offset``: the whole job's (attempts in order), or one attempt's."""
    attempt = deps.query_int("attempt", 0, 1, MAX_ATTEMPT) if "attempt" in request.args else None
    offset = deps.query_int("offset", 0, 0, MAX_OFFSET)
    with deps.db_read() as connection:
        page = log_reads.read_log(connection, job_id, can_see, attempt, offset, LOG_PAGE_CHARS)
    if page is None:
        raise not_found("job", job_id)
    return jsonify(
        {
            "job_id": job_id,
            "attempts": page.attempts,
            "attempt": attempt,
            "offset": offset,
            "next_offset": offset + len(page.text),
            "text": page.text,
            "truncated": page.truncated,
            "finished": JobStatus(page.status).is_terminal(),
        }
    )
