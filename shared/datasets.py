"""Validation of uploaded ``.npz`` datasets: never unpickled, never loaded whole.

The zip directory is read first (member count, names, duplicates, declared sizes), then each
member's NPY header on a bounded read (dtype, shape, elements, declared bytes), all before any
data is decompressed; the data is then streamed in chunks, counted and checked as it comes.
"""

from __future__ import annotations

import io
import lzma
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeGuard

import numpy as np
from numpy.lib import format as npy_format

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
# JSON Schema (ECMA) syntax, so the OpenAPI document can carry it; match it with ``fullmatch``
# (``re.match`` lets ``$`` match before a trailing newline: "mnist\n" would pass).
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
IMAGE_SHAPES = ((28, 28), (28, 28, 1), (784,))
IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.float64))
# An NPY header is a short dict literal; numpy's own loader refuses more than this by default.
MAX_HEADER_BYTES = 10_000
# Bytes of zip central directory one member can need (46 fixed, a short name, extra fields);
# more than the member limit times this is refused before zipfile parses the directory.
DIRECTORY_BYTES_PER_MEMBER = 1024
CHUNK_BYTES = 1 << 20


class DatasetError(Exception):
    """An upload that is not a usable dataset; names the offending field."""

    def __init__(self, field: str, message: str, code: str = "invalid_dataset") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


@dataclass(frozen=True)
class UploadLimits:
    """What one uploaded archive may hold (settings ``max_dataset_*``; defaults match them)."""

    unpacked_bytes: int = 512 * 1024 * 1024
    elements: int = 100_000_000
    members: int = len(ARRAY_NAMES)


@dataclass(frozen=True)
class DatasetSummary:
    """What a valid upload holds."""

    arrays: dict[str, dict[str, Any]]

    @property
    def train_count(self) -> int:
        """Number of training images."""
        return int(self.arrays["x_train"]["shape"][0])


@dataclass(frozen=True)
class _Header:
    member: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int  # bytes before the data (magic, version, length, header)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


def is_dataset_name(name: Any) -> TypeGuard[str]:
    """Whether ``name`` is a valid dataset name (the whole string; no trailing newline)."""
    return isinstance(name, str) and DATASET_NAME.fullmatch(name) is not None


def check_name(name: Any) -> str:
    """Return ``name`` if it is a valid dataset name, else raise DatasetError."""
    if not is_dataset_name(name):
        raise DatasetError(
            "name", "name must be 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
        )
    return str(name)


def _too_large(what: str, limit: int, setting: str) -> DatasetError:
    return DatasetError(
        "file",
        f"archive {what}, more than the limit of {limit:,} (GENTRAIN_{setting})",
        code="too_large",
    )


def _directory_bytes(data: bytes) -> int:
    """Size of the zip's central directory, from its end record found as zipfile finds it."""
    end = b"PK\x05\x06"
    start = len(data) - 22
    if start >= 0 and data[start : start + 4] == end and data[-2:] == b"\0\0":
        position = start
    else:
        position = data.rfind(end, max(0, len(data) - 22 - 0xFFFF))
    if position < 0 or position + 22 > len(data):
        raise DatasetError("file", "file is not an .npz (zip) archive")
    size = int.from_bytes(data[position + 12 : position + 16], "little")
    locator = position - 20
    record = locator - 56
    zip64 = (
        data[locator : locator + 4] == b"PK\x06\x07" and data[record : record + 4] == b"PK\x06\x06"
    )
    if record >= 0 and zip64:
        size = int.from_bytes(data[record + 40 : record + 48], "little")
    return size


def _open_archive(data: bytes, limits: UploadLimits) -> zipfile.ZipFile:
    """The archive's members, each a known array name once; refused before any decompression."""
    if _directory_bytes(data) > limits.members * DIRECTORY_BYTES_PER_MEMBER:
        raise DatasetError("file", f"archive lists more than {limits.members} members")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        NotImplementedError,
        struct.error,
    ) as error:
        raise DatasetError("file", f"file is not an .npz (zip) archive: {error}") from None
    members = archive.infolist()
    if len(members) > limits.members:
        raise DatasetError("file", f"archive has {len(members)} members; at most {limits.members}")
    seen: set[str] = set()
    for member in members:
        name = member.filename.removesuffix(".npy")
        if name not in ARRAY_NAMES:
            raise DatasetError(
                "file", f"unexpected array {name!r}; allowed: {', '.join(ARRAY_NAMES)}"
            )
        if name in seen:
            raise DatasetError(name, f"archive holds {name} more than once")
        seen.add(name)
    if "x_train" not in seen:
        raise DatasetError("file", "the archive must contain x_train")
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.unpacked_bytes:
        raise _too_large(
            f"unpacks to {unpacked:,} bytes", limits.unpacked_bytes, "MAX_DATASET_BYTES"
        )
    return archive


def _read_exactly(stream: IO[bytes], size: int, name: str) -> bytes:
    chunk = stream.read(size)
    if len(chunk) != size:
        raise DatasetError(name, f"{name} ends early: it is not a complete .npy array")
    return chunk


def _read_header(stream: IO[bytes], member: zipfile.ZipInfo, name: str) -> _Header:
    """Parse the NPY header with numpy's reader, from a read bounded by MAX_HEADER_BYTES."""
    prefix = _read_exactly(stream, npy_format.MAGIC_LEN, name)
    if prefix[:-2] != npy_format.MAGIC_PREFIX:
        raise DatasetError(name, f"{name} is not a .npy array (no NPY header)")
    version = (prefix[-2], prefix[-1])
    if version not in ((1, 0), (2, 0)):
        raise DatasetError(name, f"{name} has NPY format version {version}; 1.0 or 2.0 expected")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = _read_exactly(stream, struct.calcsize(length_format), name)
    (length,) = struct.unpack(length_format, length_bytes)
    if length > MAX_HEADER_BYTES:
        raise DatasetError(
            name, f"{name} has a {length}-byte NPY header; at most {MAX_HEADER_BYTES}"
        )
    header = prefix + length_bytes + _read_exactly(stream, length, name)
    reader = npy_format.read_array_header_1_0
    if version == (2, 0):
        reader = npy_format.read_array_header_2_0
    source = io.BytesIO(header)
    npy_format.read_magic(source)
    try:
        shape, _fortran_order, dtype = reader(source, max_header_size=MAX_HEADER_BYTES)
    except Exception as error:
        # numpy parses the header text (literal_eval, and tokenize for old headers): whatever it
        # raises on these bounded bytes, the header is what is wrong.
        raise DatasetError(name, f"{name} has an unreadable NPY header: {error}") from None
    if any(size < 0 for size in shape):
        raise DatasetError(name, f"{name} declares a negative dimension {shape}")
    return _Header(member, tuple(int(size) for size in shape), dtype, len(header))


def _check_declaration(name: str, header: _Header, images: int | None) -> None:
    """Dtype and shape from the header, and declared bytes consistent with the zip directory."""
    shape, dtype = header.shape, header.dtype
    if dtype.hasobject:
        raise DatasetError(name, f"{name} is a pickled or object array; those are never loaded")
    if name.startswith("x_"):
        if not shape or shape[1:] not in IMAGE_SHAPES or shape[0] < 1:
            raise DatasetError(
                name, f"{name} must have shape (N, 28, 28), (N, 28, 28, 1) or (N, 784)"
            )
        if dtype not in IMAGE_DTYPES:
            raise DatasetError(
                name, f"{name} must be uint8 (0-255) or float in [0, 1], not {dtype}"
            )
    else:
        if len(shape) != 1 or shape[0] != images:
            raise DatasetError(name, f"{name} must have shape ({images},), one label per image")
        if dtype.kind not in "iu":
            raise DatasetError(name, f"{name} must hold integers, not {dtype}")
    declared = header.offset + header.elements * dtype.itemsize
    if declared != header.member.file_size:
        raise DatasetError(
            name,
            f"{name}'s header declares {declared:,} bytes but the archive says "
            f"{header.member.file_size:,}",
        )


def _chunks(stream: IO[bytes], header: _Header, name: str, budget: int) -> Iterator[np.ndarray]:
    """The member's data as arrays of at most CHUNK_BYTES, counted against ``budget``."""
    itemsize = header.dtype.itemsize
    step = max(1, CHUNK_BYTES // itemsize) * itemsize
    left = header.elements * itemsize
    while left > 0:
        chunk = stream.read(min(step, left, budget + 1))
        if len(chunk) > budget:
            raise DatasetError("file", "archive unpacks to more than the limit", code="too_large")
        if not chunk or len(chunk) % itemsize:
            raise DatasetError(name, f"{name} ends early: it is not a complete .npy array")
        budget -= len(chunk)
        left -= len(chunk)
        yield np.frombuffer(chunk, dtype=header.dtype)
    if stream.read(1):
        raise DatasetError(name, f"{name} holds more data than its header declares")


def _check_values(name: str, values: np.ndarray) -> None:
    if name.startswith("x_"):
        if values.dtype == np.uint8:
            return
        if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
            raise DatasetError(name, f"{name} floats must be finite and within [0, 1]")
    elif values.size and (values.min() < 0 or values.max() > 9):
        raise DatasetError(name, f"{name} labels must be digits 0-9")


@contextmanager
def _reading(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str) -> Iterator[IO[bytes]]:
    """The member's decompressed stream; a corrupt or unreadable member is the member's error."""
    try:
        with archive.open(member) as stream:
            yield stream
    except (
        zipfile.BadZipFile,
        zlib.error,
        lzma.LZMAError,
        EOFError,
        OSError,  # bz2's "Invalid data stream"
        ValueError,  # a negative offset, a name that is not UTF-8
        RuntimeError,  # encrypted
        NotImplementedError,  # compression method
        struct.error,
    ) as error:
        raise DatasetError(name, f"{name} cannot be read from the archive: {error}") from None


def validate_npz(data: bytes, limits: UploadLimits | int) -> DatasetSummary:
    """Check an uploaded ``.npz`` without unpickling or loading it whole; raise DatasetError
    if unusable (code ``too_large`` when over a limit). An int is the unpacked-bytes limit."""
    if isinstance(limits, int):
        limits = UploadLimits(unpacked_bytes=limits)
    archive = _open_archive(data, limits)
    headers: dict[str, _Header] = {}
    for member in archive.infolist():
        name = member.filename.removesuffix(".npy")
        with _reading(archive, member, name) as stream:
            headers[name] = _read_header(stream, member, name)
    elements = sum(header.elements for header in headers.values())
    if elements > limits.elements:
        raise _too_large(
            f"declares {elements:,} array elements", limits.elements, "MAX_DATASET_ELEMENTS"
        )
    if "y_test" in headers and "x_test" not in headers:
        raise DatasetError("y_test", "y_test given without x_test")
    for name, header in headers.items():
        images = headers[f"x_{name[2:]}"].shape[0] if name.startswith("y_") else None
        _check_declaration(name, header, images)
    budget = limits.unpacked_bytes
    for name, header in headers.items():
        with _reading(archive, header.member, name) as stream:
            _read_exactly(stream, header.offset, name)
            for values in _chunks(stream, header, name, budget):
                _check_values(name, values)
                budget -= values.nbytes
    summary = {
        name: {"shape": list(header.shape), "dtype": str(header.dtype)}
        for name, header in headers.items()
    }
    return DatasetSummary(summary)
