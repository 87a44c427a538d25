"""The dashboard's Delete buttons: a job (with its sampling jobs) from its page, a dataset from
its page. Each is a form posted with the session's CSRF token (checked for every unsafe request
by ``services.api.auth``) that deletes through the API's own checks (``routes/removal.py``): an
ended job only, a dataset no queued or running job uses, another owner's is not found."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

from services.api.auth import caller
from services.api.errors import ApiError
from services.api.routes.removal import remove_dataset, remove_job
from services.ui.blueprint import bp
from services.ui.context import ui_url
from services.ui.pages_job import notice


@bp.post("/jobs/<job_id>/delete")
def delete_job(job_id: str) -> ResponseReturnValue:
    """Delete an ended job, then show the jobs list (a notice with the reason if refused)."""
    try:
        remove_job(job_id)
    except ApiError as error:
        title = "Job not found" if error.status == 404 else "The job cannot be deleted"
        return notice(title, error.message, error.status)
    return redirect(ui_url("ui.jobs", "/ui/"), code=303)


@bp.post("/datasets/<name>/delete")
def delete_dataset(name: str) -> ResponseReturnValue:
    """Delete a dataset, then show the datasets list (a notice with the reason if refused)."""
    owner = request.args.get("owner") or caller().owner
    try:
        remove_dataset(name, owner)
    except ApiError as error:
        title = "Dataset not found" if error.status == 404 else "The dataset cannot be deleted"
        return notice(title, error.message, error.status)
    return redirect(url_for("ui.datasets"), code=303)
