"""Model builders: small functions returning named, uncompiled Keras models (the seed's, and the
options that improve on them)."""

from __future__ import annotations

import keras
from keras import layers

IMAGE_SHAPE = (28, 28, 1)
DIGITS = 10
# Size of a conditional generator's label embedding, appended to the latent vector.
LABEL_EMBEDDING = 16


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


def conv_encoder_trunk(inputs: keras.KerasTensor, depth: int = 32) -> keras.KerasTensor:
    """784 pixels → two 3×3 stride-2 relu convolutions (28 → 14 → 7) → flat features: the front
    of the convolutional autoencoder's encoder and of the VAE's."""
    x = layers.Reshape(IMAGE_SHAPE, name="to_image")(inputs)
    for i, filters in enumerate((depth, depth * 2), start=1):
        x = layers.Conv2D(
            filters, 3, strides=2, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
    return layers.Flatten(name="flatten")(x)


def conv_decoder_trunk(code: keras.KerasTensor, depth: int = 32) -> keras.KerasTensor:
    """A code → Dense 7·7·2d relu → two 3×3 stride-2 relu transposed convolutions (7 → 14 → 28):
    the feature map the convolutional autoencoder's decoder and the VAE's draw pixels from."""
    x = layers.Dense(7 * 7 * depth * 2, activation="relu", name="project")(code)
    x = layers.Reshape((7, 7, depth * 2), name="reshape")(x)
    for i, filters in enumerate((depth * 2, depth), start=1):
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", activation="relu", name=f"deconv_{i}"
        )(x)
    return x


def build_conv_autoencoder(encoding_dim: int = 32, depth: int = 32) -> keras.Model:
    """A convolutional autoencoder with the seed's interface (784 in, 784 out, a code of
    ``encoding_dim``): the convolutional trunks around a linear code, and a sigmoid image."""
    inputs = keras.Input(shape=(784,), name="image")
    encoded = layers.Dense(encoding_dim, name="encoded")(conv_encoder_trunk(inputs, depth))
    x = conv_decoder_trunk(encoded, depth)
    x = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="pixels", dtype="float32")(x)
    decoded = layers.Reshape((784,), name="decoded", dtype="float32")(x)
    return keras.Model(inputs, decoded, name="conv_autoencoder")


def _real_score(
    features: keras.KerasTensor, label: keras.KerasTensor | None, logits: bool
) -> keras.KerasTensor:
    """One unit judging ``features``: a sigmoid probability, or a raw score when ``logits``; with
    a ``label``, plus the projection of the label's embedding on the features (Miyato & Koyama's
    projection discriminator)."""
    activation = None if logits else "sigmoid"
    if label is None:
        return layers.Dense(1, activation=activation, name="real", dtype="float32")(features)
    unconditional = layers.Dense(1, name="real", dtype="float32")(features)
    embedded = layers.Embedding(DIGITS, features.shape[-1], name="label_projection")(label)
    projected = layers.Dot(axes=1, name="projection", dtype="float32")([embedded, features])
    score = layers.Add(name="score", dtype="float32")([unconditional, projected])
    if logits:
        return score
    return layers.Activation("sigmoid", name="probability", dtype="float32")(score)


def _inputs(shape: tuple[int, ...], name: str, conditional: bool) -> list[keras.KerasTensor]:
    """The network's input, and a label input (an integer digit per example) when conditional."""
    inputs = [keras.Input(shape=shape, name=name)]
    if conditional:
        inputs.append(keras.Input(shape=(), dtype="int32", name="label"))
    return inputs


def _model(inputs: list[keras.KerasTensor], outputs: keras.KerasTensor, name: str) -> keras.Model:
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=name)


def build_discriminator(
    depth: int = 64, dropout: float = 0.4, conditional: bool = False, logits: bool = False
) -> keras.Model:
    """The seed's discriminator: three 5×5 stride-2 convolutions, dropout, one sigmoid unit
    (a raw score when ``logits``; takes ``(image, label)`` when ``conditional``)."""
    inputs = _inputs(IMAGE_SHAPE, "image", conditional)
    x = inputs[0]
    for i, filters in enumerate((depth, depth * 2, depth * 4), start=1):
        x = layers.Conv2D(
            filters, 5, strides=2, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _real_score(x, inputs[1] if conditional else None, logits)
    return _model(inputs, outputs, "discriminator")


def _latent_and_label(inputs: list[keras.KerasTensor]) -> keras.KerasTensor:
    """The latent vector, with the label's embedding appended when there is a label."""
    if len(inputs) == 1:
        return inputs[0]
    embedded = layers.Embedding(DIGITS, LABEL_EMBEDDING, name="label_embedding")(inputs[1])
    return layers.Concatenate(name="latent_and_label")([inputs[0], embedded])


def build_generator(
    latent_dim: int = 32, depth: int = 64, dropout: float = 0.4, conditional: bool = False
) -> keras.Model:
    """The seed's generator: Dense 7·7·64 → two upsampling transposed convolutions → 28×28×1
    (takes ``(latent, label)`` when ``conditional``)."""
    inputs = _inputs((latent_dim,), "latent", conditional)
    x = layers.Dense(7 * 7 * depth, name="project")(_latent_and_label(inputs))
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
    return _model(inputs, outputs, "generator")


def build_dcgan_discriminator(
    depth: int = 64, conditional: bool = False, logits: bool = False
) -> keras.Model:
    """The DCGAN paper's discriminator at MNIST size: 4×4 stride-2 convolutions 28 → 14 → 7,
    LeakyReLU 0.2, BatchNorm on all but the first, one unit (as ``build_discriminator``)."""
    inputs = _inputs(IMAGE_SHAPE, "image", conditional)
    x = layers.Conv2D(depth, 4, strides=2, padding="same", name="conv_1")(inputs[0])
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    x = layers.Conv2D(depth * 2, 4, strides=2, padding="same", use_bias=False, name="conv_2")(x)
    x = layers.BatchNormalization(name="bn_2")(x)
    x = layers.LeakyReLU(0.2, name="act_2")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _real_score(x, inputs[1] if conditional else None, logits)
    return _model(inputs, outputs, "discriminator")


def build_dcgan_generator(
    latent_dim: int = 32, depth: int = 64, conditional: bool = False
) -> keras.Model:
    """The DCGAN paper's generator at MNIST size: Dense 7·7·2d, then 4×4 stride-2 transposed
    convolutions 7 → 14 → 28, BatchNorm and LeakyReLU 0.2 after all but the sigmoid output."""
    inputs = _inputs((latent_dim,), "latent", conditional)
    x = layers.Dense(7 * 7 * depth * 2, use_bias=False, name="project")(_latent_and_label(inputs))
    x = layers.BatchNormalization(name="bn_0")(x)
    x = layers.LeakyReLU(0.2, name="act_0")(x)
    x = layers.Reshape((7, 7, depth * 2), name="reshape")(x)
    x = layers.Conv2DTranspose(
        depth, 4, strides=2, padding="same", use_bias=False, name="deconv_1"
    )(x)
    x = layers.BatchNormalization(name="bn_1")(x)
    x = layers.LeakyReLU(0.2, name="act_1")(x)
    outputs = layers.Conv2DTranspose(
        1, 4, strides=2, padding="same", activation="sigmoid", name="image", dtype="float32"
    )(x)
    return _model(inputs, outputs, "generator")
