"""Model builders: small functions returning named, uncompiled Keras models (the seed's, and the
options that improve on them)."""

from __future__ import annotations

import keras
from keras import layers

IMAGE_SHAPE = (28, 28, 1)


def build_classifier(hidden: int = 64) -> keras.Model:
    """The seed's functional-API classifier: 784 → 64 relu → 64 relu → 10 logits."""
    inputs = keras.Input(shape=(784,), name="digits")
    x = layers.Dense(hidden, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(hidden, activation="relu", name="dense_2")(x)
    # Outputs stay float32 under a mixed-precision policy (losses and metrics need the range).
    outputs = layers.Dense(10, name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="classifier")


def build_autoencoder(encoding_dim: int = 32) -> keras.Model:
    """The seed's dense autoencoder: 784 → encoding_dim (relu) → 784 (sigmoid)."""
    inputs = keras.Input(shape=(784,), name="image")
    encoded = layers.Dense(encoding_dim, activation="relu", name="encoded")(inputs)
    decoded = layers.Dense(784, activation="sigmoid", name="decoded", dtype="float32")(encoded)
    return keras.Model(inputs, decoded, name="autoencoder")


def build_conv_autoencoder(encoding_dim: int = 32, depth: int = 32) -> keras.Model:
    """A convolutional autoencoder with the seed's interface (784 in, 784 out, a code of
    ``encoding_dim``): two 3×3 stride-2 convolutions (28 → 14 → 7), a linear code, and two
    stride-2 transposed convolutions back up to a sigmoid image."""
    inputs = keras.Input(shape=(784,), name="image")
    x = layers.Reshape(IMAGE_SHAPE, name="to_image")(inputs)
    for i, filters in enumerate((depth, depth * 2), start=1):
        x = layers.Conv2D(
            filters, 3, strides=2, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
    x = layers.Flatten(name="flatten")(x)
    encoded = layers.Dense(encoding_dim, name="encoded")(x)
    x = layers.Dense(7 * 7 * depth * 2, activation="relu", name="project")(encoded)
    x = layers.Reshape((7, 7, depth * 2), name="reshape")(x)
    for i, filters in enumerate((depth * 2, depth), start=1):
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", activation="relu", name=f"deconv_{i}"
        )(x)
    x = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="pixels", dtype="float32")(x)
    decoded = layers.Reshape((784,), name="decoded", dtype="float32")(x)
    return keras.Model(inputs, decoded, name="conv_autoencoder")


def build_discriminator(depth: int = 64, dropout: float = 0.4) -> keras.Model:
    """The seed's discriminator: three 5×5 stride-2 convolutions, dropout, one sigmoid unit."""
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = inputs
    for i, filters in enumerate((depth, depth * 2, depth * 4), start=1):
        x = layers.Conv2D(
            filters, 5, strides=2, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="real", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="discriminator")


def build_generator(latent_dim: int = 32, depth: int = 64, dropout: float = 0.4) -> keras.Model:
    """The seed's generator: Dense 7·7·64 → two upsampling transposed convolutions → 28×28×1."""
    inputs = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense(7 * 7 * depth, name="project")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="bn_0")(x)
    x = layers.LeakyReLU(name="act_0")(x)
    x = layers.Reshape((7, 7, depth), name="reshape")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    for i, filters in enumerate((depth // 2, depth // 4), start=1):
        x = layers.UpSampling2D(name=f"upsample_{i}")(x)
        x = layers.Conv2DTranspose(filters, 5, padding="same", name=f"deconv_{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn_{i}")(x)
        x = layers.LeakyReLU(name=f"act_{i}")(x)
    outputs = layers.Conv2D(
        1, 5, padding="same", activation="sigmoid", name="image", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name="generator")
