"""Sweeps (issue 15): submit a search of a kind's parameters, list and inspect sweeps, cancel.

The API creates the sweep and drives it once (its first trials are queued at once); workers and
the reaper drive it from then on (``shared.sweeps.driver``)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from services.api import deps, sweep_reads
from services.api.auth import caller, can_see
from services.api.errors import ApiError, not_found
from services.api.routes.jobs import ID_PREFIX, _check_quota, _enqueue, _lock_owner, _priority
from shared.datasets import is_dataset_name
from shared.db.models import Dataset, Sweep
from shared.job_specs import SpecError
from shared.kinds import KIND_SPECS
from shared.queue import TRAIN_TASK
from shared.sweeps.driver import cancel_sweep, create_sweep, drive_sweep
from shared.sweeps.spec import SweepSpec, validate_sweep_spec

log = logging.getLogger(__name__)
bp = Blueprint("sweeps", __name__, url_prefix="/v1/sweeps")


def _visible(sweep_id: str) -> dict[str, Any]:
    """The sweep's view, if the caller may see it (another owner's sweep is a 404)."""
    with deps.db_read() as connection:
        found = sweep_reads.fetch_sweep(connection, sweep_id)
    if found is None or not can_see(found[0].owner):
        raise not_found("sweep", sweep_id)
    return sweep_reads.sweep_view(*found)


def _check_split(spec: SweepSpec, dataset: Dataset) -> None:
    """A 422 when the objective names a split the dataset's trials will not report on (results
    are ``test_*`` with an x_test, else ``train_*``)."""
    split = "test" if "x_test" in (dataset.arrays or {}) else "train"
    other = "train" if split == "test" else "test"
    if spec.metric.startswith(f"{other}_"):
        metric = f"{split}_{spec.metric.removeprefix(other + '_')}"
        raise ApiError(
            422,
            "invalid_spec",
            f"trials on dataset {dataset.name!r} report {metric}, not {spec.metric}",
            "objective.metric",
        )


def _check_labels(spec: SweepSpec, dataset: Dataset) -> None:
    """A 422 naming the field when a trial would ask for labels (a conditional GAN, fixed in
    params or among the space's values) and the dataset has no y_train: found now, not when
    the trial runs."""
    if "y_train" in (dataset.arrays or {}):
        return
    for name in KIND_SPECS[spec.kind].label_params:
        if spec.params.get(name):
            field = f"params.{name}"
        elif any(spec.space.get(name, {}).get("values", [])):
            field = f"space.{name}"
        else:
            continue
        raise ApiError(
            422,
            "invalid_spec",
            f"{name} needs labels and dataset {dataset.name!r} has no y_train; upload a "
            f"dataset with labels or leave {name} out of the sweep",
            field,
        )


@bp.post("")
def submit_sweep() -> tuple[Response, int]:
    """Accept a sweep: validate it against the kind, store it, queue its first trials."""
    body = deps.json_body()
    settings = deps.settings()
    try:
        spec = validate_sweep_spec(body, settings.max_runtime_cap_seconds)
    except SpecError as error:
        code = "unknown_field" if error.message.startswith("unknown field") else "invalid_spec"
        raise ApiError(422, code, error.message, error.field) from None
    dataset_name = body.get("dataset")
    if not is_dataset_name(dataset_name):
        raise ApiError(422, "invalid_spec", "dataset must name an uploaded dataset", "dataset")
    priority = _priority(body)
    owner = caller().owner
    with deps.db() as session:
        _lock_owner(session, owner)
        _check_quota(session, owner, sampling=False)  # a sweep counts once, like one job
        query = select(Dataset).where(Dataset.owner == owner, Dataset.name == dataset_name)
        dataset = session.scalar(query.with_for_update(read=True))
        if dataset is None:
            message = f"dataset {dataset_name!r} not found"
            raise ApiError(422, "unknown_dataset", message, "dataset")
        _check_split(spec, dataset)
        _check_labels(spec, dataset)
        sweep_id = create_sweep(session, spec, owner, dataset.id, priority)
    # Committed first: Optuna's own connection writes the study (SQLite has one write lock).
    for job_id in drive_sweep(settings.database_url, sweep_id):
        _enqueue(job_id, TRAIN_TASK)
    response = jsonify(_visible(sweep_id))
    response.headers["Location"] = f"/v1/sweeps/{sweep_id}"
    return response, 202


@bp.get("")
def list_sweeps() -> Response:
    """Sweeps, newest first, with their status, counts of trials and best trial."""
    limit = deps.query_int("limit", 50, 1, 500)
    offset = deps.query_int("offset", 0, 0, 10**9)
    id_prefix = request.args.get("id_prefix")
    if id_prefix is not None and not ID_PREFIX.fullmatch(id_prefix):
        message = "id_prefix must be 6 to 32 lowercase hex digits (the start of a sweep id)"
        raise ApiError(422, "invalid_parameter", message, "id_prefix")
    owner = None if caller().is_admin else caller().owner
    with deps.db_read() as connection:
        total, found = sweep_reads.list_sweeps(connection, owner, limit, offset, id_prefix)
    items = [sweep_reads.sweep_view(sweep, trials, summary=True) for sweep, trials in found]
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


def _importances(sweep_id: str, view: dict[str, Any]) -> dict[str, float] | None:
    """The parameters' importances once enough trials succeeded (Optuna is imported then only:
    it is no part of the API's start)."""
    from shared.sweeps.study import MIN_TRIALS_FOR_IMPORTANCES, importances

    if view["counts"]["succeeded"] < MIN_TRIALS_FOR_IMPORTANCES:
        return None
    with deps.db() as session:
        sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        return None
    try:
        return importances(deps.settings().database_url, sweep)
    except Exception:  # noqa: BLE001 - a degenerate study: the view without them
        log.warning("sweep %s: cannot compute importances", sweep_id, exc_info=True)
        return None


@bp.get("/<sweep_id>")
def get_sweep(sweep_id: str) -> Response:
    """A sweep: its status, its trials' table, its best trial and its parameters' importances."""
    view = _visible(sweep_id)
    view["importances"] = _importances(sweep_id, view)
    return jsonify(view)


def cancel_visible_sweep(sweep_id: str) -> dict[str, Any]:
    """Cancel a sweep the caller may see (404 otherwise) unless it ended by itself (409): no
    more trials, and every queued and running one cancelled; its view after. Cancelling a
    cancelled sweep again changes nothing. Also the dashboard's Cancel button."""
    view = _visible(sweep_id)
    if view["finished_at"] is not None and view["cancelled_at"] is None:
        raise ApiError(409, "conflict", f"sweep {sweep_id} has already ended ({view['status']})")
    try:
        cancel_sweep(deps.settings().database_url, sweep_id)
    except LookupError:
        raise not_found("sweep", sweep_id) from None
    return _visible(sweep_id)


@bp.post("/<sweep_id>/cancel")
def cancel(sweep_id: str) -> tuple[Response, int]:
    """Cancel a sweep: no more trials, and every queued and running one cancelled."""
    return jsonify(cancel_visible_sweep(sweep_id)), 202
