"""The sweeps' pages (issue 15): the caller's sweeps, and one sweep: its trials' table sortable
by objective, a scatter of the objective against each searched parameter (inline SVG, drawn on
the server), links to the trials' job pages, and a Cancel button (a form posted with the
session's CSRF token, cancelling through the API's own checks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from services.api import deps, sweep_reads
from services.api.auth import caller, can_see
from services.api.errors import ApiError
from services.api.routes.sweeps import cancel_visible_sweep
from services.ui import display
from services.ui.blueprint import bp
from services.ui.pages_job import notice

LIST_LIMIT = 100
# The scatter's drawing area in SVG units, inside its margins.
WIDTH, HEIGHT, MARGIN = 320, 180, 36


@dataclass(frozen=True)
class Point:
    """One succeeded trial on a scatter: where it is drawn, what it is, and its job."""

    x: float
    y: float
    label: str
    job_id: str


@dataclass(frozen=True)
class Scatter:
    """The objective against one parameter: points, and the axes' end labels."""

    name: str
    points: list[Point]
    x_range: tuple[str, str]
    y_range: tuple[str, str]
    log: bool


def _position(values: list[float], log: bool) -> list[float]:
    """Values mapped onto 0..1 (a log scale when ``log``; one value: the middle)."""
    scaled = [math.log10(v) for v in values] if log else list(values)
    low, high = min(scaled), max(scaled)
    if high == low:
        return [0.5 for _ in scaled]
    return [(v - low) / (high - low) for v in scaled]


def scatter(name: str, dim: dict[str, Any], table: list[dict[str, Any]]) -> Scatter | None:
    """The objective of each scored trial against parameter ``name``; None before one scored."""
    rows = [row for row in table if row["objective"] is not None]
    if not rows:
        return None
    raw = [row["params"].get(name) for row in rows]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    if numeric:
        log = bool(dim.get("log")) or (min(raw) > 0 and max(raw) / min(raw) >= 100)
        xs = _position([float(v) for v in raw], log)
        x_range = (display.number(min(raw)), display.number(max(raw)))
    else:  # categories, in the space's order
        order = [json_key(v) for v in dim.get("values", [])] or sorted({json_key(v) for v in raw})
        places = {value: index for index, value in enumerate(order)}
        xs = _position([float(places.get(json_key(v), 0)) for v in raw], False)
        log, x_range = False, (order[0], order[-1])
    objectives = [float(row["objective"]) for row in rows]
    ys = _position(objectives, False)
    points = [
        Point(
            MARGIN + x * WIDTH,
            MARGIN + (1 - y) * HEIGHT,
            f"{name}={row['params'].get(name)}: {display.number(row['objective'])}",
            row["job_id"],
        )
        for x, y, row in zip(xs, ys, rows, strict=True)
    ]
    y_range = (display.number(min(objectives)), display.number(max(objectives)))
    return Scatter(name, points, x_range, y_range, log)


def json_key(value: Any) -> str:
    """A category's label."""
    return str(value)


def sorted_table(view: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """The trials, by trial number or best objective first (trials without one last)."""
    table = list(view["trial_jobs"])
    if by != "objective":
        return table
    sign = 1 if view["objective"]["direction"] == "minimize" else -1

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row["objective"]
        return (1, 0.0) if value is None else (0, sign * value)

    return sorted(table, key=key)


@bp.get("/sweeps")
def sweeps() -> ResponseReturnValue:
    """The caller's sweeps (an admin's: everyone's), newest first."""
    owner = None if caller().is_admin else caller().owner
    with deps.db_read() as connection:
        total, found = sweep_reads.list_sweeps(connection, owner, LIST_LIMIT, 0)
    items = [sweep_reads.sweep_view(sweep, trials, summary=True) for sweep, trials in found]
    return render_template("sweeps.html", sweeps=items, total=total, display=display)


@bp.get("/sweeps/<sweep_id>")
def sweep(sweep_id: str) -> ResponseReturnValue:
    """One sweep: its trials sortable by objective, scatters, links to the trials' jobs."""
    with deps.db_read() as connection:
        found = sweep_reads.fetch_sweep(connection, sweep_id)
    if found is None or not can_see(found[0].owner):
        return notice("Sweep not found", f"There is no sweep {sweep_id!r} you can see.", 404)
    view = sweep_reads.sweep_view(*found)
    by = request.args.get("sort", "trial")
    scatters = [
        chart
        for name, dim in view["space"].items()
        if (chart := scatter(name, dim, view["trial_jobs"])) is not None
    ]
    return render_template(
        "sweep.html",
        sweep=view,
        table=sorted_table(view, by),
        sort=by,
        scatters=scatters,
        size=(WIDTH + 2 * MARGIN, HEIGHT + 2 * MARGIN),
        margin=MARGIN,
        display=display,
    )


@bp.post("/sweeps/<sweep_id>/cancel")
def cancel_sweep(sweep_id: str) -> ResponseReturnValue:
    """Cancel a sweep, then show it again (a notice with the reason if refused)."""
    try:
        cancel_visible_sweep(sweep_id)
    except ApiError as error:
        title = "Sweep not found" if error.status == 404 else "The sweep cannot be cancelled"
        return notice(title, error.message, error.status)
    return redirect(url_for("ui.sweep", sweep_id=sweep_id), code=303)
