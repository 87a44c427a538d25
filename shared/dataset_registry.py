"""Registering datasets: validate, store the file, record the row; and the built-in MNIST."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared.datasets import DatasetError, check_name, validate_npz
from shared.db.models import Dataset, new_id
from shared.db.session import session_scope
from shared.storage import ObjectStore, dataset_key

# Keras's MNIST file (keras.datasets.mnist.load_data downloads the same one).
MNIST_NAME = "mnist"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


class DatasetExists(Exception):
    """A dataset by that name is already registered for that owner."""


def dataset_exists(database_url: str, name: str, owner: str = "") -> bool:
    """Whether ``owner`` has a dataset called ``name``."""
    with session_scope(database_url) as session:
        query = select(Dataset.id).where(Dataset.owner == owner, Dataset.name == name)
        return session.scalar(query) is not None


def register_dataset(
    database_url: str,
    store: ObjectStore,
    name: str,
    data: bytes,
    max_unpacked: int,
    owner: str = "",
) -> Dataset:
    """Check ``data`` (an .npz, never unpickled), store it and record it; nothing is kept if any
    step fails. Raises DatasetError or DatasetExists."""
    check_name(name)
    if not data:
        raise DatasetError("file", "file is empty")
    summary = validate_npz(data, max_unpacked)
    if dataset_exists(database_url, name, owner):
        raise DatasetExists(name)
    dataset_id = new_id()
    stored = store.put_bytes(dataset_key(dataset_id), data, "application/octet-stream")
    dataset = Dataset(
        id=dataset_id,
        name=name,
        owner=owner,
        storage_key=stored.key,
        size_bytes=stored.size,
        sha256=hashlib.sha256(data).hexdigest(),
        arrays=summary.arrays,
    )
    try:
        with session_scope(database_url) as session:
            session.add(dataset)
    except IntegrityError:
        store.delete(stored.key)
        raise DatasetExists(name) from None
    return dataset


def fetch_mnist(
    file: Path | None = None,
    origin: str = MNIST_URL,
    sha256: str = MNIST_SHA256,
    cache_dir: Path | None = None,
) -> bytes:
    """Keras's mnist.npz, from ``file`` or downloaded with Keras's loader; sha256 verified."""
    if file is None:
        import keras

        try:
            file = Path(
                keras.utils.get_file(
                    f"mnist-{sha256[:12]}.npz",
                    origin=origin,
                    file_hash=sha256,
                    cache_dir=str(cache_dir) if cache_dir else None,
                )
            )
        except Exception as error:
            raise DatasetError(
                "file",
                f"cannot download Keras's MNIST here ({type(error).__name__}); fetch {origin} "
                "on a machine that can, then pass it with --file, or upload any .npz of digits "
                "with POST /v1/datasets",
            ) from None
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DatasetError("file", f"{file} is not Keras's mnist.npz (sha256 {digest[:16]}…)")
    return data
