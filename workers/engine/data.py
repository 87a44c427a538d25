"""Datasets as arrays: load an uploaded ``.npz`` (never unpickled), scale to [0, 1], flatten."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.engine.reporter import UserError


@dataclass(frozen=True)
class Arrays:
    """Images as float32 rows of 784 pixels in [0, 1]; labels as int64 (or None)."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None


def _images(array: np.ndarray) -> np.ndarray:
    flat = array.reshape(len(array), -1)
    if flat.shape[1] != 784:
        raise UserError(f"images must be 28×28, got shape {array.shape}")
    if array.dtype == np.uint8:
        return flat.astype(np.float32) / 255.0
    return flat.astype(np.float32)


def load_arrays(path: Path, max_train_images: int = 0) -> Arrays:
    """Read a dataset file; ``max_train_images`` > 0 keeps only that many training images."""
    with np.load(path, allow_pickle=False) as npz:
        names = set(npz.files)
        x_train = _images(npz["x_train"])
        y_train = npz["y_train"].astype(np.int64) if "y_train" in names else None
        x_test = _images(npz["x_test"]) if "x_test" in names else None
        y_test = npz["y_test"].astype(np.int64) if "y_test" in names else None
    if max_train_images:
        x_train = x_train[:max_train_images]
        y_train = y_train[:max_train_images] if y_train is not None else None
    return Arrays(x_train, y_train, x_test, y_test)
