import io

import numpy as np
from PIL import Image

from workers.images import grid_png, square_grid_png


def test_grid_has_rows_of_scaled_digits() -> None:
    rows = [np.zeros((10, 784)), np.ones((10, 784))]
    image = Image.open(io.BytesIO(grid_png(rows, scale=2)))
    assert image.format == "PNG" and image.size == (560, 112)
    pixels = np.asarray(image)
    assert pixels[:56].max() == 0 and pixels[56:].min() == 255


def test_square_grid_pads_unused_cells() -> None:
    image = Image.open(io.BytesIO(square_grid_png(np.ones((5, 28, 28)), scale=1)))
    assert image.size == (3 * 28, 2 * 28)
    assert np.asarray(image)[28:, 56:].max() == 0
