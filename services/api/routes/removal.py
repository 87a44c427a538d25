"""Deleting jobs and datasets, and what an owner stores against their quota (issue 13)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from services.api import deps, job_reads
from services.api.auth import caller, can_see
from services.api.errors import ApiError, not_found
from shared import dataset_registry
from shared.dataset_registry import DatasetInUse
from shared.db.models import Dataset
from shared.jobs import JobActive
from shared.retention import delete_job_and_objects
from shared.usage import owner_usage

bp = Blueprint("removal", __name__)


def remove_job(job_id: str) -> list[str]:
    """Delete a job the caller may see (404 otherwise) once it has ended (409 before); the ids
    deleted, the job's first, then its sampling jobs'."""
    with deps.db_read() as connection:
        owner = job_reads.job_owner(connection, job_id)
    if owner is None or not can_see(owner):
        raise not_found("job", job_id)
    try:
        return delete_job_and_objects(deps.settings().database_url, deps.store(), job_id)
    except LookupError:
        raise not_found("job", job_id) from None
    except JobActive as error:
        raise ApiError(409, "job_active", error.message) from None


def remove_dataset(name: str, owner: str) -> Dataset:
    """Delete ``owner``'s dataset (the caller's, or any owner's for an admin; 404 otherwise)
    unless a queued or running job uses it (409)."""
    if owner != caller().owner and not caller().is_admin:
        raise not_found("dataset", name)
    try:
        return dataset_registry.delete_dataset(
            deps.settings().database_url, deps.store(), owner, name
        )
    except LookupError:
        raise not_found("dataset", name) from None
    except DatasetInUse as error:
        raise ApiError(409, "dataset_in_use", error.message) from None


@bp.delete("/v1/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    """Delete an ended job and its sampling jobs: rows, metrics, logs, history and objects."""
    ids = remove_job(job_id)
    return jsonify({"id": job_id, "deleted_jobs": ids})


@bp.delete("/v1/datasets/<name>")
def delete_dataset(name: str) -> Response:
    """Delete one of the caller's datasets (an admin: another owner's with ``?owner=``)."""
    dataset = remove_dataset(name, request.args.get("owner", caller().owner))
    return jsonify({"name": dataset.name, "owner": dataset.owner, "deleted": True})


def usage_view(owner: str) -> dict[str, Any]:
    """What ``owner`` stores, and the limits on it (null: no limit)."""
    settings = deps.settings()
    with deps.db() as session:
        usage = owner_usage(session, owner)
    return {
        "owner": owner,
        "datasets": {
            "count": usage.datasets,
            "bytes": usage.dataset_bytes,
            "max_count": settings.max_datasets_per_owner,
            "max_bytes": settings.max_dataset_bytes_per_owner,
        },
        "artifacts": {"count": usage.artifacts, "bytes": usage.artifact_bytes},
        "total_bytes": usage.total_bytes,
        "quota_bytes": settings.owner_quota_bytes or None,
        "retain_days": settings.retain_days or None,
    }


@bp.get("/v1/usage")
def get_usage() -> Response:
    """The caller's stored bytes against their quota (an admin: any owner's with ``?owner=``)."""
    owner = request.args.get("owner", caller().owner)
    if owner != caller().owner and not caller().is_admin:
        raise not_found("owner", owner)
    return jsonify(usage_view(owner))
