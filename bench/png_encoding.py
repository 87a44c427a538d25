#!/usr/bin/env python
"""What PNG encoding settings cost for the sample grids a sampling job writes.

Run from the repository root::

    .venv/bin/python bench/png_encoding.py

Draws grids of real digits (tests/fixtures/mnist_5k.npz) as ``workers.images`` lays them out
(28x28 cells, each pixel 2x2 px) and encodes the same pixels with each Pillow setting below,
interleaved round by round, so that other load on the machine hits them alike. Prints the median
encoding time, the file size, and both as ratios to Pillow's plain default.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "tests" / "fixtures" / "mnist_5k.npz"
SETTINGS: dict[str, dict[str, object]] = {
    "default (zlib level 6)": {},
    "compress_level=1": {"compress_level": 1},
    "optimize=True": {"optimize": True},
}


def grid(images: np.ndarray, scale: int = 2) -> np.ndarray:
    """The 8-bit canvas ``workers.images.square_grid_png`` encodes."""
    count = len(images)
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    canvas = np.zeros((rows * 28, cols * 28), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = image
    pixels = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


def encode(pixels: np.ndarray, options: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", **options)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="16,64,256", help="images per grid")
    parser.add_argument("--rounds", type=int, default=20, help="encodings per setting (max 200)")
    args = parser.parse_args(argv)
    rounds = max(3, min(args.rounds, 200))
    with np.load(DATASET, allow_pickle=False) as data:
        digits = data["x_test"].astype(np.float32) / 255.0

    print(f"Median of {rounds} encodings each, interleaved; real MNIST digits, 2x2 px per pixel.\n")
    print("| images | setting | ms (median) | bytes | time vs default | size vs default |")
    print("|---:|---|---:|---:|---:|---:|")
    for count in (int(item) for item in args.counts.split(",")):
        pixels = grid(digits[:count])
        times: dict[str, list[float]] = {name: [] for name in SETTINGS}
        sizes = {name: len(encode(pixels, options)) for name, options in SETTINGS.items()}
        for _ in range(rounds):
            for name, options in SETTINGS.items():
                started = time.perf_counter()
                encode(pixels, options)
                times[name].append(time.perf_counter() - started)
        base_ms = statistics.median(times["default (zlib level 6)"]) * 1000
        base_size = sizes["default (zlib level 6)"]
        for name in SETTINGS:
            ms = statistics.median(times[name]) * 1000
            print(
                f"| {count} | {name} | {ms:.1f} | {sizes[name]:,} | {ms / base_ms:.2f} "
                f"| {sizes[name] / base_size:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
