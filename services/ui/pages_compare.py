"""The compare page: 2-6 training jobs of one kind side by side (curves overlaid per metric,
results and parameters with their differences marked, final grids), or a picker of the caller's
succeeded jobs of a kind when none are named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection

from services.api import deps, job_reads
from services.api.auth import caller, can_see
from services.api.views import job_summary, job_view
from services.ui import display
from services.ui.blueprint import bp
from services.ui.context import ui_url
from services.ui.job_data import (
    MAX_ARTIFACTS,
    MAX_METRIC_ROWS,
    metric_columns,
    split_artifacts,
    step_unit,
)
from services.ui.pages_job import notice
from shared.job_state import JobStatus
from shared.kinds import KIND_SPECS, SAMPLE_KIND

MIN_JOBS, MAX_JOBS = 2, 6
# The most jobs the picker lists (the newest succeeded ones).
PICKER_LIMIT = 100


@dataclass(frozen=True)
class Row:
    """One line of a side-by-side table: a name, each job's value, and whether they differ."""

    name: str
    values: list[Any]
    differs: bool


def requested_ids() -> list[str]:
    """The job ids asked for: ``jobs=a,b`` or ``jobs=a&jobs=b`` (a picker's checkboxes), in
    order, each once."""
    ids: list[str] = []
    for value in request.args.getlist("jobs"):
        for part in value.split(","):
            part = part.strip()
            if part and part not in ids:
                ids.append(part)
    return ids


def side_by_side(tables: list[dict[str, Any]], skip_shares: bool = False) -> list[Row]:
    """Rows of every name in any of ``tables`` (first seen first), each job's value (None where
    it has none) and whether the values differ."""
    names: dict[str, None] = {}
    for table in tables:
        names.update(dict.fromkeys(table))
    rows = []
    for name in names:
        values = [table.get(name) for table in tables]
        if skip_shares and any(display.is_shares(value) for value in values):
            continue
        seen = {json.dumps(value, sort_keys=True, default=str) for value in values}
        rows.append(Row(name, values, len(seen) > 1))
    return rows


def _read_jobs(connection: Connection, ids: list[str]) -> list[dict[str, Any]] | str:
    """Each job's view with its metrics and final grid, or the first id not found (or not the
    caller's to see). A handful of statements per job, at most MAX_JOBS jobs."""
    jobs = []
    for job_id in ids:
        record = job_reads.fetch_job(connection, job_id, MAX_ARTIFACTS)
        if record is None or not can_see(record.job.owner):
            return job_id
        view = job_view(record, request.host_url)
        _, rows = job_reads.job_metrics(connection, job_id, MAX_METRIC_ROWS)
        _, final, _ = split_artifacts(view, view["artifacts"])
        jobs.append({"view": view, "metrics": metric_columns(rows), "final_grid": final})
    return jobs


def picker(kind: str | None, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    """The caller's succeeded jobs of ``kind`` to tick, with ``error`` said above them."""
    kinds = list(KIND_SPECS)
    if kind not in kinds:
        kind = kinds[0]
    owner = None if caller().is_admin else caller().owner
    with deps.db_read() as connection:
        total, rows = job_reads.list_jobs(
            connection, owner, JobStatus.SUCCEEDED.value, kind, PICKER_LIMIT, 0
        )
    return (
        render_template(
            "compare_pick.html",
            kind=kind,
            kinds=kinds,
            jobs=[job_summary(row) for row in rows],
            total=total,
            error=error,
            display=display,
            min_jobs=MIN_JOBS,
            max_jobs=MAX_JOBS,
        ),
        status,
    )


@bp.get("/compare")
def compare() -> ResponseReturnValue:
    """Jobs named by ``jobs`` compared, or the picker (``kind``) when none are named."""
    ids = requested_ids()
    kind = request.args.get("kind")
    if not ids:
        return picker(kind)
    if not MIN_JOBS <= len(ids) <= MAX_JOBS:
        message = f"Pick {MIN_JOBS} to {MAX_JOBS} jobs to compare ({len(ids)} named)."
        return picker(kind, message, 400)
    with deps.db_read() as connection:
        jobs = _read_jobs(connection, ids)
    if isinstance(jobs, str):
        return notice("Job not found", f"There is no job {jobs!r} you can see.", 404)
    kinds = {job["view"]["model_kind"] for job in jobs}
    if any(job["view"]["kind"] == SAMPLE_KIND for job in jobs):
        return picker(kind, "Sampling jobs have no training to compare: pick training jobs.", 400)
    if len(kinds) > 1:
        message = f"Compare jobs of one kind; these are {', '.join(sorted(kinds))}."
        return picker(kind, message, 400)
    views = [job["view"] for job in jobs]
    model_kind = views[0]["model_kind"]
    client = {
        "unit": step_unit(views[0]),
        "jobs": [{"label": view["id"][:8], "metrics": job["metrics"]} for view, job in
                 zip(views, jobs, strict=True)],
    }  # fmt: skip
    results = [view["results"] or {} for view in views]
    return render_template(
        "compare.html",
        kind=model_kind,
        jobs=jobs,
        views=views,
        params=side_by_side([view["params"] for view in views]),
        results=side_by_side(results, skip_shares=True),
        shares=[
            name
            for name in dict.fromkeys(name for table in results for name in table)
            if any(display.is_shares(table.get(name)) for table in results)
        ],
        client=client,
        display=display,
        pick_url=ui_url("ui.compare", "/ui/compare", kind=model_kind),
    )
