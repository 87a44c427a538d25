"""The job page: a job's state, charts, sample grids, results, history, artifacts and log, rendered
on the server from the API's reads and kept live by the job's event stream (static/job.js)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, request, url_for
from flask.typing import ResponseReturnValue

from services.api import deps
from services.api.auth import can_see
from services.ui import display
from services.ui.blueprint import bp
from services.ui.context import ui_url
from services.ui.job_data import JobPage, final_grid_name, read_job_page, step_unit
from shared.job_state import JobStatus
from shared.kinds import KIND_SPECS, NEEDS_KEY, SAMPLE_KIND, SampleParams, params_json_schema


def notice(title: str, message: str, status: int) -> ResponseReturnValue:
    """A page that says what is wrong (not found, a bad request), with its HTTP status."""
    return render_template("notice.html", title=title, message=message), status


def job_not_found(job_id: str) -> ResponseReturnValue:
    """The page for a job that does not exist or is another owner's: both look the same."""
    return notice("Job not found", f"There is no job {job_id!r} you can see.", 404)


@dataclass(frozen=True)
class DrawField:
    """A sampling parameter of the model's kind beyond count and seed, as a text field."""

    name: str
    description: str
    # Takes a list: "7,3" is sent as [7, 3].
    is_list: bool


def draw_fields(model_kind: str, trained_with: dict[str, Any]) -> list[DrawField]:
    """The kind's own sampling parameters (from its definition) that apply to a model trained
    with ``trained_with``: one that needs a training parameter set is left out without it."""
    spec = KIND_SPECS.get(model_kind)
    if spec is None:
        return []
    fields = []
    for name, prop in params_json_schema(spec.sample_params)["properties"].items():
        needs = prop.get(NEEDS_KEY)
        if name in SampleParams.model_fields or (needs and not trained_with.get(needs)):
            continue
        options = prop.get("anyOf", [prop])
        is_list = any(option.get("type") == "array" for option in options)
        fields.append(DrawField(name, prop.get("description", ""), is_list))
    return fields


def _client_data(page: JobPage) -> dict[str, Any]:
    """What the page's script starts from: the rendered state and where its stream resumes."""
    view = page.view
    return {
        "id": view["id"],
        "kind": view["kind"],
        "status": view["status"],
        "terminal": JobStatus(view["status"]).is_terminal(),
        "unit": page.unit,
        "events_url": f"/v1/jobs/{view['id']}/events?logs=1",
        "last_event_id": page.last_event_id,
        "metrics": page.metrics,
        "grids": [{"step": g["step"], "url": g["url"], "name": g["name"]} for g in page.grids],
        "final_grid_name": final_grid_name(view),
        "log_end": page.log.end,
        "page_url": request.path,
    }


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> ResponseReturnValue:
    """One job's page (another owner's job is not found, as in the API)."""
    with deps.db_read() as connection:
        page = read_job_page(connection, job_id, request.host_url, can_see)
    if page is None:
        return job_not_found(job_id)
    view = page.view
    status = JobStatus(view["status"])
    trained = view["kind"] != SAMPLE_KIND
    return render_template(
        "job.html",
        job=view,
        page=page,
        display=display,
        unit=step_unit(view),
        terminal=status.is_terminal(),
        cancellable=status in (JobStatus.QUEUED, JobStatus.RUNNING),
        can_sample=trained and status is JobStatus.SUCCEEDED,
        draw_fields=draw_fields(view["model_kind"], view["params"] or {}) if trained else [],
        trained=trained,
        runtime=display.span(view["started_at"], view["finished_at"] or view["updated_at"]),
        client=_client_data(page),
        run_again_url=ui_url("ui.new_job", f"/ui/new?from={view['id']}", **{"from": view["id"]}),
        parent_url=url_for("ui.job", job_id=view["parent_id"]) if view["parent_id"] else None,
        compare_url=url_for("ui.compare", kind=view["model_kind"]) if trained else None,
        logs_url=f"/v1/jobs/{view['id']}/logs",
    )
