"""A dataset's preview for its page: a PNG grid of its first images and the count of each label,
read from the stored ``.npz`` with NumPy and Pillow (no TensorFlow).

Only what is shown is decompressed: the first images' bytes of ``x_train`` (an NPY member is a
header then the array in C order, so the first images are its first bytes) and ``y_train`` in
chunks. Stored datasets never change (a new upload is a new object), so previews are kept per
storage key in a small cache."""

from __future__ import annotations

import io
import math
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image

from shared.datasets import MAX_HEADER_BYTES
from shared.storage import ObjectStore

SIDE = 28
PREVIEW_IMAGES = 64
# Pixels per image pixel in the grid (8 × 8 digits of 28 px: 448 px square).
SCALE = 2
LABELS = 10
# Objects up to this size are read into memory; larger ones spill to a temporary file.
SPOOL_BYTES = 16 * 1024 * 1024
LABEL_CHUNK = 1 << 20
CACHE_ENTRIES = 32


class PreviewError(Exception):
    """The stored archive cannot be previewed (it passed validation, so it should not happen)."""


@dataclass(frozen=True)
class Preview:
    """What a dataset's page shows of its contents."""

    png: bytes  # the grid of the first images
    images: int  # how many the grid holds
    columns: int
    label_counts: list[int] | None  # per digit 0-9; None without y_train


def _header(stream: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """An NPY member's shape, Fortran order and dtype, the stream left at its data."""
    try:
        version = npy_format.read_magic(stream)
        reader = (
            npy_format.read_array_header_1_0
            if version == (1, 0)
            else npy_format.read_array_header_2_0
        )
        shape, fortran, dtype = reader(stream, max_header_size=MAX_HEADER_BYTES)
    except Exception as error:  # noqa: BLE001 - numpy's parse errors on bounded bytes
        raise PreviewError(f"{name}: unreadable NPY header: {error}") from None
    if dtype.hasobject:
        raise PreviewError(f"{name} is an object array")
    return tuple(int(size) for size in shape), bool(fortran), dtype


def member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    """The archive's member holding array ``name`` (``name.npy``, or ``name`` as uploads may
    spell it), or None."""
    for info in archive.infolist():
        if info.filename.removesuffix(".npy") == name:
            return info
    return None


def first_images(archive: zipfile.ZipFile, count: int) -> np.ndarray:
    """Up to ``count`` images of ``x_train`` as floats in [0, 1], shape (n, 28, 28); only their
    bytes are decompressed."""
    info = member(archive, "x_train")
    if info is None:
        raise PreviewError("the archive holds no x_train")
    with archive.open(info) as stream:
        shape, fortran, dtype = _header(stream, "x_train")
        if len(shape) < 2 or math.prod(shape[1:]) != SIDE * SIDE:
            raise PreviewError(f"x_train has shape {shape}")
        n = min(count, shape[0])
        if fortran and n < shape[0]:
            # Column-major: image i's pixels are spread over the whole array. Not worth
            # decompressing all of it for a preview.
            raise PreviewError("x_train is stored in Fortran order")
        size = n * SIDE * SIDE * dtype.itemsize
        data = stream.read(size)
    if len(data) != size:
        raise PreviewError("x_train ends early")
    values = np.frombuffer(data, dtype=dtype)
    if fortran:
        values = values.reshape(tuple(reversed(shape))).T
    images = values.reshape(n, SIDE, SIDE).astype(np.float32)
    if dtype == np.uint8:
        images /= 255.0
    return np.clip(images, 0.0, 1.0)


def label_counts(archive: zipfile.ZipFile) -> list[int] | None:
    """How many training images carry each digit (read in chunks), or None without y_train."""
    info = member(archive, "y_train")
    if info is None:
        return None
    counts = np.zeros(LABELS, dtype=np.int64)
    with archive.open(info) as stream:
        _, _, dtype = _header(stream, "y_train")
        step = max(1, LABEL_CHUNK // dtype.itemsize) * dtype.itemsize
        while chunk := stream.read(step):
            labels = np.frombuffer(chunk[: len(chunk) - len(chunk) % dtype.itemsize], dtype)
            counts += np.bincount(np.clip(labels, 0, LABELS - 1).astype(np.int64), minlength=LABELS)
    return [int(count) for count in counts]


def grid_png(images: np.ndarray, columns: int, scale: int = SCALE) -> bytes:
    """A PNG of ``images`` (n, 28, 28) in rows of ``columns``, unused cells black."""
    rows = max(1, math.ceil(len(images) / columns))
    canvas = np.zeros((rows * columns, SIDE, SIDE), dtype=np.float32)
    canvas[: len(images)] = images
    tiled = canvas.reshape(rows, columns, SIDE, SIDE).transpose(0, 2, 1, 3)
    pixels = (tiled.reshape(rows * SIDE, columns * SIDE) * 255.0 + 0.5).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def read_preview(store: ObjectStore, storage_key: str, count: int = PREVIEW_IMAGES) -> Preview:
    """The preview of the dataset stored at ``storage_key`` (the object is fetched once into a
    spooled temporary file: zip's directory is at its end)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for chunk in store.iter_chunks(storage_key):
            spool.write(chunk)
        spool.seek(0)
        try:
            with zipfile.ZipFile(spool) as archive:
                images = first_images(archive, count)
                counts = label_counts(archive)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
            raise PreviewError(f"the stored archive cannot be read: {error}") from None
    columns = max(1, math.ceil(math.sqrt(len(images))))
    return Preview(grid_png(images, columns), len(images), columns, counts)


class PreviewCache:
    """The latest previews by storage key (a stored dataset never changes)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[str, Preview] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: ObjectStore, storage_key: str) -> Preview:
        """The cached preview, or a fresh one (two first requests may both read it: harmless)."""
        with self._lock:
            found = self._items.get(storage_key)
            if found is not None:
                self._items.move_to_end(storage_key)
                return found
        preview = read_preview(store, storage_key)
        with self._lock:
            self._items[storage_key] = preview
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return preview


PREVIEWS = PreviewCache()
