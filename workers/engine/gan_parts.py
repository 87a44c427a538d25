"""The GAN kind's parts, by its options: the networks and optimizers (``architecture``, ``loss``,
``conditional``, ``ema``), drawing images with or without labels, and the grids of sampling.

Jobs from before an option have no value for it in their params: they get its default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from shared.kinds import DIGITS
from workers.engine.data import Arrays
from workers.engine.distribution import jit_compile_setting
from workers.engine.gan import GAN
from workers.engine.models import (
    build_dcgan_discriminator,
    build_dcgan_generator,
    build_discriminator,
    build_generator,
)
from workers.images import grid_png

# The DCGAN paper's Adam momentum (Keras's default, the seed's, is 0.9).
DCGAN_BETA_1 = 0.5
# The moving average's decay at step t is min(ema, (1 + t) / (EMA_WARMUP + t)).
EMA_WARMUP = 10.0
# Latent vectors run through the averaged generator to measure its BatchNorm statistics.
BN_SAMPLES = 1024


class WarmupEmaAdam(keras.optimizers.Adam):
    """Adam whose moving average of the weights warms up: decay min(ema, (1 + t) / (10 + t)) at
    step t (as TensorFlow's ExponentialMovingAverage with num_updates), not ``ema`` from the
    first step, so the average soon forgets the untrained generators of the first steps.

    The average stays the optimizer's ``average`` slots (checkpointed with it)."""

    def _update_model_variables_moving_average(self, trainable_variables: list[Any]) -> None:
        if not self.use_ema:
            return
        step = ops.cast(self.iterations, "float32")
        warm = ops.minimum(
            ops.cast(self.ema_momentum, "float32"), (1.0 + step) / (EMA_WARMUP + step)
        )
        # The first step copies the weights (the slots start at zero), as Keras's own.
        decay = ops.multiply(ops.cast(ops.not_equal(self.iterations, 0), "float32"), warm)
        for variable, average in zip(
            trainable_variables, self._model_variables_moving_average, strict=True
        ):
            if average is not None:
                momentum = ops.cast(decay, variable.dtype)
                average.assign(momentum * average + (1.0 - momentum) * variable)


def recompute_batchnorm(generator: keras.Model, latent_dim: int, samples: int = BN_SAMPLES) -> None:
    """Set ``generator``'s BatchNorm statistics to those of its own outputs on ``samples``
    latent vectors (digits 0-9 in turn if conditional), as in training mode: weights averaged
    from other weights need statistics of their own."""
    norms = [
        layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not norms:
        return
    latent = np.random.default_rng(0).uniform(-1.0, 1.0, (samples, latent_dim)).astype(np.float32)
    inputs: Any = [latent, even_labels(samples)] if is_conditional(generator) else latent
    momenta = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0  # the moving statistics become this one batch's
        generator(inputs, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum


# Images drawn at a time for quality evaluation.
GENERATE_BLOCK = 1000


def build_gan(
    params: dict[str, Any],
) -> tuple[GAN, list[keras.optimizers.Optimizer], keras.Model, Callable[[Arrays], None] | None]:
    """The compiled GAN, its optimizers (discriminator's, generator's), the generator to export
    and, with ``ema``, what brings that export up to the average (else None: the generator)."""
    dcgan = params.get("architecture", "seed") == "dcgan"
    conditional = bool(params.get("conditional", False))
    loss = params.get("loss", "bce")
    latent_dim = params["latent_dim"]
    # The generator first, then the discriminator: the seed's order of drawing initial weights.
    if dcgan:
        generator = build_dcgan_generator(latent_dim, conditional=conditional)
        discriminator = build_dcgan_discriminator(conditional=conditional, logits=loss == "hinge")
    else:
        generator = build_generator(latent_dim, conditional=conditional)
        discriminator = build_discriminator(conditional=conditional, logits=loss == "hinge")
    gan = GAN(
        discriminator,
        generator,
        latent_dim,
        loss,
        conditional,
        split_halves=dcgan,
        fakes_in_training_mode=dcgan,
    )
    ema = params.get("ema", 0.0)
    adam: dict[str, Any] = {"beta_1": DCGAN_BETA_1} if dcgan else {}
    d_opt = keras.optimizers.Adam(params["learning_rate"], **adam)
    # The moving average lives in the generator's optimizer (checkpointed with its slots).
    g_opt = WarmupEmaAdam(params["learning_rate"], use_ema=ema > 0, ema_momentum=ema, **adam)
    if keras.config.dtype_policy().name == "mixed_float16":
        # float16 gradients underflow without loss scaling (bfloat16 has float32's range).
        d_opt = keras.optimizers.LossScaleOptimizer(d_opt)
        g_opt = keras.optimizers.LossScaleOptimizer(g_opt)
    gan.compile(d_opt, g_opt, params["label_smoothing"], jit_compile=jit_compile_setting())
    if not ema:
        return gan, [d_opt, g_opt], generator, None
    averaged = keras.models.clone_model(generator)

    def sync_export(arrays: Arrays | None = None) -> None:
        """The average into ``averaged``, with BatchNorm statistics measured under it (no data
        needed: they are measured on the generator's own images)."""
        raw = [variable.numpy() for variable in generator.trainable_variables]
        g_opt.finalize_variable_values(generator.trainable_variables)
        averaged.set_weights(generator.get_weights())
        for variable, value in zip(generator.trainable_variables, raw, strict=True):
            variable.assign(value)
        recompute_batchnorm(averaged, latent_dim)

    return gan, [d_opt, g_opt], averaged, sync_export


def is_conditional(generator: keras.Model) -> bool:
    """Whether ``generator`` takes ``(latent, label)``."""
    return len(generator.inputs) == 2


def latent_dim_of(generator: keras.Model) -> int:
    """The size of ``generator``'s latent vector."""
    return int(generator.inputs[0].shape[-1])


def even_labels(count: int, start: int = 0) -> np.ndarray:
    """Labels 0-9 in turn (from the ``start``-th): every digit equally often."""
    return ((start + np.arange(count)) % DIGITS).astype(np.int32)


def generate(
    generator: keras.Model,
    count: int,
    latent_dim: int,
    seed: int,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """``count`` images from latent vectors drawn with ``seed``, as rows of 784 pixels; a
    conditional generator draws ``labels`` (by default 0-9 in turn)."""
    latent = np.random.default_rng(seed).uniform(-1.0, 1.0, (count, latent_dim)).astype(np.float32)
    inputs: Any = latent
    if is_conditional(generator):
        chosen = even_labels(count) if labels is None else np.asarray(labels, np.int32)
        inputs = [latent, chosen]
    return np.asarray(generator(inputs, training=False)).reshape(count, 784)


def generate_many(
    generator: keras.Model, count: int, latent_dim: int, labels: np.ndarray | None
) -> np.ndarray:
    """``count`` images for quality evaluation, a block at a time (block k drawn with seed k's
    start, as before labels existed)."""
    blocks = []
    for start in range(0, count, GENERATE_BLOCK):
        size = min(GENERATE_BLOCK, count - start)
        part = None if labels is None else labels[start : start + size]
        blocks.append(generate(generator, size, latent_dim, start, part))
    return np.concatenate(blocks)


def digit_grid(
    generator: keras.Model, rows: list[int], per_row: int, latent_dim: int, seed: int
) -> bytes:
    """One row of ``per_row`` samples per digit in ``rows`` (latent vectors drawn with ``seed``)."""
    labels = np.repeat(np.asarray(rows, np.int32), per_row)
    images = generate(generator, len(labels), latent_dim, seed, labels)
    return grid_png([images[r * per_row : (r + 1) * per_row] for r in range(len(rows))])


def interpolation_strip(
    generator: keras.Model, latent_dim: int, seed: int, steps: int = 10, label: int = 0
) -> bytes:
    """Images along a straight line between two latent vectors drawn with ``seed`` (for a
    conditional generator, all of digit ``label``)."""
    ends = np.random.default_rng(seed).uniform(-1.0, 1.0, (2, latent_dim)).astype(np.float32)
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    latent = (1.0 - weights) * ends[0] + weights * ends[1]
    inputs: Any = latent
    if is_conditional(generator):
        inputs = [latent, np.full(steps, label, np.int32)]
    images = np.asarray(generator(inputs, training=False)).reshape(steps, 784)
    return grid_png([images])
