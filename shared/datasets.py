"""Validation of uploaded ``.npz`` datasets: never unpickled, shapes, dtypes and sizes checked."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
IMAGE_SHAPES = ((28, 28), (28, 28, 1), (784,))


class DatasetError(Exception):
    """An upload that is not a usable dataset; names the offending field."""

    def __init__(self, field: str, message: str, code: str = "invalid_dataset") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


@dataclass(frozen=True)
class DatasetSummary:
    """What a valid upload holds."""

    arrays: dict[str, dict[str, Any]]

    @property
    def train_count(self) -> int:
        """Number of training images."""
        return int(self.arrays["x_train"]["shape"][0])


def check_name(name: Any) -> str:
    """Return ``name`` if it is a valid dataset name, else raise DatasetError."""
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise DatasetError(
            "name", "name must be 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
        )
    return name


def _check_images(name: str, array: np.ndarray) -> None:
    if array.shape[1:] not in IMAGE_SHAPES or array.shape[0] < 1:
        raise DatasetError(name, f"{name} must have shape (N, 28, 28), (N, 28, 28, 1) or (N, 784)")
    if array.dtype == np.uint8:
        return
    if array.dtype not in (np.float32, np.float64):
        raise DatasetError(
            name, f"{name} must be uint8 (0-255) or float in [0, 1], not {array.dtype}"
        )
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise DatasetError(name, f"{name} floats must be finite and within [0, 1]")


def _check_labels(name: str, array: np.ndarray, count: int) -> None:
    if array.ndim != 1 or array.shape[0] != count:
        raise DatasetError(name, f"{name} must have shape ({count},), one label per image")
    if not np.issubdtype(array.dtype, np.integer):
        raise DatasetError(name, f"{name} must hold integers, not {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > 9):
        raise DatasetError(name, f"{name} labels must be digits 0-9")


def validate_npz(data: bytes, max_unpacked_bytes: int) -> DatasetSummary:
    """Check an uploaded ``.npz`` without unpickling anything; raise DatasetError if unusable."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise DatasetError("file", "file is not an .npz (zip) archive") from error
    # Sizes declared in the zip directory are checked before anything is decompressed.
    unpacked = sum(member.file_size for member in members)
    if unpacked > max_unpacked_bytes:
        raise DatasetError(
            "file",
            f"archive unpacks to {unpacked} bytes, more than the limit of {max_unpacked_bytes}",
            code="too_large",
        )
    names = [member.filename.removesuffix(".npy") for member in members]
    unknown = sorted(set(names) - set(ARRAY_NAMES))
    if unknown:
        raise DatasetError(
            "file", f"unexpected array {unknown[0]!r}; allowed: {', '.join(ARRAY_NAMES)}"
        )
    if "x_train" not in names:
        raise DatasetError("file", "the archive must contain x_train")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in names:
                arrays[name] = npz[name]
    except ValueError as error:
        # numpy refuses object arrays when allow_pickle is False.
        raise DatasetError("file", f"archive holds a pickled or object array: {error}") from error
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DatasetError("file", f"archive cannot be read: {error}") from error
    _check_images("x_train", arrays["x_train"])
    if "x_test" in arrays:
        _check_images("x_test", arrays["x_test"])
    if "y_train" in arrays:
        _check_labels("y_train", arrays["y_train"], arrays["x_train"].shape[0])
    if "y_test" in arrays:
        if "x_test" not in arrays:
            raise DatasetError("y_test", "y_test given without x_test")
        _check_labels("y_test", arrays["y_test"], arrays["x_test"].shape[0])
    summary = {
        name: {"shape": list(array.shape), "dtype": str(array.dtype)}
        for name, array in arrays.items()
    }
    return DatasetSummary(summary)
