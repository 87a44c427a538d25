"""Datasets: upload an ``.npz`` of digits, list them."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.api import deps
from services.api.errors import ApiError, not_found
from services.api.views import dataset_view
from shared.datasets import DatasetError, check_name, validate_npz
from shared.db.models import Dataset, new_id
from shared.storage import dataset_key

bp = Blueprint("datasets", __name__, url_prefix="/v1/datasets")


@bp.post("")
def upload_dataset() -> tuple[Response, int]:
    """Store an uploaded ``.npz`` after checking it (never unpickled)."""
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "missing_field", "send the .npz as multipart field 'file'", "file")
    raw_name = request.form.get("name") or (upload.filename or "").rsplit("/", 1)[-1].removesuffix(
        ".npz"
    )
    try:
        name = check_name(raw_name)
        data = upload.read()
        if not data:
            raise DatasetError("file", "file is empty")
        summary = validate_npz(data, deps.settings().max_dataset_bytes)
    except DatasetError as error:
        status = 413 if error.code == "too_large" else 422
        raise ApiError(status, error.code, error.message, error.field) from None
    with deps.db() as session:
        if session.scalar(select(Dataset.id).where(Dataset.owner == "", Dataset.name == name)):
            raise ApiError(409, "conflict", f"dataset {name!r} already exists", "name")
    dataset_id = new_id()
    stored = deps.store().put_bytes(dataset_key(dataset_id), data, "application/octet-stream")
    dataset = Dataset(
        id=dataset_id,
        name=name,
        owner="",
        storage_key=stored.key,
        size_bytes=stored.size,
        sha256=hashlib.sha256(data).hexdigest(),
        arrays=summary.arrays,
    )
    try:
        with deps.db() as session:
            session.add(dataset)
    except IntegrityError:
        deps.store().delete(stored.key)
        raise ApiError(409, "conflict", f"dataset {name!r} already exists", "name") from None
    return jsonify(dataset_view(dataset)), 201


@bp.get("")
def list_datasets() -> Response:
    """All datasets, newest first."""
    with deps.db() as session:
        rows = session.scalars(select(Dataset).order_by(Dataset.created_at.desc())).all()
        return jsonify({"items": [dataset_view(row) for row in rows]})


@bp.get("/<name>")
def get_dataset(name: str) -> Response:
    """One dataset by name."""
    with deps.db() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.owner == "", Dataset.name == name))
        if dataset is None:
            raise not_found("dataset", name)
        return jsonify(dataset_view(dataset))
