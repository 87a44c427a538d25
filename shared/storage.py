"""Object storage: one small interface, an S3 backend (boto3) and a local-directory backend."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from shared.settings import Settings

# Keys are slash-separated segments of safe characters; no segment may be "." or "..".
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
CHUNK = 1024 * 1024


class StorageError(Exception):
    """Object storage failed or a key was not found."""


class ObjectNotFound(StorageError):
    """No object under that key."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ValueError."""
    segments = key.split("/")
    if not key or len(key) > 255 or not all(_KEY_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"invalid object key {key!r}")
    return key


def job_key(job_id: str, *parts: str) -> str:
    """Key of an object under a job's prefix, e.g. ``jobs/<id>/samples/grid.png``."""
    return check_key("/".join(("jobs", job_id, *parts)))


def job_prefix(job_id: str) -> str:
    """The prefix every object of a job is stored under (every attempt's), with its slash."""
    return check_key(f"jobs/{job_id}") + "/"


def dataset_key(dataset_id: str) -> str:
    """Key of an uploaded dataset."""
    return check_key(f"datasets/{dataset_id}.npz")


@dataclass(frozen=True)
class StoredObject:
    """What was written: where, how big, and its digest."""

    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    """The operations gentrain needs from object storage."""

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        """Store the file at ``path`` under ``key``."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Store ``data`` under ``key``."""
        ...

    def download(self, key: str, path: Path) -> None:
        """Copy the object at ``key`` to the local file ``path``."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The whole object at ``key``."""
        ...

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """The object at ``key``, in chunks, for streaming responses."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object at ``key`` (no error if absent)."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix`` (a folder-like prefix ending in a slash)."""
        ...

    def delete_many(self, keys: list[str]) -> None:
        """Remove the objects at ``keys`` (no error for absent ones)."""
        ...

    def presigned_url(self, key: str, seconds: int) -> str | None:
        """A short-lived download URL, or None where the backend has none."""
        ...

    def ping(self) -> None:
        """Raise StorageError unless the store is reachable and writable."""
        ...


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LocalStore:
    """Objects as files under one root directory (the embedded mode)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target, then rename: a reader never sees half a file.
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
            path.open("rb") as source,
        ):
            shutil.copyfileobj(source, tmp, CHUNK)
        os.replace(tmp.name, target)
        return StoredObject(key, target.stat().st_size, file_sha256(target))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, target)
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def get_bytes(self, key: str) -> bytes:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        return source.read_bytes()

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        handle: IO[bytes] = source.open("rb")

        def chunks() -> Iterator[bytes]:
            with handle:
                yield from iter(lambda: handle.read(CHUNK), b"")

        return chunks()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        folder = self.root / check_key(prefix.rstrip("/"))
        if not folder.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix() for path in folder.rglob("*") if path.is_file()
        )

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)
        # Empty folders left behind would be listed as nothing, but would pile up.
        for key in keys:
            parent = self._path(key).parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def presigned_url(self, key: str, seconds: int) -> str | None:
        return None

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


class S3Store:
    """Objects in an S3 bucket (AWS, MinIO, or any S3-compatible endpoint)."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "region_name": settings.s3_region,
            "config": Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        }
        if settings.s3_access_key_id:
            options["aws_access_key_id"] = settings.s3_access_key_id
            options["aws_secret_access_key"] = settings.s3_secret_access_key
        self.bucket = settings.s3_bucket
        self.client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None, **options)
        public = settings.s3_public_endpoint_url or settings.s3_endpoint_url or None
        self.public_client = (
            self.client
            if public == (settings.s3_endpoint_url or None)
            else boto3.client("s3", endpoint_url=public, **options)
        )
        self._bucket_ready = False

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise StorageError(f"bucket {self.bucket!r}: {error}") from error
            self.client.create_bucket(Bucket=self.bucket)
        self._bucket_ready = True

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        self._ensure_bucket()
        self.client.upload_file(
            str(path), self.bucket, check_key(key), ExtraArgs={"ContentType": content_type}
        )
        return StoredObject(key, path.stat().st_size, file_sha256(path))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self._ensure_bucket()
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    def _get(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from error
            raise StorageError(str(error)) from error

    def download(self, key: str, path: Path) -> None:
        body = self._get(key)["Body"]
        with path.open("wb") as handle:
            for chunk in body.iter_chunks(CHUNK):
                handle.write(chunk)

    def get_bytes(self, key: str) -> bytes:
        data: bytes = self._get(key)["Body"].read()
        return data

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        body = self._get(key)["Body"]
        return iter(body.iter_chunks(CHUNK))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
            return True
        except ClientError:
            return False

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def list_keys(self, prefix: str) -> list[str]:
        check_key(prefix.rstrip("/"))
        self._ensure_bucket()
        keys: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete_many(self, keys: list[str]) -> None:
        # DeleteObjects takes at most 1,000 keys a request.
        for start in range(0, len(keys), 1000):
            batch: list[Any] = [{"Key": check_key(key)} for key in keys[start : start + 1000]]
            result = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if errors := result.get("Errors"):
                first = errors[0]
                raise StorageError(
                    f"cannot delete {len(errors)} objects, e.g. {first.get('Key')}: "
                    f"{first.get('Message')}"
                )

    def presigned_url(self, key: str, seconds: int) -> str | None:
        url: str = self.public_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=seconds
        )
        return url

    def ping(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._ensure_bucket()
        except (BotoCoreError, ClientError) as error:
            raise StorageError(str(error)) from error


def open_store(settings: Settings) -> ObjectStore:
    """The object store the settings name: S3 when a bucket is set, else the local directory."""
    if settings.uses_s3:
        return S3Store(settings)
    return LocalStore(settings.storage_dir)
