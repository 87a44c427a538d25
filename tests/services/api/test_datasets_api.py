import io
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from services.api import create_app
from shared.db.models import Dataset
from shared.db.session import session_scope
from shared.settings import Settings
from shared.storage import S3Store


def upload(client: FlaskClient, data: bytes, name: str = "digits", filename: str = "d.npz"):
    return client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(data), filename), "name": name},
        content_type="multipart/form-data",
    )


def stored_objects(app: Flask) -> list[str]:
    settings: Settings = app.extensions["gentrain.settings"]
    store = app.extensions["gentrain.store"]
    if isinstance(store, S3Store):
        store.ping()  # creates the bucket if missing
        listing = store.client.list_objects_v2(Bucket=settings.s3_bucket)
        return [item["Key"] for item in listing.get("Contents", [])]
    return [str(p) for p in settings.storage_dir.rglob("*") if p.is_file()]


def dataset_rows(settings: Settings) -> int:
    with session_scope(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Dataset)) or 0)


def test_upload_and_list(client: FlaskClient, app: Flask, mnist_path: Path) -> None:
    response = upload(client, mnist_path.read_bytes(), name="mnist")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["name"] == "mnist" and body["arrays"]["x_train"]["shape"] == [4000, 28, 28]
    assert [d["name"] for d in client.get("/v1/datasets").json["items"]] == ["mnist"]
    assert client.get("/v1/datasets/mnist").status_code == 200
    assert len(stored_objects(app)) == 1
    again = upload(client, mnist_path.read_bytes(), name="mnist")
    assert again.status_code == 409 and again.json["error"]["field"] == "name"


def pickled_npz() -> bytes:
    objects = np.empty(2, dtype=object)
    objects[:] = [{"evil": True}, [1]]
    buffer = io.BytesIO()
    np.savez(buffer, x_train=objects)
    return buffer.getvalue()


def zip_bomb() -> bytes:
    """A tiny archive that declares 600 MiB of zeros inside (over the 512 MiB default limit)."""
    import zipfile

    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("x_train.npy", "w", force_zip64=True) as member,
    ):
        chunk = b"\0" * (1024 * 1024)
        for _ in range(600):
            member.write(chunk)
    return buffer.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "status", "field"),
    [
        (pickled_npz(), "evil", 422, "x_train"),
        (zip_bomb(), "bomb", 413, "file"),
        (npz(x_train=np.zeros((3, 30, 30), np.uint8)), "shape", 422, "x_train"),
        (npz(x_train=np.zeros((3, 28, 28), np.int16)), "dtype", 422, "x_train"),
        (b"", "empty", 422, "file"),
        (b"not a zip", "junk", 422, "file"),
        (npz(x_train=np.zeros((3, 784), np.uint8)), "Bad Name", 422, "name"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    client: FlaskClient,
    app: Flask,
    settings: Settings,
    data: bytes,
    name: str,
    status: int,
    field: str,
) -> None:
    response = upload(client, data, name=name)
    assert response.status_code == status, response.json
    assert response.json["error"]["field"] == field
    assert response.json["error"]["message"]
    assert dataset_rows(settings) == 0
    assert stored_objects(app) == []


def test_oversized_upload_is_413(settings: Settings, mnist_path: Path) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 100_000})
    app = create_app(small)
    response = upload(app.test_client(), mnist_path.read_bytes(), name="big")
    assert response.status_code == 413
    assert "larger than the limit" in response.json["error"]["message"]
    assert dataset_rows(settings) == 0
    assert stored_objects(app) == []


def test_missing_file_field_is_400(client: FlaskClient) -> None:
    response = client.post("/v1/datasets", data={"name": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["field"] == "file"
