"""Datasets: upload an ``.npz`` of digits, list them."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from services.api import deps
from services.api.auth import caller
from services.api.errors import ApiError, not_found
from services.api.views import dataset_view
from shared.dataset_registry import (
    DatasetExists,
    QuotaExceeded,
    owner_quota,
    register_dataset,
    upload_limits,
)
from shared.datasets import DatasetError
from shared.db.models import Dataset

bp = Blueprint("datasets", __name__, url_prefix="/v1/datasets")


@bp.post("")
def upload_dataset() -> tuple[Response, int]:
    """Store an uploaded ``.npz`` after checking it (never unpickled)."""
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "missing_field", "send the .npz as multipart field 'file'", "file")
    filename = (upload.filename or "").rsplit("/", 1)[-1]
    name = request.form.get("name") or filename.removesuffix(".npz")
    settings = deps.settings()
    try:
        dataset = register_dataset(
            settings.database_url,
            deps.store(),
            name,
            upload.read(),
            upload_limits(settings),
            owner=caller().owner,
            quota=owner_quota(settings),
        )
    except DatasetError as error:
        status = 413 if error.code == "too_large" else 422
        raise ApiError(status, error.code, error.message, error.field) from None
    except DatasetExists:
        raise ApiError(409, "conflict", f"dataset {name!r} already exists", "name") from None
    except QuotaExceeded as error:
        # 409, not 413: the upload is fine, the owner's stored datasets are what is over.
        raise ApiError(409, "quota_exceeded", error.message, "file") from None
    return jsonify(dataset_view(dataset)), 201


@bp.get("")
def list_datasets() -> Response:
    """All datasets, newest first."""
    query = select(Dataset).order_by(Dataset.created_at.desc())
    if not caller().is_admin:
        query = query.where(Dataset.owner == caller().owner)
    with deps.db() as session:
        rows = session.scalars(query).all()
        return jsonify({"items": [dataset_view(row) for row in rows]})


@bp.get("/<name>")
def get_dataset(name: str) -> Response:
    """One dataset by name: the caller's, or (an admin) another owner's with ``?owner=``."""
    owner = request.args.get("owner", caller().owner)
    if owner != caller().owner and not caller().is_admin:
        raise not_found("dataset", name)  # another owner's dataset is a 404, as a missing one
    with deps.db() as session:
        query = select(Dataset).where(Dataset.owner == owner, Dataset.name == name)
        dataset = session.scalar(query)
        if dataset is None and caller().is_admin and "owner" not in request.args:
            # An admin's list shows every owner's datasets: a name only one owner has is found.
            others = session.scalars(select(Dataset).where(Dataset.name == name).limit(2)).all()
            if len(others) > 1:
                message = f"several owners have a dataset {name!r}; name one with ?owner="
                raise ApiError(409, "ambiguous", message, "owner")
            dataset = others[0] if others else None
        if dataset is None:
            raise not_found("dataset", name)
        return jsonify(dataset_view(dataset))
