"""The GAN kind: the seed's DCGAN-style GAN and its options (``workers.engine.gan_parts``)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from shared.kinds import DIGITS, digit_rows
from workers.engine.data import Arrays, Drawn, held_out
from workers.engine.gan_parts import (
    build_gan,
    digit_grid,
    even_labels,
    generate,
    generate_many,
    interpolation_strip,
    is_conditional,
    latent_dim_of,
)
from workers.engine.kinds.base import (
    GRID_COLUMNS,
    Built,
    Kind,
    Plan,
    batched,
    check_quality_images,
)
from workers.engine.reporter import UserError
from workers.images import square_grid_png


class Gan(Kind):
    """The seed's DCGAN-style GAN (or, as options, DCGAN networks, the hinge loss, labels in both
    networks, a moving average of the generator), trained for a number of steps in blocks."""

    name = "gan"

    def build(self, params: dict[str, Any]) -> Built:
        gan, optimizers, export, sync_export = build_gan(params)
        if sync_export is None:
            return Built(gan, optimizers, export)
        return Built(gan, optimizers, export, sync_export)

    def plan(self, arrays: Arrays, params: dict[str, Any], global_batch: int) -> Plan:
        x = arrays.x_train.reshape(-1, 28, 28, 1)
        if len(x) < global_batch:
            raise UserError(f"the GAN needs at least {global_batch} training images (one batch)")
        # Found before training, not after it: scoring needs two held-out images at least.
        check_quality_images(arrays, params)
        slices: Any = x
        if params.get("conditional", False):
            if arrays.y_train is None:
                raise UserError("conditional needs labels: the dataset has no y_train")
            slices = (x, arrays.y_train.astype(np.int32))
        real = tf.data.Dataset.from_tensor_slices(slices).shuffle(len(x), seed=params["seed"])
        # BatchNorm wants full batches; every replica gets an equal share.
        spe = params["steps_per_epoch"]
        train = batched(real.repeat(), global_batch, drop=True)
        return Plan(train, None, params["steps"] // spe, spe, spe)

    def generate(
        self, generator: keras.Model, count: int, latent_dim: int, seed: int
    ) -> np.ndarray:
        """``count`` images from latent vectors drawn with ``seed``, as rows of 784 pixels (a
        conditional generator's of digits 0-9 in turn)."""
        return generate(generator, count, latent_dim, seed)

    def preview(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> bytes:
        latent_dim = params["latent_dim"]
        if is_conditional(built.export):
            # A row per digit.
            return digit_grid(built.export, list(range(DIGITS)), GRID_COLUMNS, latent_dim, 1234)
        return square_grid_png(self.generate(built.export, 16, latent_dim, 1234))

    def evaluate(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> dict[str, Any]:
        from workers.engine.quality import gan_quality

        count = params["quality_samples"]
        if not count:
            return {}
        split, x, _ = held_out(arrays)
        # Labels spread evenly over the digits, for the FID's samples and the per-digit shares.
        labels = even_labels(count) if is_conditional(built.export) else None
        fake = generate_many(built.export, count, params["latent_dim"], labels)
        return {
            "split": split,
            "evaluated_images": len(x),
            # Which generator the figures are of: the moving average's, or the trained one.
            "generator": "ema" if params.get("ema") else "raw",
            **gan_quality(fake, x, labels),
        }

    def sample(
        self,
        model: keras.Model,
        drawn: Drawn | None,
        params: dict[str, Any],
        trained_with: dict[str, Any],
    ) -> dict[str, bytes]:
        """``count`` samples from ``seed`` (a conditional model's: ``count`` per digit asked
        for, one row each) and a walk between two latent vectors (of the first such digit)."""
        latent_dim = latent_dim_of(model)
        rows = digit_rows(params.get("digits"))
        if rows is not None and not is_conditional(model):
            raise UserError("digits needs a conditional GAN (trained with conditional)")
        if rows is None:
            images = self.generate(model, params["count"], latent_dim, params["seed"])
            grid = square_grid_png(images)
        else:
            grid = digit_grid(model, rows, params["count"], latent_dim, params["seed"])
        label = rows[0] if rows else params["seed"] % DIGITS
        return {
            "samples/grid.png": grid,
            "samples/interpolation.png": interpolation_strip(
                model, latent_dim, params["seed"], label=label
            ),
        }
