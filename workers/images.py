"""Sample grids as PNG files: pure NumPy and Pillow, no TensorFlow."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

SIDE = 28


def grid_png(rows: Sequence[np.ndarray], scale: int = 2) -> bytes:
    """A PNG of equal-length rows of 28×28 images (floats in [0, 1]), each pixel ``scale``² px."""
    if not rows:
        raise ValueError("no rows to draw")
    cols = len(rows[0])
    if any(len(row) != cols for row in rows) or cols == 0:
        raise ValueError("rows must be non-empty and of equal length")
    canvas = np.zeros((len(rows) * SIDE, cols * SIDE), dtype=np.float32)
    for r, row in enumerate(rows):
        images = np.asarray(row, dtype=np.float32).reshape(cols, SIDE, SIDE)
        for c, image in enumerate(images):
            canvas[r * SIDE : (r + 1) * SIDE, c * SIDE : (c + 1) * SIDE] = image
    pixels = (np.clip(canvas, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    # Pillow's default zlib level: optimize=True made files barely smaller for many times the
    # encoding time, most of a small sampling job's own work (docs/benchmarks.md).
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def square_grid_png(images: np.ndarray, scale: int = 2) -> bytes:
    """A PNG of ``images`` laid out in a near-square grid (unused cells left black)."""
    count = len(images)
    cols = int(np.ceil(np.sqrt(count)))
    rows_needed = int(np.ceil(count / cols))
    padded = np.zeros((rows_needed * cols, SIDE * SIDE), dtype=np.float32)
    padded[:count] = np.asarray(images, dtype=np.float32).reshape(count, -1)
    return grid_png([padded[r * cols : (r + 1) * cols] for r in range(rows_needed)], scale)


def labelled_grid_png(
    images: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray | None,
    columns: int = 10,
    scale: int = 2,
) -> bytes:
    """Digits with their predicted label under each (red where it differs from ``truth``)."""
    from PIL import ImageDraw

    count = len(images)
    rows = int(np.ceil(count / columns))
    cell_w, cell_h = SIDE * scale, SIDE * scale + 14
    canvas = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    pixels = (
        np.clip(np.asarray(images, np.float32).reshape(count, SIDE, SIDE), 0, 1) * 255
    ).astype(np.uint8)
    for i in range(count):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        digit = Image.fromarray(pixels[i], mode="L").resize(
            (cell_w, cell_w), Image.Resampling.NEAREST
        )
        canvas.paste(digit.convert("RGB"), (x, y))
        wrong = truth is not None and int(truth[i]) != int(predicted[i])
        draw.text(
            (x + cell_w // 2 - 3, y + cell_w + 1),
            str(int(predicted[i])),
            fill="red" if wrong else "black",
        )
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")  # no optimize=True: see grid_png
    return buffer.getvalue()
