"""The VAE kind: a convolutional variational autoencoder (``workers.engine.vae``)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.engine.data import Arrays, Drawn, held_out
from workers.engine.distribution import jit_compile_setting
from workers.engine.interpolation import code_interpolation
from workers.engine.kinds.base import (
    Built,
    Kind,
    Plan,
    batched,
    check_quality_images,
    chosen_images,
    shuffled,
)
from workers.engine.reporter import UserError
from workers.engine.vae import (
    VAE,
    build_vae_decoder,
    build_vae_encoder,
    build_vae_export,
    elbo_scores,
    exported_prior,
    fitting_codes,
    mean_codes,
    prior_samples,
)
from workers.images import square_grid_png


class Vae(Kind):
    """A convolutional variational autoencoder: trained on reconstruction + beta × KL,
    validated on the test split; its samples come from the prior (N(0, I), or with
    ``prior=mixture`` a Gaussian mixture fitted to the training codes) and are scored as the
    GAN's."""

    name = "vae"

    def build(self, params: dict[str, Any]) -> Built:
        encoder = build_vae_encoder(params["latent_dim"])
        decoder = build_vae_decoder(params["latent_dim"])
        vae = VAE(encoder, decoder, params["beta"], name="vae")
        optimizer = keras.optimizers.Adam(params["learning_rate"])
        if keras.config.dtype_policy().name == "mixed_float16":
            # float16 gradients underflow without loss scaling (bfloat16 has float32's range).
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        vae.compile(optimizer=optimizer, jit_compile=jit_compile_setting())
        # Under MirroredStrategy an optimizer left to build lazily inside train_step fails.
        optimizer.build(vae.trainable_weights)
        components = params["prior_components"] if params["prior"] == "mixture" else 0
        export = build_vae_export(encoder, decoder, components)
        prior = exported_prior(export)
        if prior is None:
            return Built(vae, [optimizer], export)

        def fit_prior(arrays: Arrays) -> None:
            """The mixture fitted to the training digits' mean codes, as trained now."""
            prior.fit(fitting_codes(encoder, arrays.x_train, params["seed"]), params["seed"])

        return Built(vae, [optimizer], export, fit_prior)

    def plan(self, arrays: Arrays, params: dict[str, Any], global_batch: int) -> Plan:
        check_quality_images(arrays, params)
        if params["prior"] == "mixture" and len(arrays.x_train) < params["prior_components"]:
            raise UserError(
                f"a mixture of {params['prior_components']} Gaussians needs at least as many "
                f"training images; the dataset has {len(arrays.x_train)}"
            )
        x = arrays.x_train
        train = shuffled(
            tf.data.Dataset.from_tensor_slices(x), len(x), params["shuffle"], params["seed"]
        )
        validation = None
        if arrays.x_test is not None:
            _, test, _ = held_out(arrays)
            validation = batched(tf.data.Dataset.from_tensor_slices(test), global_batch)
        return Plan(batched(train, global_batch), validation, params["epochs"])

    def preview(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> bytes:
        return square_grid_png(
            prior_samples(built.model.decoder, 16, 1234, exported_prior(built.export))
        )

    def evaluate(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> dict[str, Any]:
        """Reconstruction MSE and the ELBO's terms on the held-out split; FID, classifier score
        and digit shares of ``quality_samples`` images drawn from the prior, and which prior
        that was."""
        from workers.engine.quality import gan_quality

        split, x, _ = held_out(arrays)
        vae = built.model
        results = {
            "split": split,
            "evaluated_images": len(x),
            **elbo_scores(vae.encoder, vae.decoder, x, split, params["seed"]),
        }
        wanted = params["quality_samples"]
        if wanted:
            prior = exported_prior(built.export)
            fake = np.concatenate(
                [
                    prior_samples(vae.decoder, min(1000, wanted - i), i, prior)
                    for i in range(0, wanted, 1000)
                ]
            )
            results.update(gan_quality(fake, x))
            results["prior"] = "standard" if prior is None else "mixture"
        return results

    def held_out_count(self, params: dict[str, Any]) -> int:
        """The interpolation's two ends (the grid comes from the prior)."""
        return 2

    def sample(
        self,
        model: keras.Model,
        drawn: Drawn | None,
        params: dict[str, Any],
        trained_with: dict[str, Any],
    ) -> dict[str, bytes]:
        """``count`` digits drawn from the prior with ``seed`` (the fitted mixture the model
        carries, or N(0, I)), and a walk between the codes of two held-out digits that ``seed``
        chose."""
        images, _ = chosen_images(drawn)
        encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
        grid = prior_samples(decoder, params["count"], params["seed"], exported_prior(model))
        files = {"samples/grid.png": square_grid_png(grid)}
        if len(images) >= 2:

            def decode(codes: np.ndarray) -> np.ndarray:
                return np.asarray(decoder(codes, training=False))

            files["samples/interpolation.png"] = code_interpolation(
                lambda ends: mean_codes(encoder, ends), decode, images[:2]
            )
        return files
