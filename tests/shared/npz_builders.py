"""Hostile ``.npz`` archives built byte by byte (zipfile and numpy.lib.format), for the tests."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from functools import cache
from typing import Any

import numpy as np
from numpy.lib import format as npy_format


def npy_header(
    shape: tuple[int, ...], descr: Any = "|u1", version: tuple[int, int] = (1, 0)
) -> bytes:
    """An NPY header (magic, version, length, dict) declaring ``shape`` and ``descr``."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        npy_format.write_array_header_1_0(buffer, header)
    else:
        npy_format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    """``array`` as a .npy file."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def archive(*members: tuple[str, bytes]) -> bytes:
    """A deflated zip of ``members`` in order; repeated names are kept (zipfile only warns)."""
    buffer = io.BytesIO()
    with (
        warnings.catch_warnings(),
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for name, data in members:
            zipped.writestr(name, data)
    return buffer.getvalue()


@cache
def zeros_archive(images: int, name: str = "x_train.npy") -> bytes:
    """A small archive whose one member is ``images`` × 784 uint8 zeros, streamed (never held)."""
    buffer = io.BytesIO()
    chunk = b"\0" * (784 * 1000)
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped,
        zipped.open(name, "w", force_zip64=True) as member,
    ):
        member.write(npy_header((images, 784)))
        left = images * 784
        while left:
            member.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
    return buffer.getvalue()


def corrupt(data: bytes, name: str = "x_train.npy") -> bytes:
    """``data`` with one byte in the middle of ``name``'s compressed stream flipped."""
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        info = zipped.getinfo(name)
    local = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[local + 26 : local + 30])
    middle = local + 30 + name_length + extra_length + info.compress_size // 2
    flipped = bytearray(data)
    flipped[middle] ^= 0xFF
    return bytes(flipped)
