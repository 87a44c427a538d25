"""Workers read only what a job uses (issue 10): the rows trained on, a bounded held-out split,
the images a sampling job draws; the same values as reading everything, at a fraction of the
memory."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.worker_memory import build_dataset
from workers.engine import data
from workers.engine.data import Arrays, draw, load_arrays, load_drawn, spread
from workers.engine.reporter import UserError

ROOT = Path(__file__).parents[2]


def read_everything(path: Path) -> Arrays:
    """What the loader did before issue 10: every array whole, then converted."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}

    def images(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1)
        return flat.astype(np.float32) / 255.0 if x.dtype == np.uint8 else flat.astype(np.float32)

    def labels(name: str) -> np.ndarray | None:
        return arrays[name].astype(np.int64) if name in arrays else None

    x_test = images(arrays["x_test"]) if "x_test" in arrays else None
    return Arrays(images(arrays["x_train"]), labels("y_train"), x_test, labels("y_test"))


def test_the_rows_read_are_the_rows_np_load_gives(mnist_path: Path) -> None:
    everything = read_everything(mnist_path)
    loaded = load_arrays(mnist_path)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(loaded, name), getattr(everything, name)), name
    assert loaded.x_train.dtype == np.float32 and loaded.y_train is not None
    first = load_arrays(mnist_path, max_train_images=100)
    assert np.array_equal(first.x_train, everything.x_train[:100])
    assert np.array_equal(first.y_train, everything.y_train[:100])  # type: ignore[index]


@pytest.mark.parametrize("shape", [(60, 28, 28), (60, 28, 28, 1), (60, 784)])
@pytest.mark.parametrize("fortran", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.float32])
def test_every_accepted_layout_reads_the_same(
    tmp_path: Path, shape: tuple[int, ...], fortran: bool, dtype: type
) -> None:
    values = np.random.default_rng(1).random(shape)
    x = (values * 255).astype(np.uint8) if dtype is np.uint8 else values.astype(dtype)
    x = np.asfortranarray(x) if fortran else np.ascontiguousarray(x)
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x_train=x, y_train=np.arange(60) % 10)
    everything = read_everything(path)
    loaded = load_arrays(path, max_train_images=7)
    assert np.array_equal(loaded.x_train, everything.x_train[:7])
    assert np.array_equal(loaded.y_train, everything.y_train[:7])  # type: ignore[index]


def test_the_held_out_split_is_bounded_and_evenly_spread(tmp_path: Path) -> None:
    assert list(spread(5, 10)) == [0, 1, 2, 3, 4]
    assert list(spread(10, 4)) == [0, 2, 5, 7]
    # A test split sorted by digit, as MNIST CSVs are: a bounded subset still has every digit.
    x_test = np.repeat(np.arange(10, dtype=np.uint8), 50)[:, None].repeat(784, axis=1)
    path = tmp_path / "sorted.npz"
    np.savez(path, x_train=x_test[:3], x_test=x_test, y_test=np.repeat(np.arange(10), 50))
    loaded = load_arrays(path, held_out_images=20)
    assert loaded.x_test is not None and loaded.y_test is not None
    assert len(loaded.x_test) == 20 and sorted(set(loaded.y_test)) == list(range(10))
    assert np.array_equal(loaded.x_test[:, 0] * 255, loaded.y_test)
    assert data.HELD_OUT_IMAGES == 10_000  # the seed's MNIST test split, whole


def test_a_train_split_scored_as_held_out_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "HELD_OUT_IMAGES", 4)
    x = np.arange(10 * 784, dtype=np.float32).reshape(10, 784)
    split, kept, labels = data.held_out(Arrays(x, np.arange(10), None, None))
    assert split == "train" and labels is not None and list(labels) == [0, 2, 5, 7]
    assert np.array_equal(kept, x[[0, 2, 5, 7]])


def test_a_broken_member_is_the_users_error(tmp_path: Path) -> None:
    path = tmp_path / "short.npz"
    np.savez(path, x_train=np.zeros((10, 784), np.uint8))
    raw = path.read_bytes()
    with np.load(path) as npz:
        assert npz["x_train"].shape == (10, 784)
    # A header that claims more rows than the member holds.
    lying = raw.replace(b"(10, 784)", b"(99, 784)")
    bad = tmp_path / "lying.npz"
    bad.write_bytes(lying)
    with pytest.raises(UserError, match="more than its member holds"):
        load_arrays(bad)
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(huge, "w") as archive, archive.open("x_train.npy", "w") as member:
        header = {"descr": "|u1", "fortran_order": False, "shape": (10**10, 784)}
        np.lib.format.write_array_header_1_0(member, header)
        member.write(bytes(784))
    with pytest.raises(UserError, match="more than its member holds"):
        load_arrays(huge)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x_train=np.zeros((10, 10), np.uint8))
    with pytest.raises(UserError, match="28×28"):
        load_arrays(wrong)


def test_sampling_reads_only_the_drawn_images_the_same_as_before(mnist_path: Path) -> None:
    everything = read_everything(mnist_path)
    for count, seed in ((16, 0), (9, 3), (5000, 1)):
        drawn, before = load_drawn(mnist_path, count, seed), draw(everything, count, seed)
        assert np.array_equal(drawn.images, before.images)
        assert np.array_equal(drawn.labels, before.labels)  # type: ignore[arg-type]


def test_denoiser_noise_is_one_float64_draw_made_float32_in_blocks(
    mnist_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorflow")
    from workers.engine.kinds import autoencoders as kinds

    x = load_arrays(mnist_path).x_test
    assert x is not None
    noise = np.random.default_rng(7).normal(0.0, 1.0, size=x.shape).astype(np.float32)
    before = x + 0.55 * noise
    monkeypatch.setattr(kinds, "_NOISE_CHUNK", 784 * 300)  # several blocks
    noisy = kinds.noisy_images(x, 0.55, False, 7)
    assert noisy.dtype == np.float32 and np.array_equal(noisy, before)
    assert np.array_equal(kinds.noisy_images(x, 0.55, True, 7), np.clip(before, 0.0, 1.0))


def peak_mib(job: str, kind: str, path: Path) -> float:
    """Peak resident memory of one job run in a fresh process, as the bench runs it."""
    command = [sys.executable, str(ROOT / "bench" / "worker_memory.py"), "--child", job, kind]
    done = subprocess.run(
        [*command, str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"])


def test_a_huge_upload_costs_a_job_at_most_twice_a_tiny_one(tmp_path: Path) -> None:
    """A denoiser job (1 epoch, ``max_train_images: 100``) on 200,000 declared images in each
    split (the bench: 660,000, every kind) against the same job on 100, in real processes."""
    pytest.importorskip("tensorflow")
    big = build_dataset(tmp_path / "big.npz", 200_000)
    small = build_dataset(tmp_path / "small.npz", 100)
    assert big.stat().st_size < 1_000_000  # a small upload
    on_big, on_small = peak_mib("train", "denoiser", big), peak_mib("train", "denoiser", small)
    assert on_big <= 2 * on_small, (on_big, on_small)


def test_reading_a_huge_upload_allocates_only_what_is_kept(tmp_path: Path) -> None:
    """numpy reports its buffers to tracemalloc: the loader's peak is the rows kept, plus a few
    copies of the block being streamed (4 MiB), never the declared 157 MB of a split."""
    big = build_dataset(tmp_path / "big.npz", 200_000)
    tracemalloc.start()
    try:
        drawn = load_drawn(big, 16, 0)
        _, sampling_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        arrays = load_arrays(big, max_train_images=100)
        _, training_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    streaming = 4 * data._CHUNK_BYTES
    assert drawn.images.shape == (16, 784) and sampling_peak < streaming
    assert arrays.x_train.shape == (100, 784) and arrays.x_test is not None
    assert len(arrays.x_test) == data.HELD_OUT_IMAGES
    kept = arrays.x_test.nbytes  # 10,000 held-out images as float32: 31 MB
    assert training_peak < kept + streaming
