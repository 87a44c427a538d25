"""Walks in a code space: two held-out images encoded, the straight line between their codes
decoded (the autoencoders' and the VAE's ``samples/interpolation.png``)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from workers.images import grid_png

Codec = Callable[[np.ndarray], np.ndarray]
# Images decoded along the line, between the two originals.
INTERPOLATION_STEPS = 10


def code_interpolation(
    encode: Codec, decode: Codec, ends: np.ndarray, steps: int = INTERPOLATION_STEPS
) -> bytes:
    """One row: the first image, ``steps`` decodings of codes evenly spaced from its code to the
    second's (both ends included), and the second image."""
    codes = np.asarray(encode(ends[:2]), np.float32)
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    line = (1.0 - weights) * codes[0] + weights * codes[1]
    decoded = np.asarray(decode(line), np.float32).reshape(steps, -1)
    originals = np.asarray(ends[:2], np.float32).reshape(2, -1)
    return grid_png([np.concatenate([originals[:1], decoded, originals[1:]])])


def split_at_code(model: keras.Model, code_layer: str = "encoded") -> tuple[Codec, Codec]:
    """An autoencoder's encoder (its input up to ``code_layer``) and decoder (the layers after
    that one, applied in order: the autoencoders here are chains)."""
    encoder = keras.Model(model.input, model.get_layer(code_layer).output)
    names = [layer.name for layer in model.layers]
    after = model.layers[names.index(code_layer) + 1 :]

    def encode(images: np.ndarray) -> np.ndarray:
        return np.asarray(encoder(images, training=False))

    def decode(codes: np.ndarray) -> np.ndarray:
        x = codes
        for layer in after:
            x = layer(x, training=False)
        return np.asarray(x)

    return encode, decode
