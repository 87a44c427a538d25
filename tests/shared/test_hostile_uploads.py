"""Hostile uploads (issue 10): each archive is refused from its zip directory or NPY header,
before its data is unpacked, with a 4xx-shaped DatasetError naming the member."""

import io
import random
import tracemalloc
import zipfile

import numpy as np
import pytest

from shared.api_keys import create_key
from shared.datasets import ARRAY_NAMES, DatasetError, UploadLimits, check_name, validate_npz
from shared.settings import Settings
from tests.shared.npz_builders import archive, corrupt, npy, npy_header, zeros_archive

IMAGES = np.zeros((3, 784), np.uint8)


def refusal(data: bytes, limits: UploadLimits | None = None) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        validate_npz(data, limits or UploadLimits())
    return caught.value


def test_duplicate_member_names_are_refused_from_the_directory() -> None:
    # Found: 200 empty x_train.npy entries before the real one cost 9.6 s of CPU and were stored.
    # Now its directory alone (201 entries) is over what four members can need.
    data = archive(*[("x_train.npy", b"")] * 200, ("x_train.npy", npy(IMAGES)))
    error = refusal(data)
    assert (error.field, error.code) == ("file", "invalid_dataset")
    assert "more than 4 members" in error.message
    # Two entries fit the directory bound; the repeated name is refused, naming the member.
    error = refusal(archive(("x_train.npy", b""), ("x_train.npy", npy(IMAGES))))
    assert (error.field, error.code) == ("x_train", "invalid_dataset")
    assert "more than once" in error.message


def test_the_same_array_with_and_without_npy_suffix_is_a_duplicate() -> None:
    error = refusal(archive(("x_train.npy", npy(IMAGES)), ("x_train", npy(IMAGES))))
    assert error.field == "x_train" and "more than once" in error.message


def test_a_directory_of_many_entries_is_refused_before_zipfile_parses_it() -> None:
    # 3,000 entries: zipfile would build 3,000 ZipInfo objects (600,000: 3.5 s and 320 MB).
    data = archive(*[("x_train.npy", b"")] * 3000)
    error = refusal(data)
    assert error.field == "file" and "more than 4 members" in error.message


def test_more_members_than_the_limit_are_refused() -> None:
    data = archive(("x_train.npy", npy(IMAGES)), ("y_train.npy", npy(np.zeros(3, np.int64))))
    error = refusal(data, UploadLimits(members=1))
    assert error.field == "file" and "at most 1" in error.message


def test_a_member_without_an_npy_header_is_refused() -> None:
    # Found: a 500 (numpy hands back the raw bytes and the check then fails on them).
    error = refusal(archive(("x_train.npy", b"just some bytes, not an array")))
    assert error.field == "x_train" and "no NPY header" in error.message


def test_a_truncated_npy_header_is_refused() -> None:
    error = refusal(archive(("x_train.npy", npy_header((3, 784))[:20])))
    assert error.field == "x_train" and "ends early" in error.message


def test_a_header_claiming_ten_billion_images_is_refused_before_any_read() -> None:
    # Found: a 500 (numpy tried to allocate 7.8 TB).
    error = refusal(archive(("x_train.npy", npy_header((10**10, 784)) + b"\0" * 784)))
    assert error.code == "too_large" and error.field == "file"
    assert "GENTRAIN_MAX_DATASET_ELEMENTS" in error.message


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (npy_header((3, 784), "<f2"), "must be uint8"),
        (npy_header((3, 784), "|O"), "pickled or object array"),
        (npy_header((3, 784), [("a", "<f4")]), "must be uint8"),
        (npy_header((-3, 784)), "negative dimension"),
        (npy_header((3, 784), version=(2, 0)), "declares"),  # 2.0 read; no data: sizes differ
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}  \n", "unreadable NPY header"),
        (b"\x93NUMPY\x01\x00\x10\x00[1, 2, 3, 4]    \n", "unreadable NPY header"),
        (b"\x93NUMPY\x02\x00\x00\x00\x01\x00" + b" " * 64, "NPY header; at most"),
        (b"\x93NUMPY\x03\x00\x10\x00\x00\x00{}", "version (3, 0)"),
    ],
)
def test_absurd_headers_are_refused_naming_the_member(header: bytes, message: str) -> None:
    error = refusal(archive(("x_train.npy", header)))
    assert error.field == "x_train" and error.code == "invalid_dataset"
    assert message in error.message


def test_a_header_that_disagrees_with_the_zip_directory_is_refused() -> None:
    # 1,000 images declared, ten bytes present: numpy would read short; we never start.
    error = refusal(archive(("x_train.npy", npy_header((1000, 784)) + b"\0" * 10)))
    assert error.field == "x_train" and "header declares" in error.message


def test_a_corrupt_member_is_refused_naming_it() -> None:
    data = corrupt(
        archive(("x_train.npy", npy(np.arange(784 * 50, dtype=np.uint8).reshape(50, 784))))
    )
    error = refusal(data)
    assert error.field == "x_train" and "cannot be read" in error.message


def test_labels_are_checked_from_their_header_against_the_images() -> None:
    data = archive(("x_train.npy", npy(IMAGES)), ("y_train.npy", npy(np.zeros(4, np.int64))))
    assert refusal(data).field == "y_train"
    data = archive(("x_train.npy", npy(IMAGES)), ("y_train.npy", npy(np.zeros(3, np.float32))))
    assert "integers" in refusal(data).message


def test_a_small_upload_declaring_660000_images_is_refused_by_the_element_limit() -> None:
    # Found: 500 KB declaring 660,000 x 784 zeros was accepted, then cost 0.6 GB in the API and
    # 5 GB in each worker. Default limits refuse it from its header, before unpacking.
    data = zeros_archive(660_000)
    assert len(data) < 1_000_000
    error = refusal(data)
    assert error.code == "too_large" and "517,440,000 array elements" in error.message


def test_an_accepted_upload_is_streamed_never_held_whole() -> None:
    data = zeros_archive(60_000)  # 47 MB unpacked
    tracemalloc.start()
    try:
        summary = validate_npz(data, UploadLimits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.train_count == 60_000
    assert peak < 8 * 1024 * 1024, peak  # a chunk or two, not the 47 MB array


def test_a_full_keras_mnist_passes_the_default_limits() -> None:
    data = archive(
        ("x_train.npy", npy(np.zeros((60_000, 28, 28), np.uint8))),
        ("y_train.npy", npy(np.zeros(60_000, np.uint8))),
        ("x_test.npy", npy(np.zeros((10_000, 28, 28), np.uint8))),
        ("y_test.npy", npy(np.zeros(10_000, np.uint8))),
    )
    summary = validate_npz(data, UploadLimits())
    assert summary.arrays["x_test"] == {"shape": [10_000, 28, 28], "dtype": "uint8"}


def test_default_limits_match_the_settings() -> None:
    settings = Settings()
    assert UploadLimits() == UploadLimits(
        settings.max_dataset_bytes, settings.max_dataset_elements, settings.max_dataset_members
    )


@pytest.mark.parametrize("name", ["mnist\n", "mnist\r", "mnist\n\n", "\nmnist", "mn ist"])
def test_dataset_names_with_a_trailing_newline_are_refused(name: str) -> None:
    with pytest.raises(DatasetError):
        check_name(name)


def test_owner_names_with_a_trailing_newline_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import embedded_settings

    settings = embedded_settings(tmp_path)
    with pytest.raises(ValueError, match="owner must be"):
        create_key(settings.database_url, "alice\n")
    row, _ = create_key(settings.database_url, "alice")
    assert row.owner == "alice"


def mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """``count`` copies of ``data``, each with a few bytes changed, inserted or cut."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at, op = rng.randrange(len(mutated)), rng.random()
            if op < 0.6:
                mutated[at] = rng.randrange(256)
            elif op < 0.8:
                mutated[at : at + rng.randint(1, 4)] = rng.randbytes(rng.randint(1, 4))
            else:
                del mutated[at : at + rng.randint(1, 20)]
        out.append(bytes(mutated))
    return out


@pytest.mark.parametrize(
    ("method", "seed"),
    [
        (zipfile.ZIP_DEFLATED, 1),
        (zipfile.ZIP_DEFLATED, 2),
        (zipfile.ZIP_STORED, 3),
        (zipfile.ZIP_LZMA, 4),
    ],
)
def test_mangled_archives_are_accepted_or_refused_never_crash(method: int, seed: int) -> None:
    # Fuzzing found a negative seek, an unknown zip version, a name that is not UTF-8,
    # tokenize's error on an old-style header and LZMA's errors escaping as 500s; each is now
    # a DatasetError.
    floats = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as zipped:
        zipped.writestr("x_train.npy", npy(floats))
        zipped.writestr("y_train.npy", npy(np.arange(5)))
    assert validate_npz(buffer.getvalue(), UploadLimits()).train_count == 5
    for data in mutations(buffer.getvalue(), 1500, seed):
        try:
            validate_npz(data, UploadLimits())
        except DatasetError as error:
            assert error.field in ("file", *ARRAY_NAMES) and error.message
