"""The datasets pages on the server (Flask's client), on SQLite and on PostgreSQL with Redis and
S3: the list, a dataset's page with its image grid (the first images, in order) and label
histogram, tenancy (another owner's dataset is not found; an admin's view), and a preview that
decompresses only the images it shows."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from numpy.lib import format as npy_format
from PIL import Image

from services.api import create_app
from services.ui.dataset_preview import PREVIEW_IMAGES, first_images, label_counts
from shared.api_keys import create_key
from shared.settings import Settings
from tests.services.ui.test_job_pages import page
from tests.services.ui.test_new_job_page import Elements, tiny_npz, upload


def test_the_list_shows_each_dataset_newest_first(settings: Settings) -> None:
    client = create_app(settings).test_client()
    html = page(client, "/ui/datasets")
    assert "No datasets yet" in html and "0 datasets" in html
    upload(client, "first", tiny_npz(30, labels=False))
    second = upload(client, "second", tiny_npz(12))
    html = page(client, "/ui/datasets")
    names = [line.split('"')[1] for line in html.split("<tr data-dataset=")[1:]]
    assert names == ["second", "first"] and "2 datasets" in html
    row = html[html.index('<tr data-dataset="second"') :]
    row = row[: row.index("</tr>")]
    assert 'href="/ui/datasets/second"' in row and ">12</td>" in row
    assert '<code>x_train</code> <span class="muted">12 × 28 × 28 uint8</span>' in row
    assert "<code>y_train</code>" in row and "KB" in row
    assert second["created_at"] in row
    assert 'id="upload-form"' in html and 'id="upload-bar"' in html
    assert ">Owner<" not in html


def test_a_datasets_page_shows_its_first_images_and_labels(settings: Settings) -> None:
    client = create_app(settings).test_client()
    data = tiny_npz(100)
    upload(client, "digits", data)
    html = page(client, "/ui/datasets/digits")
    elements = Elements(html)
    image = elements.by_id["dataset-grid"]
    assert image["src"] == "/ui/datasets/digits/grid.png"
    assert "The first 64 of 100 training images" in html
    # The histogram: y_train's counts per digit.
    labels = np.load(io.BytesIO(data))["y_train"]
    expected = np.bincount(labels, minlength=10)
    for digit in range(10):
        assert f'<tr data-digit="{digit}" data-count="{expected[digit]}">' in html
    assert "100 labels" in html
    assert 'href="/ui/new?dataset=digits"' in html
    response = client.get("/ui/datasets/digits/grid.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(response.data)))
    assert grid.shape == (8 * 56, 8 * 56)
    images = np.load(io.BytesIO(data))["x_train"]
    for index in (0, 1, 8, 63):  # row by row, in order, each pixel 2 × 2
        row, column = divmod(index, 8)
        cell = grid[row * 56 : (row + 1) * 56 : 2, column * 56 : (column + 1) * 56 : 2]
        assert np.array_equal(cell, images[index])
    again = client.get(
        "/ui/datasets/digits/grid.png", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


def test_a_dataset_without_labels_or_with_few_images(settings: Settings) -> None:
    client = create_app(settings).test_client()
    upload(client, "plain", tiny_npz(5, labels=False))
    html = page(client, "/ui/datasets/plain")
    assert 'id="no-labels"' in html and 'id="label-histogram"' not in html
    assert "The first 5 of 5 training images" in html
    grid = Image.open(io.BytesIO(client.get("/ui/datasets/plain/grid.png").data))
    assert grid.size == (3 * 56, 2 * 56)  # 5 images in rows of 3


def test_another_owners_dataset_is_not_found(settings: Settings) -> None:
    keyed = settings.model_copy(update={"auth": "required"})
    url = keyed.database_url
    _, alice = create_key(url, "alice")
    _, bob = create_key(url, "bob")
    _, admin = create_key(url, "root", is_admin=True)
    client = create_app(keyed).test_client()
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    upload(client, "bobs", tiny_npz(), as_bob)
    upload(client, "shared-name", tiny_npz(), as_bob)
    upload(client, "shared-name", tiny_npz(20), as_alice)
    listed = page(client, "/ui/datasets", headers=as_alice)
    assert 'data-dataset="shared-name"' in listed and "bobs" not in listed
    assert "Dataset not found" in page(client, "/ui/datasets/bobs", 404, as_alice)
    assert client.get("/ui/datasets/bobs/grid.png", headers=as_alice).status_code == 404
    page(client, "/ui/datasets/bobs?owner=bob", 404, as_alice)
    # Alice's own dataset of the same name is hers.
    assert "The first 20 of 20" in page(client, "/ui/datasets/shared-name", headers=as_alice)
    # An admin sees everyone's, with owners; a name two owners have needs ?owner=.
    everyone = page(client, "/ui/datasets", headers=as_admin)
    assert ">Owner<" in everyone
    assert 'href="/ui/datasets/bobs?owner=bob"' in everyone
    assert 'href="/ui/datasets/shared-name?owner=alice"' in everyone
    assert "The first 12 of 12" in page(client, "/ui/datasets/bobs", headers=as_admin)
    page(client, "/ui/datasets/shared-name", 409, as_admin)
    html = page(client, "/ui/datasets/shared-name?owner=alice", headers=as_admin)
    assert 'src="/ui/datasets/shared-name/grid.png?owner=alice"' in html
    assert 'id="train-on"' not in html  # a job trains on its owner's datasets only
    grid = client.get("/ui/datasets/shared-name/grid.png?owner=alice", headers=as_admin)
    assert grid.status_code == 200 and Image.open(io.BytesIO(grid.data)).size == (5 * 56, 4 * 56)


def _member_data_span(archive: bytes, name: str) -> tuple[int, int]:
    """Where a member's compressed bytes lie in the archive."""
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name)
    start = info.header_offset
    name_length, extra_length = struct.unpack("<HH", archive[start + 26 : start + 30])
    data = start + 30 + name_length + extra_length
    return data, data + info.compress_size


def test_the_preview_decompresses_only_the_images_it_shows() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3000, 28, 28), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=images, y_train=(np.arange(3000) % 10).astype(np.uint8))
    archive = bytearray(buffer.getvalue())
    # Spoil the end of x_train's compressed stream: reading all of it would fail there.
    start, end = _member_data_span(bytes(archive), "x_train.npy")
    archive[end - 4096 : end] = b"\xff" * 4096
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as spoiled:
        shown = first_images(spoiled, PREVIEW_IMAGES)
        assert shown.shape == (64, 28, 28)
        assert np.array_equal((shown * 255 + 0.5).astype(np.uint8), images[:64])
        assert label_counts(spoiled) == [300] * 10
        with pytest.raises((zipfile.BadZipFile, zlib.error)):
            spoiled.read("x_train.npy")


def test_the_preview_reads_floats_and_members_named_without_npy() -> None:
    images = np.linspace(0.0, 1.0, 70 * 784, dtype=np.float32).reshape(70, 784)
    labels = np.arange(70, dtype=np.int64) % 7
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in (("x_train", images), ("y_train", labels)):
            with archive.open(name, "w") as stream:
                npy_format.write_array(stream, array)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        shown = first_images(archive, PREVIEW_IMAGES)
        assert np.array_equal(shown, images[:64].reshape(64, 28, 28))
        assert label_counts(archive) == [10] * 7 + [0] * 3
