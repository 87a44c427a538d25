"""Registering datasets: validate, store the file, record the row; and the built-in MNIST."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.datasets import DatasetError, UploadLimits, check_name, validate_npz
from shared.db.models import Dataset, new_id
from shared.db.session import session_scope
from shared.jobs import JobActive, release_dataset
from shared.jobs.changes import write_lock
from shared.object_removals import note_removals, remove_now
from shared.settings import Settings
from shared.storage import ObjectStore, dataset_key
from shared.sweeps.datasets import release_sweeps
from shared.usage import QuotaExceeded, check_owner_bytes, owner_usage

__all__ = ["QuotaExceeded"]  # raised here; defined with the other quotas in shared.usage

# Keras's MNIST file (keras.datasets.mnist.load_data downloads the same one).
MNIST_NAME = "mnist"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


class DatasetExists(Exception):
    """A dataset by that name is already registered for that owner."""


@dataclass(frozen=True)
class OwnerQuota:
    """How many datasets, and how many stored bytes of them, one owner may have; and how many
    bytes in all, datasets and job artifacts together (0: no limit)."""

    datasets: int
    stored_bytes: int
    total_bytes: int = 0


def upload_limits(settings: Settings) -> UploadLimits:
    """The limits on one uploaded archive, from settings."""
    return UploadLimits(
        unpacked_bytes=settings.max_dataset_bytes,
        elements=settings.max_dataset_elements,
        members=settings.max_dataset_members,
    )


def owner_quota(settings: Settings) -> OwnerQuota:
    """The per-owner dataset quota, from settings."""
    return OwnerQuota(
        settings.max_datasets_per_owner,
        settings.max_dataset_bytes_per_owner,
        settings.owner_quota_bytes,
    )


def _check_quota(
    session: Session, owner: str, quota: OwnerQuota, adding: int | None = None
) -> None:
    """Raise QuotaExceeded if ``owner``'s datasets (plus ``adding`` bytes in one more) are over
    ``quota``."""
    query = select(func.count(), func.coalesce(func.sum(Dataset.size_bytes), 0))
    count, stored = session.execute(query.where(Dataset.owner == owner)).one()
    if adding is not None:
        count, stored = count + 1, stored + adding
    if count > quota.datasets:
        raise QuotaExceeded(
            f"owner would have {count} datasets, more than the limit of {quota.datasets} "
            "(GENTRAIN_MAX_DATASETS_PER_OWNER)"
        )
    if stored > quota.stored_bytes:
        raise QuotaExceeded(
            f"owner's datasets would take {stored:,} bytes, more than the limit of "
            f"{quota.stored_bytes:,} (GENTRAIN_MAX_DATASET_BYTES_PER_OWNER)"
        )
    if quota.total_bytes:
        check_owner_bytes(owner_usage(session, owner), quota.total_bytes, adding or 0)


def _record(session: Session, dataset: Dataset, quota: OwnerQuota | None) -> None:
    """Insert the row; with a quota, check it in the same transaction, the row counted."""
    if quota is not None and session.get_bind().dialect.name == "postgresql":
        # Two uploads by one owner must not both pass the check: serialise them on the owner.
        # (SQLite serialises writers already: the insert below takes the write lock first.)
        lock = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
        session.execute(lock, {"key": f"gentrain.datasets.{dataset.owner}"})
    session.add(dataset)
    session.flush()
    if quota is not None:
        _check_quota(session, dataset.owner, quota)


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
    limits: UploadLimits | int,
    owner: str = "",
    quota: OwnerQuota | None = None,
) -> Dataset:
    """Check ``data`` (an .npz, never unpickled), store it and record it; nothing is kept if any
    step fails. ``limits`` bound the archive (an int: its unpacked bytes, other limits at their
    defaults); ``quota``, when given, the owner's datasets. Raises DatasetError, DatasetExists
    or QuotaExceeded."""
    check_name(name)
    if not data:
        raise DatasetError("file", "file is empty")
    summary = validate_npz(data, limits)
    if dataset_exists(database_url, name, owner):
        raise DatasetExists(name)
    if quota is not None:
        with session_scope(database_url) as session:
            _check_quota(session, owner, quota, adding=len(data))
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
            _record(session, dataset, quota)
    except IntegrityError:
        store.delete(stored.key)
        raise DatasetExists(name) from None
    except QuotaExceeded:
        store.delete(stored.key)
        raise
    return dataset


class DatasetInUse(Exception):
    """A queued or running job uses the dataset; the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def delete_dataset(database_url: str, store: ObjectStore, owner: str, name: str) -> Dataset:
    """Delete ``owner``'s dataset ``name``: its row and its object. Ended jobs that trained on it
    keep their rows, metrics and artifacts, detached from it (their ``dataset`` reads null).
    Raises LookupError for no such dataset and DatasetInUse while a job that has not ended uses
    it. The row is locked while that is checked; a submission locks it too (``FOR SHARE``) while
    it creates its job, so the two cannot both succeed."""
    with session_scope(database_url) as session:
        write_lock(session)  # SQLite: the write lock before the read (PostgreSQL: FOR UPDATE)
        dataset = session.scalar(
            select(Dataset).where(Dataset.owner == owner, Dataset.name == name).with_for_update()
        )
        if dataset is None:
            raise LookupError(name)
        try:
            release_dataset(session, dataset.id)
        except JobActive as error:
            raise DatasetInUse(
                f"dataset {name!r} is in use: {error.message} (POST /v1/jobs/<id>/cancel)"
            ) from None
        if (sweep_id := release_sweeps(session, dataset.id)) is not None:
            raise DatasetInUse(
                f"dataset {name!r} is in use: sweep {sweep_id} has not ended; cancel it "
                f"(POST /v1/sweeps/{sweep_id}/cancel) or wait for it to end first"
            )
        session.execute(
            delete(Dataset)
            .where(Dataset.id == dataset.id)
            .execution_options(synchronize_session=False)
        )
        session.expunge(dataset)
        note_removals(session, [dataset.storage_key])
    # After the commit; the reaper removes it again later (a storage failure now, say).
    remove_now(store, [dataset.storage_key])
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
