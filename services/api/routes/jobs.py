"""Jobs: submit training and sampling jobs, list and inspect them, cancel, fetch artifacts."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import deps, job_reads
from services.api.auth import caller, can_see
from services.api.errors import ApiError, not_found
from services.api.job_reads import JobRecord
from services.api.views import job_summary, job_view, metric_view
from shared.dataset_registry import MNIST_NAME
from shared.datasets import DATASET_NAME
from shared.db.models import Dataset, Job, utcnow
from shared.job_specs import SpecError, validate_sample_params, validate_training_spec
from shared.job_state import IllegalTransition, JobStatus
from shared.jobs import NewJob, create_job, mark_enqueued, request_cancel
from shared.kinds import SAMPLE_KIND, job_kinds
from shared.queue import SAMPLE_TASK, TRAIN_TASK, enqueue

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")

SUBMIT_FIELDS = {"kind", "dataset", "params"}


def _visible_job(job_id: str) -> JobRecord:
    """The job with all its view shows, if the caller may see it; another owner's job is a 404
    like a missing one."""
    with deps.db_read() as connection:
        record = job_reads.fetch_job(connection, job_id)
    if record is None or not can_see(record.job.owner):
        raise not_found("job", job_id)
    return record


def _check_visible(connection: Connection, job_id: str) -> None:
    """A 404 unless the job exists and the caller may see it (by its owner alone)."""
    owner = job_reads.job_owner(connection, job_id)
    if owner is None or not can_see(owner):
        raise not_found("job", job_id)


def _enqueue(job_id: str, task_name: str) -> None:
    """Send the job to the queue. If the broker is down the job stays queued in the database and
    the reaper sends it once the broker is back."""
    try:
        enqueue(deps.celery(), task_name, job_id)
    except Exception as error:  # noqa: BLE001 - any broker failure
        log.warning("enqueue of %s failed (the reaper will send it): %s", job_id, error)
        return
    with deps.db() as session:
        mark_enqueued(session, job_id)


def _check_rate(session: Session, owner: str) -> None:
    """A 429 when ``owner`` submitted too many jobs in the last minute."""
    limit = deps.settings().submit_rate_per_minute
    since = utcnow() - timedelta(seconds=60)
    recent = session.scalar(
        select(func.count()).select_from(Job).where(Job.owner == owner, Job.created_at >= since)
    )
    if (recent or 0) >= limit:
        raise ApiError(
            429,
            "rate_limited",
            f"at most {limit} submissions a minute; try again shortly",
            headers={"Retry-After": "60"},
        )


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not 1 <= len(key) <= 128 or not key.isprintable()):
        raise ApiError(
            422,
            "invalid_header",
            "Idempotency-Key must be 1-128 printable characters",
            "Idempotency-Key",
        )
    return key


def _replayed(session: Session, owner: str, key: str | None) -> str | None:
    if key is None:
        return None
    query = select(Job.id).where(Job.owner == owner, Job.idempotency_key == key)
    return session.scalar(query)


def _created(job_id: str) -> tuple[Response, int]:
    response = jsonify(job_view(_visible_job(job_id), request.host_url))
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return response, 202


@bp.post("")
def submit_job() -> tuple[Response, int]:
    """Accept a training job: validate, store it as queued, enqueue its id."""
    body = deps.json_body()
    unknown = sorted(set(body) - SUBMIT_FIELDS)
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
    settings = deps.settings()
    try:
        params = validate_training_spec(
            body.get("kind"), body.get("params"), settings.max_runtime_cap_seconds
        )
    except SpecError as error:
        raise ApiError(422, "invalid_spec", error.message, error.field) from None
    dataset_name = body.get("dataset")
    if not isinstance(dataset_name, str) or not DATASET_NAME.match(dataset_name):
        raise ApiError(422, "invalid_spec", "dataset must name an uploaded dataset", "dataset")
    owner, key = caller().owner, _idempotency_key()
    try:
        with deps.db() as session:
            if (existing := _replayed(session, owner, key)) is not None:
                return _created(existing)
            _check_rate(session, owner)
            query = select(Dataset).where(Dataset.owner == owner, Dataset.name == dataset_name)
            dataset = session.scalar(query)
            if dataset is None:
                hint = ""
                if dataset_name == MNIST_NAME:
                    hint = (
                        "; an operator registers Keras's MNIST with `gentrain datasets fetch-mnist`"
                    )
                raise ApiError(
                    422, "unknown_dataset", f"dataset {dataset_name!r} not found{hint}", "dataset"
                )
            kind = body["kind"]
            new = NewJob(kind, kind, owner, params, dataset_id=dataset.id, idempotency_key=key)
            job_id = create_job(session, new)
    except IntegrityError:
        # The same Idempotency-Key raced in from another request: answer with that job.
        with deps.db() as session:
            existing = _replayed(session, owner, key)
        if existing is None:
            raise
        return _created(existing)
    _enqueue(job_id, TRAIN_TASK)
    return _created(job_id)


@bp.get("")
def list_jobs() -> Response:
    """Jobs, newest first, filtered by status and kind, then paginated."""
    status = request.args.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ApiError(422, "invalid_parameter", f"unknown status {status!r}", "status")
    kind = request.args.get("kind")
    if kind is not None and kind not in job_kinds():
        raise ApiError(422, "invalid_parameter", f"unknown kind {kind!r}", "kind")
    limit = deps.query_int("limit", 50, 1, 500)
    offset = deps.query_int("offset", 0, 0, 10**9)
    owner = None if caller().is_admin else caller().owner
    with deps.db_read() as connection:
        total, rows = job_reads.list_jobs(connection, owner, status, kind, limit, offset)
    items = [job_summary(row) for row in rows]
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.get("/<job_id>")
def get_job(job_id: str) -> Response:
    """A job's state, progress, latest metrics, history, artifacts and results."""
    return jsonify(job_view(_visible_job(job_id), request.host_url))


@bp.get("/<job_id>/metrics")
def get_metrics(job_id: str) -> Response:
    """Every recorded epoch (or step block) of a job's metrics."""
    with deps.db_read() as connection:
        _check_visible(connection, job_id)
        rows = job_reads.job_metrics(connection, job_id)
    return jsonify({"job_id": job_id, "items": [metric_view(row) for row in rows]})


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[Response, int]:
    """Cancel a job: a queued one at once, a running one at its next epoch boundary."""
    with deps.db_read() as connection:
        _check_visible(connection, job_id)
    with deps.db() as session:
        try:
            request_cancel(session, job_id)
        except LookupError:
            raise not_found("job", job_id) from None
        except IllegalTransition as error:
            raise ApiError(409, "conflict", f"job {job_id} is already {error.current}") from None
    return jsonify(job_view(_visible_job(job_id), request.host_url)), 202


@bp.post("/<job_id>/samples")
def sample_job(job_id: str) -> tuple[Response, int]:
    """Draw samples from a trained model: a sampling job writing a PNG grid."""
    body = deps.json_body() if request.content_length else {}
    unknown = sorted(set(body) - {"params"})
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
    try:
        params = validate_sample_params(body.get("params"))
    except SpecError as error:
        raise ApiError(422, "invalid_spec", error.message, error.field) from None
    with deps.db() as session:
        parent = session.get(Job, job_id)
        if parent is None or not can_see(parent.owner):
            raise not_found("job", job_id)
        if parent.kind == SAMPLE_KIND:
            raise ApiError(409, "conflict", "sample from a training job, not a sampling job")
        if parent.status != JobStatus.SUCCEEDED.value:
            raise ApiError(
                409, "conflict", f"job {job_id} is {parent.status}; sample once it has succeeded"
            )
        new = NewJob(
            SAMPLE_KIND,
            parent.model_kind,
            parent.owner,
            params,
            dataset_id=parent.dataset_id,
            parent_id=parent.id,
        )
        new_id = create_job(session, new)
    _enqueue(new_id, SAMPLE_TASK)
    return _created(new_id)


@bp.get("/<job_id>/artifacts/<path:name>")
def get_artifact(job_id: str, name: str) -> ResponseReturnValue:
    """Stream an artifact, or redirect to a short-lived presigned URL on S3."""
    with deps.db_read() as connection:
        _check_visible(connection, job_id)
        artifact = job_reads.find_artifact(connection, job_id, name)
        if artifact is None:
            raise not_found("artifact", name)
    store = deps.store()
    if request.args.get("redirect", "1") not in ("0", "false"):
        url = store.presigned_url(artifact.storage_key, deps.settings().presign_seconds)
        if url:
            return redirect(url, code=302)
    response = Response(store.iter_chunks(artifact.storage_key), mimetype=artifact.content_type)
    response.headers["Content-Length"] = str(artifact.size_bytes)
    response.headers["Content-Disposition"] = f'attachment; filename="{name.rsplit("/", 1)[-1]}"'
    return response
