"""The jobs page: the caller's jobs (an admin's: everyone's), newest first, filtered by status and
kind, a page at a time; kept live by the job-list stream (static/jobs.js), which resumes after
the change-log entry the page was rendered at."""

from __future__ import annotations

import math
from typing import Any

from flask import render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection

from services.api import deps, event_reads, job_reads
from services.api.auth import caller
from services.api.job_reads import JOBS, AnyRow
from services.api.views import KEY_RESULTS, job_summary, key_result
from services.ui import display
from services.ui.blueprint import bp
from services.ui.context import ui_url
from shared.job_state import JobStatus
from shared.kinds import job_kinds

PAGE_SIZE = 25
_J = JOBS.c
_EXTRA_COLUMNS = (_J.results, _J.started_at)


def row_view(row: AnyRow) -> dict[str, Any]:
    """A table row: the API's summary with the key result and the run time so far."""
    view = job_summary(row)
    view["owner"] = row.owner
    view["started_at"] = row.started_at.isoformat() if row.started_at else None
    view["key_result"] = key_result(row.model_kind, row.kind, row.results)
    view["seconds"] = display.span(view["started_at"], view["finished_at"])
    return view


def read_jobs(
    connection: Connection, owner: str | None, status: str | None, kind: str | None, page: int
) -> tuple[int, list[dict[str, Any]]]:
    """The total of matching jobs and one page of rows (two statements)."""
    offset = (page - 1) * PAGE_SIZE
    total, rows = job_reads.list_jobs(
        connection, owner, status, kind, PAGE_SIZE, offset, extra_columns=_EXTRA_COLUMNS
    )
    return total, [row_view(row) for row in rows]


def _choice(name: str, allowed: list[str]) -> str | None:
    value = request.args.get(name) or None
    return value if value in allowed else None


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), 10**6)) if raw.isdigit() else 1


@bp.get("/")
def jobs() -> ResponseReturnValue:
    """The jobs table with its filters and pages."""
    statuses = [status.value for status in JobStatus]
    kinds = job_kinds()
    status, kind, page = _choice("status", statuses), _choice("kind", kinds), _page_number()
    current = caller()
    owner = None if current.is_admin else current.owner
    with deps.db_read() as connection:
        # The head first: anything committed after it comes by the stream (perhaps again,
        # which the script merges), nothing falls between the two.
        head = event_reads.head(connection)
        total, rows = read_jobs(connection, owner, status, kind, page)
    pages = max(1, math.ceil(total / PAGE_SIZE))

    def page_link(number: int) -> str:
        return url_for("ui.jobs", status=status, kind=kind, page=number if number > 1 else None)

    client = {
        "events_url": "/v1/events",
        "last_event_id": str(head),
        "status": status,
        "kind": kind,
        "first_page": page == 1,
        "key_results": KEY_RESULTS,
        # A job's page is this with its id in place of JOB_ID.
        "job_url": ui_url("ui.job", "/ui/jobs/JOB_ID", job_id="JOB_ID"),
        "show_owner": current.is_admin and bool(current.owner),
    }
    return render_template(
        "jobs.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        newer_url=page_link(page - 1) if page > 1 else None,
        older_url=page_link(page + 1) if page < pages else None,
        status=status,
        kind=kind,
        statuses=statuses,
        kinds=kinds,
        filtered=bool(status or kind),
        client=client,
        display=display,
        show_owner=client["show_owner"],
    )
