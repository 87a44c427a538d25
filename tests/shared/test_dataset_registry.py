import hashlib
import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from shared.dataset_registry import (
    DatasetExists,
    OwnerQuota,
    QuotaExceeded,
    dataset_exists,
    fetch_mnist,
    owner_quota,
    register_dataset,
    upload_limits,
)
from shared.datasets import DatasetError
from shared.settings import Settings
from shared.storage import open_store
from tests.conftest import FIXTURES
from tests.shared.npz_builders import archive, npy


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    """A loopback HTTP server for the fixtures folder (stands in for Keras's download host)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_is_verified_then_registered_once(
    settings: Settings, file_server: str, tmp_path: Path, mnist_path: Path
) -> None:
    digest = hashlib.sha256(mnist_path.read_bytes()).hexdigest()
    data = fetch_mnist(origin=f"{file_server}/mnist_5k.npz", sha256=digest, cache_dir=tmp_path)
    store = open_store(settings)
    dataset = register_dataset(settings.database_url, store, "mnist", data, 10**9)
    assert dataset.arrays["x_train"]["shape"] == [4000, 28, 28]
    assert store.get_bytes(dataset.storage_key) == data
    assert dataset_exists(settings.database_url, "mnist")
    with pytest.raises(DatasetExists):
        register_dataset(settings.database_url, store, "mnist", data, 10**9)


def test_a_download_with_the_wrong_digest_is_refused(file_server: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot download"):
        fetch_mnist(origin=f"{file_server}/mnist_5k.npz", cache_dir=tmp_path)


def test_an_unreachable_host_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="pass it with --file"):
        fetch_mnist(origin="http://127.0.0.1:9/mnist.npz", cache_dir=tmp_path)


def test_a_local_file_must_be_kerass_mnist(mnist_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not Keras's mnist.npz"):
        fetch_mnist(file=mnist_path)


def test_quotas_are_per_owner_and_hold_under_concurrent_uploads(settings: Settings) -> None:
    import numpy as np

    store = open_store(settings)
    data = archive(("x_train.npy", npy(np.zeros((3, 784), np.uint8))))
    quota = OwnerQuota(datasets=3, stored_bytes=10**9)
    limits = upload_limits(settings)

    def attempt(name: str) -> str:
        try:
            register_dataset(settings.database_url, store, name, data, limits, "alice", quota)
        except QuotaExceeded:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(attempt, [f"d{i}" for i in range(8)]))
    assert outcomes == ["refused"] * 5 + ["stored"] * 3
    register_dataset(settings.database_url, store, "d0", data, limits, "bob", quota)
    bytes_quota = OwnerQuota(datasets=100, stored_bytes=4 * len(data) - 1)
    with pytest.raises(QuotaExceeded, match="GENTRAIN_MAX_DATASET_BYTES_PER_OWNER"):
        register_dataset(settings.database_url, store, "d9", data, limits, "alice", bytes_quota)
    assert owner_quota(settings) == OwnerQuota(100, 4 * 1024**3)
