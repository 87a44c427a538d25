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
from tests.shared.npz_builders import archive, npy, npy_header, zeros_archive


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


IMAGES = np.zeros((3, 784), np.uint8)


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
        # Hostile archives (issue 10): refused from the zip directory or the NPY header.
        (npz(x_train=np.zeros((3, 784), np.uint8)), "mnist\n", 422, "name"),
        (archive(*[("x_train.npy", b"")] * 200, ("x_train.npy", npy(IMAGES))), "dup", 422, "file"),
        (archive(("x_train.npy", b""), ("x_train.npy", npy(IMAGES))), "dup2", 422, "x_train"),
        (archive(("x_train.npy", b"not an array")), "nohead", 422, "x_train"),
        (archive(("x_train.npy", npy_header((10**10, 784)))), "huge", 413, "file"),
        (archive(("x_train.npy", npy_header((3, 784), "|O"))), "objects", 422, "x_train"),
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


def test_a_small_upload_declaring_660000_images_is_413(
    client: FlaskClient, app: Flask, settings: Settings
) -> None:
    data = zeros_archive(660_000)  # about 500 KB; 517 MB of zeros once unpacked
    response = upload(client, data, name="zeros")
    assert response.status_code == 413, response.json
    assert "GENTRAIN_MAX_DATASET_ELEMENTS" in response.json["error"]["message"]
    assert dataset_rows(settings) == 0 and stored_objects(app) == []


def test_datasets_per_owner_are_capped_with_a_409(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_datasets_per_owner": 2}))
    client = app.test_client()
    data = npz(x_train=IMAGES)
    assert upload(client, data, name="one").status_code == 201
    assert upload(client, data, name="two").status_code == 201
    third = upload(client, data, name="three")
    assert third.status_code == 409, third.json
    assert third.json["error"]["code"] == "quota_exceeded"
    assert "GENTRAIN_MAX_DATASETS_PER_OWNER" in third.json["error"]["message"]
    assert dataset_rows(settings) == 2 and len(stored_objects(app)) == 2


def test_stored_bytes_per_owner_are_capped_with_a_409(settings: Settings, mnist_path: Path) -> None:
    size = mnist_path.stat().st_size
    app = create_app(settings.model_copy(update={"max_dataset_bytes_per_owner": size * 3 // 2}))
    client = app.test_client()
    assert upload(client, mnist_path.read_bytes(), name="first").status_code == 201
    second = upload(client, mnist_path.read_bytes(), name="second")
    assert second.status_code == 409, second.json
    assert second.json["error"]["code"] == "quota_exceeded"
    assert "GENTRAIN_MAX_DATASET_BYTES_PER_OWNER" in second.json["error"]["message"]
    assert upload(client, npz(x_train=IMAGES), name="small").status_code == 201
    assert dataset_rows(settings) == 2 and len(stored_objects(app)) == 2
