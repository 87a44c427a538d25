from pathlib import Path

import pytest
import requests

from shared.settings import Settings
from shared.storage import LocalStore, ObjectNotFound, ObjectStore, S3Store, check_key, job_key


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    settings = Settings(
        data_dir=tmp_path,
        s3_bucket=f"bucket-{tmp_path.name[-20:].lower().replace('_', '-')}",
        s3_endpoint_url=endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    return S3Store(settings)


def test_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    key = job_key("abc", "samples", "grid.png")
    stored = store.put_bytes(key, b"\x89PNG data", "image/png")
    assert stored.size == 9 and len(stored.sha256) == 64
    assert store.exists(key)
    assert store.get_bytes(key) == b"\x89PNG data"
    assert b"".join(store.iter_chunks(key)) == b"\x89PNG data"
    source = tmp_path / "model.keras"
    source.write_bytes(b"k" * 3_000_000)
    store.put_file("jobs/abc/model.keras", source, "application/octet-stream")
    target = tmp_path / "copy"
    store.download("jobs/abc/model.keras", target)
    assert target.read_bytes() == source.read_bytes()
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound):
        store.get_bytes(key)
    store.ping()


def test_presigned_url_downloads_over_http(s3_endpoint: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        s3_bucket="presign-test",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    store = S3Store(settings)
    store.put_bytes("datasets/x.npz", b"payload", "application/octet-stream")
    url = store.presigned_url("datasets/x.npz", 60)
    assert url and "Expires=60" in url or "X-Amz-Expires=60" in str(url)
    assert requests.get(str(url), timeout=10).content == b"payload"


@pytest.mark.parametrize("key", ["", "../x", "jobs/../../etc", "/abs", "a//b", "jobs/./x", "a b"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)
