"""Jobs: submit training and sampling jobs, list and inspect them, cancel, fetch artifacts."""

from __future__ import annotations

import logging
import math
import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.api import deps, job_reads
from services.api.auth import caller, can_see
from services.api.errors import ApiError, not_found
from services.api.job_reads import JobRecord
from services.api.views import artifact_view, job_summary, job_view, key_result, metric_view
from shared.dataset_registry import MNIST_NAME
from shared.datasets import is_dataset_name
from shared.db.models import Dataset, Job, utcnow
from shared.job_specs import (
    SpecError,
    validate_priority,
    validate_sample_params,
    validate_training_spec,
)
from shared.job_state import IllegalTransition, JobStatus
from shared.jobs import NewJob, create_job, mark_enqueued, request_cancel
from shared.jobs.changes import write_lock
from shared.kinds import KIND_SPECS, QUALITY_MIN_SAMPLES, SAMPLE_KIND, job_kinds
from shared.queue import SAMPLE_TASK, TRAIN_TASK, enqueue
from shared.usage import QuotaExceeded, check_owner_bytes, owner_usage

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")

SUBMIT_FIELDS = {"kind", "dataset", "params", "priority"}
SAMPLE_FIELDS = {"params", "priority"}
# The start of a job id, long enough to name one job among many (the CLI's short ids).
ID_PREFIX = re.compile(r"[0-9a-f]{6,32}")


def _visible_job(job_id: str) -> JobRecord:
    """The job with all its view shows, if the caller may see it; another owner's job is a 404
    like a missing one."""
    limit = deps.settings().job_view_artifacts
    with deps.db_read() as connection:
        record = job_reads.fetch_job(connection, job_id, limit)
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


# Jobs that count against an owner's cap on active jobs.
ACTIVE_STATUSES = (
    JobStatus.QUEUED.value,
    JobStatus.RUNNING.value,
    JobStatus.CANCELLING.value,
)
# The advisory-lock space of per-owner submission locks (PostgreSQL): "gt" in ASCII.
_OWNER_LOCK_SPACE = 0x6774


def _lock_owner(session: Session, owner: str) -> None:
    """Serialize ``owner``'s job creation until this transaction ends, so that counting recent
    and active jobs and then inserting one cannot race (concurrent submissions overran the rate
    limit). PostgreSQL: a transaction-scoped advisory lock per owner; SQLite: the database's
    write lock, taken by a write statement that changes nothing."""
    if session.get_bind().dialect.name == "postgresql":
        statement = text("SELECT pg_advisory_xact_lock(:space, hashtext(:owner))")
        session.execute(statement, {"space": _OWNER_LOCK_SPACE, "owner": owner})
    else:
        session.execute(text("UPDATE jobs SET owner = owner WHERE 0 = 1"))


def _check_quota(session: Session, owner: str, sampling: bool) -> None:
    """A 429 when ``owner`` created too many training (or sampling) jobs in the last minute, or
    has too many jobs queued or running. Call with the owner locked (``_lock_owner``)."""
    settings = deps.settings()
    now = utcnow()
    is_sample = Job.kind == SAMPLE_KIND
    recent = (
        select(func.count(), func.min(Job.created_at))
        .select_from(Job)
        .where(Job.owner == owner, Job.created_at >= now - timedelta(seconds=60))
        .where(is_sample if sampling else ~is_sample)
    )
    count, oldest = session.execute(recent).one()
    limit = settings.sample_rate_per_minute if sampling else settings.submit_rate_per_minute
    if count >= limit:
        what = "sampling requests" if sampling else "submissions"
        wait = 60.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
            wait = 60.0 - (now - oldest).total_seconds()
        raise ApiError(
            429,
            "rate_limited",
            f"at most {limit} {what} a minute; try again shortly",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        if settings.owner_quota_bytes:  # summing the owner's artifacts costs a query: only then
            usage = owner_usage(session, owner)
            check_owner_bytes(usage, settings.owner_quota_bytes, for_job=True)
    except QuotaExceeded as error:
        raise ApiError(409, "quota_exceeded", error.message) from None
    active = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.owner == owner, Job.status.in_(ACTIVE_STATUSES))
    )
    cap = settings.max_active_jobs_per_owner
    if (active or 0) >= cap:
        raise ApiError(
            429,
            "too_many_active_jobs",
            f"at most {cap} queued or running jobs per owner (GENTRAIN_MAX_ACTIVE_JOBS_PER_OWNER);"
            " wait for some to finish or cancel them",
            headers={"Retry-After": "60"},
        )


def _priority(body: dict[str, Any]) -> int:
    """The job's priority (0-9, default 5): a 422 naming ``priority`` when it is not one, a 403
    above GENTRAIN_MAX_PRIORITY_WITHOUT_ADMIN for a caller who is no admin."""
    try:
        return validate_priority(
            body.get("priority"), deps.settings().max_priority_without_admin, caller().is_admin
        )
    except SpecError as error:
        raise ApiError(422, "invalid_spec", error.message, error.field) from None
    except PermissionError as error:
        raise ApiError(403, "forbidden", str(error), "priority") from None


def _check_held_out(params: dict[str, Any], dataset: Dataset) -> None:
    """A 422 when quality evaluation is asked for (``quality_samples``) but the dataset's
    held-out split (x_test, else x_train) has too few images to score against."""
    if not params.get("quality_samples"):
        return
    arrays = dataset.arrays or {}
    split = "x_test" if "x_test" in arrays else "x_train"
    images = int(arrays.get(split, {}).get("shape", [0])[0])
    if split == "x_train" and params.get("max_train_images"):
        images = min(images, params["max_train_images"])
    if images < QUALITY_MIN_SAMPLES:
        raise ApiError(
            422,
            "invalid_spec",
            f"quality evaluation needs at least {QUALITY_MIN_SAMPLES} held-out images and "
            f"{split} of dataset {dataset.name!r} has {images}; upload more or set "
            "params.quality_samples to 0",
            "dataset",
        )


def _check_labels(kind: str, params: dict[str, Any], dataset: Dataset) -> None:
    """A 422 naming the parameter when one asks for labels (a conditional GAN) and the dataset
    has no y_train."""
    asked_by = KIND_SPECS[kind].labels_asked_by(params)
    if asked_by is None or "y_train" in (dataset.arrays or {}):
        return
    raise ApiError(
        422,
        "invalid_spec",
        f"{asked_by} needs labels and dataset {dataset.name!r} has no y_train; upload a "
        f"dataset with labels or set params.{asked_by} to false",
        f"params.{asked_by}",
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


def _replayed(
    session: Session, owner: str, key: str | None, request_seen: tuple[str, str, dict[str, Any]]
) -> str | None:
    """The job an Idempotency-Key already made, or None; a 422 if that job was made from a
    different request (kind, dataset and parameters, defaults filled in, are compared)."""
    if key is None:
        return None
    query = (
        select(Job.id, Job.kind, Dataset.name, Job.params)
        .outerjoin(Dataset, Dataset.id == Job.dataset_id)
        .where(Job.owner == owner, Job.idempotency_key == key)
    )
    row = session.execute(query).first()
    if row is None:
        return None
    if (row.kind, row.name, row.params) != request_seen:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key was used for job {row.id} with a different request body",
            "Idempotency-Key",
        )
    job_id: str = row.id
    return job_id


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
    if not is_dataset_name(dataset_name):
        raise ApiError(422, "invalid_spec", "dataset must name an uploaded dataset", "dataset")
    owner, key = caller().owner, _idempotency_key()
    priority = _priority(body)
    seen = (body["kind"], dataset_name, params)
    try:
        with deps.db() as session:
            _lock_owner(session, owner)
            if (existing := _replayed(session, owner, key, seen)) is not None:
                return _created(existing)
            _check_quota(session, owner, sampling=False)
            query = select(Dataset).where(Dataset.owner == owner, Dataset.name == dataset_name)
            # Held until the job is committed: a delete of the dataset waits, then sees the job.
            dataset = session.scalar(query.with_for_update(read=True))
            if dataset is None:
                hint = ""
                if dataset_name == MNIST_NAME:
                    hint = (
                        "; an operator registers Keras's MNIST with `gentrain datasets fetch-mnist`"
                    )
                raise ApiError(
                    422, "unknown_dataset", f"dataset {dataset_name!r} not found{hint}", "dataset"
                )
            _check_held_out(params, dataset)
            _check_labels(body["kind"], params, dataset)
            kind = body["kind"]
            new = NewJob(
                kind, kind, owner, params, dataset.id, idempotency_key=key, priority=priority
            )
            job_id = create_job(session, new)
    except IntegrityError:
        # The same Idempotency-Key raced in from another request: answer with that job.
        with deps.db() as session:
            existing = _replayed(session, owner, key, seen)
        if existing is None:
            raise
        return _created(existing)
    _enqueue(job_id, TRAIN_TASK)
    return _created(job_id)


@bp.get("")
def list_jobs() -> Response:
    """Jobs, newest first (``sort=priority``: highest priority first), filtered by status, kind,
    priority and id prefix, then paginated."""
    status = request.args.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ApiError(422, "invalid_parameter", f"unknown status {status!r}", "status")
    kind = request.args.get("kind")
    if kind is not None and kind not in job_kinds():
        raise ApiError(422, "invalid_parameter", f"unknown kind {kind!r}", "kind")
    limit = deps.query_int("limit", 50, 1, 500)
    offset = deps.query_int("offset", 0, 0, 10**9)
    priority = deps.query_int("priority", -1, 0, 9) if "priority" in request.args else None
    sort = request.args.get("sort", "created")
    if sort not in ("created", "priority"):
        raise ApiError(422, "invalid_parameter", "sort must be created or priority", "sort")
    id_prefix = request.args.get("id_prefix")
    if id_prefix is not None and not ID_PREFIX.fullmatch(id_prefix):
        message = "id_prefix must be 6 to 32 lowercase hex digits (the start of a job id)"
        raise ApiError(422, "invalid_parameter", message, "id_prefix")
    owner = None if caller().is_admin else caller().owner
    with deps.db_read() as connection:
        total, rows = job_reads.list_jobs(
            connection,
            owner,
            status,
            kind,
            limit,
            offset,
            (job_reads.JOBS.c.results,),
            priority,
            sort == "priority",
            id_prefix,
        )
    items = [
        job_summary(row) | {"key_result": key_result(row.model_kind, row.kind, row.results)}
        for row in rows
    ]
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.get("/<job_id>")
def get_job(job_id: str) -> Response:
    """A job's state, progress, latest metrics, history, artifacts and results."""
    return jsonify(job_view(_visible_job(job_id), request.host_url))


@bp.get("/<job_id>/metrics")
def get_metrics(job_id: str) -> Response:
    """A page of a job's metrics, one row per epoch (or step block), in step order."""
    limits = deps.settings()
    limit = deps.query_int("limit", limits.max_page_size, 1, limits.max_page_size)
    offset = deps.query_int("offset", 0, 0, 10**9)
    after_step = deps.query_int("after_step", 0, 0, 10**9)
    with deps.db_read() as connection:
        _check_visible(connection, job_id)
        total, rows = job_reads.job_metrics(connection, job_id, limit, offset, after_step)
    items = [metric_view(row) for row in rows]
    more = len(rows) == limit
    return jsonify(
        {
            "job_id": job_id,
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
            "after_step": after_step,
            # Pass as after_step for the next page; null on the last one.
            "next_after_step": rows[-1].step if more else None,
        }
    )


@bp.get("/<job_id>/artifacts")
def list_artifacts(job_id: str) -> Response:
    """A page of a job's artifacts in the order they were made, with download links."""
    limits = deps.settings()
    limit = deps.query_int("limit", min(100, limits.max_page_size), 1, limits.max_page_size)
    offset = deps.query_int("offset", 0, 0, 10**9)
    with deps.db_read() as connection:
        _check_visible(connection, job_id)
        total, rows = job_reads.job_artifacts(connection, job_id, limit, offset)
    items = [artifact_view(row, request.host_url) for row in rows]
    return jsonify(
        {"job_id": job_id, "items": items, "total": total, "limit": limit, "offset": offset}
    )


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


def _held_parent(session: Session, job_id: str) -> Job | None:
    """The job to sample from, held (FOR SHARE) with its dataset until the sampling job is
    committed, so a delete of either waits and then sees the new job. Dataset first, then job:
    the order a dataset delete locks them in."""
    write_lock(session)  # SQLite: its write lock first (it ignores FOR SHARE)
    dataset_id = session.scalar(select(Job.dataset_id).where(Job.id == job_id))
    if dataset_id is not None:
        session.execute(
            select(Dataset.id).where(Dataset.id == dataset_id).with_for_update(read=True)
        )
    return session.get(Job, job_id, populate_existing=True, with_for_update={"read": True})


@bp.post("/<job_id>/samples")
def sample_job(job_id: str) -> tuple[Response, int]:
    """Draw samples from a trained model: a sampling job writing a PNG grid."""
    body = deps.json_body(optional=True)
    unknown = sorted(set(body) - SAMPLE_FIELDS)
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
    priority = _priority(body)
    with deps.db() as session:
        parent = _held_parent(session, job_id)
        if parent is None or not can_see(parent.owner):
            raise not_found("job", job_id)
        _lock_owner(session, parent.owner)
        if parent.kind == SAMPLE_KIND:
            raise ApiError(409, "conflict", "sample from a training job, not a sampling job")
        try:
            # By the model's kind and how it was trained (a conditional GAN takes digits).
            params = validate_sample_params(
                body.get("params"), parent.model_kind, dict(parent.params or {})
            )
        except SpecError as error:
            raise ApiError(422, "invalid_spec", error.message, error.field) from None
        if parent.status != JobStatus.SUCCEEDED.value:
            raise ApiError(
                409, "conflict", f"job {job_id} is {parent.status}; sample once it has succeeded"
            )
        if parent.expired_at is not None:
            raise ApiError(
                409, "conflict", f"job {job_id}'s artifacts expired (GENTRAIN_RETAIN_DAYS)"
            )
        _check_quota(session, parent.owner, sampling=True)
        new = NewJob(
            SAMPLE_KIND,
            parent.model_kind,
            parent.owner,
            params,
            dataset_id=parent.dataset_id,
            parent_id=parent.id,
            priority=priority,
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
