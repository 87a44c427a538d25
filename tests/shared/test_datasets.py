import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from shared.datasets import DatasetError, check_name, validate_npz

LIMIT = 64 * 1024 * 1024


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_real_mnist_sample_is_accepted(mnist_path: Path) -> None:
    summary = validate_npz(mnist_path.read_bytes(), LIMIT)
    assert summary.train_count == 4000
    assert summary.arrays["x_test"] == {"shape": [1000, 28, 28], "dtype": "uint8"}


def test_flat_float_images_are_accepted() -> None:
    data = npz_bytes(x_train=np.random.default_rng(0).random((5, 784), dtype=np.float32))
    assert validate_npz(data, LIMIT).train_count == 5


def test_pickled_object_arrays_are_refused_without_unpickling() -> None:
    objects = np.empty(3, dtype=object)
    objects[:] = [{"a": 1}, None, "x"]
    with pytest.raises(DatasetError, match="pickled or object array"):
        validate_npz(npz_bytes(x_train=objects), LIMIT)


@pytest.mark.parametrize(
    ("arrays", "field", "message"),
    [
        ({"x_train": np.zeros((4, 32, 32), np.uint8)}, "x_train", "must have shape"),
        ({"x_train": np.zeros((4, 28, 28), np.int32)}, "x_train", "must be uint8"),
        ({"x_train": np.full((4, 784), 2.0, np.float32)}, "x_train", "within [0, 1]"),
        (
            {"x_train": np.zeros((4, 784), np.uint8), "y_train": np.zeros(3, np.int64)},
            "y_train",
            "one label",
        ),
        (
            {"x_train": np.zeros((4, 784), np.uint8), "y_train": np.full(4, 12)},
            "y_train",
            "digits 0-9",
        ),
        ({"y_train": np.zeros(3, np.int64)}, "file", "must contain x_train"),
        (
            {"x_train": np.zeros((4, 784), np.uint8), "labels": np.zeros(4)},
            "file",
            "unexpected array",
        ),
    ],
)
def test_wrong_shapes_and_dtypes_are_refused(arrays: dict, field: str, message: str) -> None:
    with pytest.raises(DatasetError) as caught:
        validate_npz(npz_bytes(**arrays), LIMIT)
    assert caught.value.field == field
    assert message in caught.value.message


def test_zip_bomb_is_refused_before_decompression() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_train.npy", b"\0" * (8 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 100_000
    with pytest.raises(DatasetError) as caught:
        validate_npz(data, 1024 * 1024)
    assert caught.value.code == "too_large"


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(DatasetError, match="not an .npz"):
        validate_npz(b"hello world", LIMIT)


@pytest.mark.parametrize("name", ["", "Mnist", "../etc", "a" * 65, "-x"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(DatasetError):
        check_name(name)
