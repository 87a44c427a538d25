"""Model builders: small functions returning named, uncompiled Keras models (the seed's)."""

from __future__ import annotations

import keras
from keras import layers


def build_autoencoder(encoding_dim: int = 32) -> keras.Model:
    """The seed's dense autoencoder: 784 → encoding_dim (relu) → 784 (sigmoid)."""
    inputs = keras.Input(shape=(784,), name="image")
    encoded = layers.Dense(encoding_dim, activation="relu", name="encoded")(inputs)
    decoded = layers.Dense(784, activation="sigmoid", name="decoded")(encoded)
    return keras.Model(inputs, decoded, name="autoencoder")
