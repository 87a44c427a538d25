"""Datasets as arrays: read an uploaded ``.npz`` member by member (never unpickled), only the rows
a job uses, then scale those to [0, 1] and flatten.

A small upload can declare a huge array (zeros compress ~1000:1), so nothing here reads a whole
member into memory unless the job trains on all of it: rows are streamed from the zip member and
only the chosen ones kept, as stored (uint8, say), before any conversion to float32."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import IO

import numpy as np

from workers.engine.reporter import UserError

# Evaluation, validation and previews use at most this many held-out images, evenly spread over
# the split (the seed's MNIST test split is exactly 10,000: it is used whole).
HELD_OUT_IMAGES = 10_000
# Bytes decompressed at a time while streaming a member.
_CHUNK_BYTES = 4 << 20
_PIXELS = 784


@dataclass(frozen=True)
class Arrays:
    """Images as float32 rows of 784 pixels in [0, 1]; labels as int64 (or None)."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None


@dataclass(frozen=True)
class Drawn:
    """The held-out images a sampling job shows (float32 rows of 784), with labels if any."""

    images: np.ndarray
    labels: np.ndarray | None


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype


def _member_name(archive: zipfile.ZipFile, name: str) -> str | None:
    names = set(archive.namelist())
    for candidate in (f"{name}.npy", name):
        if candidate in names:
            return candidate
    return None


@contextmanager
def _member(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[IO[bytes], _Header]]:
    """The member's stream, positioned after its NPY header, and the header."""
    member = _member_name(archive, name)
    if member is None:
        raise UserError(f"the dataset has no {name}")
    try:
        opened = archive.open(member)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UserError(f"{name} cannot be read: {error}") from None
    with opened as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported NPY version {version}")
        except (ValueError, EOFError, OSError) as error:
            raise UserError(f"{name} is not a readable array: {error}") from None
        if dtype.hasobject:
            raise UserError(f"{name} holds objects; datasets are never unpickled")
        if not shape:
            raise UserError(f"{name} must be an array of rows, not a scalar")
        # Before anything is sized from the header: it may claim (10**10, 784) in a tiny member.
        if prod(shape) * dtype.itemsize > archive.getinfo(member).file_size:
            raise UserError(f"{name} declares shape {shape}, more than its member holds")
        yield stream, _Header(tuple(shape), bool(fortran), dtype)


def _read_exact(stream: IO[bytes], size: int, name: str) -> bytes:
    try:
        data = stream.read(size)
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{name} cannot be read: {error}") from None
    if len(data) != size:
        raise UserError(f"{name} is shorter than its header says")
    return data


def _rows(stream: IO[bytes], header: _Header, rows: np.ndarray, name: str) -> np.ndarray:
    """Rows ``rows`` (sorted, distinct, in range) of the member, as stored; streams only as far
    as the last of them (the whole member when stored in Fortran order)."""
    count, rest = header.shape[0], header.shape[1:]
    dtype, per_row = header.dtype, prod(rest)
    if header.fortran_order and per_row > 1:
        # Column-major: one run of ``count`` values per pixel, pixels in Fortran order.
        picked = np.empty((len(rows), per_row), dtype)
        for pixel in range(per_row):
            run = np.frombuffer(_read_exact(stream, count * dtype.itemsize, name), dtype)
            picked[:, pixel] = run[rows]
        axes = (0, *range(len(rest), 0, -1))
        return picked.reshape((len(rows), *reversed(rest))).transpose(axes)
    out = np.empty((len(rows), *rest), dtype)
    row_bytes = per_row * dtype.itemsize
    per_chunk = max(1, _CHUNK_BYTES // max(row_bytes, 1))
    start = done = 0
    end = int(rows[-1]) + 1 if len(rows) else 0
    while start < end:
        size = min(per_chunk, end - start)
        block = np.frombuffer(_read_exact(stream, size * row_bytes, name), dtype)
        block = block.reshape((size, *rest))
        upto = int(np.searchsorted(rows, start + size))
        out[done:upto] = block[rows[done:upto] - start]
        done, start = upto, start + size
    return out


def _length(archive: zipfile.ZipFile, name: str) -> int:
    with _member(archive, name) as (_, header):
        return header.shape[0]


def _images(archive: zipfile.ZipFile, name: str, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of images ``name`` as float32 rows of 784 pixels in [0, 1]."""
    with _member(archive, name) as (stream, header):
        if len(header.shape) < 2 or prod(header.shape[1:]) != _PIXELS:
            raise UserError(f"images must be 28×28, got shape {header.shape}")
        stored = _rows(stream, header, rows, name).reshape(len(rows), _PIXELS)
    if stored.dtype == np.uint8:
        scaled = stored.astype(np.float32)
        scaled /= 255.0  # in place: one float32 copy, never two
        return scaled
    return stored.astype(np.float32)


def _labels(archive: zipfile.ZipFile, name: str, rows: np.ndarray) -> np.ndarray:
    with _member(archive, name) as (stream, header):
        if len(header.shape) != 1:
            raise UserError(f"{name} must have one label per image, got shape {header.shape}")
        if len(rows) and rows[-1] >= header.shape[0]:
            raise UserError(f"{name} has fewer labels than there are images")
        return _rows(stream, header, rows, name).astype(np.int64)


def spread(total: int, at_most: int) -> np.ndarray:
    """Indices of at most ``at_most`` of ``total`` rows, evenly spread (all when few enough)."""
    if total <= at_most:
        return np.arange(total, dtype=np.int64)
    return np.arange(at_most, dtype=np.int64) * total // at_most


def held_out(arrays: Arrays) -> tuple[str, np.ndarray, np.ndarray | None]:
    """The split quality is measured on: test if the dataset has one, else train; at most
    ``HELD_OUT_IMAGES`` of it, evenly spread (``load_arrays`` already bounds the test split)."""
    if arrays.x_test is not None:
        split, x, y = "test", arrays.x_test, arrays.y_test
    else:
        split, x, y = "train", arrays.x_train, arrays.y_train
    if len(x) > HELD_OUT_IMAGES:
        rows = spread(len(x), HELD_OUT_IMAGES)
        x, y = x[rows], y[rows] if y is not None else None
    return split, x, y


@contextmanager
def _archive(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"the dataset is not a readable .npz: {error}") from None
    with archive:
        yield archive


def load_arrays(
    path: Path, max_train_images: int = 0, held_out_images: int = HELD_OUT_IMAGES
) -> Arrays:
    """Read a dataset file; ``max_train_images`` > 0 keeps only that many training images, and
    at most ``held_out_images`` test images are kept (evenly spread over the split)."""
    with _archive(path) as archive:
        present = {name for name in ("y_train", "x_test", "y_test") if _member_name(archive, name)}
        total = _length(archive, "x_train")
        train = np.arange(min(total, max_train_images) if max_train_images else total)
        x_train = _images(archive, "x_train", train)
        y_train = _labels(archive, "y_train", train) if "y_train" in present else None
        x_test = y_test = None
        if "x_test" in present:
            test = spread(_length(archive, "x_test"), held_out_images)
            x_test = _images(archive, "x_test", test)
            y_test = _labels(archive, "y_test", test) if "y_test" in present else None
    return Arrays(x_train, y_train, x_test, y_test)


def draw_rows(total: int, count: int, seed: int) -> np.ndarray:
    """Which of ``total`` held-out images a sampling job of ``count`` and ``seed`` shows."""
    return np.random.default_rng(seed).choice(total, size=min(count, total), replace=False)


def load_drawn(path: Path, count: int, seed: int) -> Drawn:
    """Only the held-out images (test split, else train) a sampling job shows, read from the
    file: the same images, in the same order, as drawing from the whole split in memory."""
    with _archive(path) as archive:
        split = "test" if _member_name(archive, "x_test") else "train"
        chosen = draw_rows(_length(archive, f"x_{split}"), count, seed)
        order = np.argsort(chosen)
        ascending = chosen[order]
        images = np.empty((len(chosen), _PIXELS), np.float32)
        images[order] = _images(archive, f"x_{split}", ascending)
        labels = None
        if _member_name(archive, f"y_{split}"):
            labels = np.empty(len(chosen), np.int64)
            labels[order] = _labels(archive, f"y_{split}", ascending)
    return Drawn(images, labels)


def draw(arrays: Arrays, count: int, seed: int) -> Drawn:
    """The images ``load_drawn`` reads, drawn instead from arrays already in memory."""
    if arrays.x_test is not None:
        x, y = arrays.x_test, arrays.y_test
    else:
        x, y = arrays.x_train, arrays.y_train
    chosen = draw_rows(len(x), count, seed)
    return Drawn(x[chosen], y[chosen] if y is not None else None)
