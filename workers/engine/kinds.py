"""The model kinds' Keras side: how each is built, fed, previewed, scored and sampled.

Keyed by the names of ``shared.kinds``, which holds everything else about a kind (parameters,
defaults, needs, the final grid's name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from shared.kinds import DIGITS, KIND_SPECS, QUALITY_MIN_SAMPLES, KindSpec, digit_rows
from workers.engine.data import Arrays, Drawn, held_out
from workers.engine.distribution import jit_compile_setting
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
from workers.engine.interpolation import code_interpolation, split_at_code
from workers.engine.models import (
    build_autoencoder,
    build_classifier,
    build_conv_autoencoder,
)
from workers.engine.reporter import UserError
from workers.engine.vae import (
    VAE,
    build_vae_decoder,
    build_vae_encoder,
    build_vae_export,
    elbo_scores,
    mean_codes,
    prior_samples,
)
from workers.images import grid_png, labelled_grid_png, square_grid_png

GRID_COLUMNS = 10
# Images per block of denoiser noise (float64 while drawn): 4,096 × 784 × 8 B ≈ 25 MB.
_NOISE_CHUNK = 4096 * 784
# Images scored at a time at the end of training (outputs and SSIM's float64 stay small).
_EVAL_BLOCK = 1000
AUTOTUNE = tf.data.AUTOTUNE


@dataclass
class Plan:
    """What ``fit`` runs: input pipelines, epochs, and steps per epoch (None: one pass)."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    epochs: int
    steps_per_epoch: int | None = None
    # Metrics are recorded per epoch, or for step-counted kinds per global step.
    step_scale: int = 1


@dataclass
class Built:
    """A built, compiled model and the optimizers whose state a checkpoint must hold."""

    model: keras.Model
    optimizers: list[keras.optimizers.Optimizer]
    # The network that is saved as model.keras and sampled from.
    export: keras.Model
    # Brings ``export`` up to date with training (a moving average's copy), before it is used.
    sync_export: Callable[[], None] = lambda: None


def _batched(dataset: tf.data.Dataset, global_batch: int, drop: bool = False) -> tf.data.Dataset:
    return dataset.batch(global_batch, drop_remainder=drop).prefetch(AUTOTUNE)


def _shuffled(dataset: tf.data.Dataset, count: int, on: bool, seed: int) -> tf.data.Dataset:
    return dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True) if on else dataset


def noisy_images(x: np.ndarray, factor: float, clip: bool, seed: int) -> np.ndarray:
    """The seed's corruption: Gaussian noise times ``factor``, clipped to [0, 1] if asked."""
    rng = np.random.default_rng(seed)
    noisy = np.empty(x.shape, np.float32)
    rows = max(1, _NOISE_CHUNK // max(1, int(np.prod(x.shape[1:]))))
    for start in range(0, len(x), rows):
        part = noisy[start : start + rows]
        # Drawn in float64 a block at a time: the values of one whole draw, cast to float32,
        # without ever holding float64 noise for every image.
        part[...] = rng.normal(0.0, 1.0, size=part.shape)
        part *= factor
        part += x[start : start + rows]
    return np.clip(noisy, 0.0, 1.0, out=noisy) if clip else noisy


class Kind:
    """One model kind. Subclasses fill in the parts."""

    # The name of its definition in shared.kinds.
    name = ""

    @property
    def spec(self) -> KindSpec:
        """The kind's definition, as registered now."""
        return KIND_SPECS[self.name]

    @property
    def final_grid(self) -> str:
        """The grid saved when training ends."""
        return self.spec.final_grid

    def check_labels(self, arrays: Arrays) -> None:
        """A UserError if the kind needs labels and the dataset has none."""
        if self.spec.needs_labels and arrays.y_train is None:
            raise UserError(f"the {self.name} needs labels: the dataset has no y_train")

    def build(self, params: dict[str, Any]) -> Built:
        """Build and compile the model (called inside the strategy scope)."""
        raise NotImplementedError

    def plan(self, arrays: Arrays, params: dict[str, Any], global_batch: int) -> Plan:
        """The input pipelines and schedule."""
        raise NotImplementedError

    def preview(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> bytes:
        """A PNG showing how the model does now."""
        raise NotImplementedError

    def evaluate(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> dict[str, Any]:
        """Quality metrics on the held-out split."""
        raise NotImplementedError

    def held_out_count(self, params: dict[str, Any]) -> int:
        """How many held-out images a sampling job with ``params`` draws (its grid's count)."""
        return int(params["count"])

    def sample(
        self,
        model: keras.Model,
        drawn: Drawn | None,
        params: dict[str, Any],
        trained_with: dict[str, Any],
    ) -> dict[str, bytes]:
        """A sampling job's PNG files by artifact name, from the exported ``model``.

        ``drawn`` are the held-out images chosen by ``params`` when
        ``spec.sampling_needs_dataset``; ``trained_with`` are the training job's params (the
        denoiser's noise, say)."""
        raise NotImplementedError


class Classifier(Kind):
    """The seed's functional-API classifier: RMSprop, cross-entropy from logits, accuracy."""

    name = "classifier"

    def build(self, params: dict[str, Any]) -> Built:
        model = build_classifier(params["hidden_units"])
        model.compile(
            optimizer=keras.optimizers.RMSprop(params["learning_rate"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=jit_compile_setting(),
        )
        model.optimizer.build(model.trainable_variables)
        return Built(model, [model.optimizer], model)

    def plan(self, arrays: Arrays, params: dict[str, Any], global_batch: int) -> Plan:
        self.check_labels(arrays)
        assert arrays.y_train is not None
        # As Keras's validation_split: the last share of the training split, before shuffling.
        cut = len(arrays.x_train) - int(len(arrays.x_train) * params["validation_split"])
        if cut < 1:
            raise UserError("validation_split leaves no training images")
        x, y = arrays.x_train[:cut], arrays.y_train[:cut]
        train = _shuffled(
            tf.data.Dataset.from_tensor_slices((x, y)), cut, params["shuffle"], params["seed"]
        )
        validation = None
        if cut < len(arrays.x_train):
            slices = (arrays.x_train[cut:], arrays.y_train[cut:])
            validation = _batched(tf.data.Dataset.from_tensor_slices(slices), global_batch)
        return Plan(_batched(train, global_batch), validation, params["epochs"])

    def preview(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> bytes:
        _, x, y = held_out(arrays)
        images = x[: GRID_COLUMNS * 2]
        predicted = np.argmax(np.asarray(built.model(images, training=False)), axis=1)
        truth = y[: len(images)] if y is not None else None
        return labelled_grid_png(images, predicted, truth, columns=GRID_COLUMNS)

    def evaluate(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> dict[str, Any]:
        split, x, y = held_out(arrays)
        if y is None:
            return {"split": split}
        loss, accuracy = built.model.evaluate(x, y, batch_size=1024, verbose=0)
        return {
            "split": split,
            "evaluated_images": len(x),
            f"{split}_loss": float(loss),
            f"{split}_accuracy": float(accuracy),
        }

    def sample(
        self,
        model: keras.Model,
        drawn: Drawn | None,
        params: dict[str, Any],
        trained_with: dict[str, Any],
    ) -> dict[str, bytes]:
        """Held-out digits labelled with the model's predictions, wrong ones in red."""
        images, labels = chosen_images(drawn)
        predicted = np.argmax(np.asarray(model(images, training=False)), axis=1)
        return {"samples/grid.png": labelled_grid_png(images, predicted, labels)}


class Autoencoder(Kind):
    """The seed's dense autoencoder (or, as an option, a convolutional one): Adam, MSE,
    validated on the test split."""

    name = "autoencoder"

    def inputs(self, x: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        """What the network sees for clean images ``x`` (the autoencoder: ``x`` itself)."""
        return x

    def build(self, params: dict[str, Any]) -> Built:
        conv = params.get("architecture", "dense") == "conv"  # jobs from before the option: dense
        builder = build_conv_autoencoder if conv else build_autoencoder
        model = builder(params["encoding_dim"])
        model.compile(
            optimizer=keras.optimizers.Adam(params["learning_rate"]),
            loss="mse",
            jit_compile=jit_compile_setting(),
        )
        model.optimizer.build(model.trainable_variables)
        return Built(model, [model.optimizer], model)

    def plan(self, arrays: Arrays, params: dict[str, Any], global_batch: int) -> Plan:
        x = arrays.x_train
        pairs = tf.data.Dataset.from_tensor_slices((self.inputs(x, params, params["seed"]), x))
        train = _shuffled(pairs, len(x), params["shuffle"], params["seed"])
        validation = None
        if arrays.x_test is not None:
            _, test, _ = held_out(arrays)
            slices = (self.inputs(test, params, params["seed"] + 1), test)
            validation = _batched(tf.data.Dataset.from_tensor_slices(slices), global_batch)
        return Plan(_batched(train, global_batch), validation, params["epochs"])

    def preview_rows(
        self, model: keras.Model, clean: np.ndarray, params: dict[str, Any]
    ) -> list[np.ndarray]:
        """Originals above reconstructions, as the seed draws them."""
        return [clean, np.asarray(model(clean, training=False))]

    def preview(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> bytes:
        _, x, _ = held_out(arrays)
        return grid_png(self.preview_rows(built.model, x[:GRID_COLUMNS], params))

    def evaluate(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> dict[str, Any]:
        split, x, _ = held_out(arrays)
        seen = self.inputs(x, params, params["seed"] + 1)
        return {"split": split, "evaluated_images": len(x), **self.scores(built, seen, x, split)}

    def scores(self, built: Built, seen: np.ndarray, x: np.ndarray, split: str) -> dict[str, Any]:
        """MSE, PSNR and SSIM of restoring ``x`` from ``seen``, a block of images at a time (the
        same figures as at once, without a float64 copy of the whole split)."""
        from workers.engine.quality import psnr_db, ssim_per_image

        squared, ssims = 0.0, []
        for start in range(0, len(x), _EVAL_BLOCK):
            clean = x[start : start + _EVAL_BLOCK]
            restored = np.asarray(built.model(seen[start : start + _EVAL_BLOCK], training=False))
            squared += float(np.sum(np.square(restored - clean, dtype=np.float64)))
            ssims.append(ssim_per_image(restored, clean))
        mse = squared / x.size
        return {
            f"{split}_mse": mse,
            f"{split}_psnr_db": psnr_db(mse),
            f"{split}_ssim": float(np.concatenate(ssims).mean()),
        }

    def sample(
        self,
        model: keras.Model,
        drawn: Drawn | None,
        params: dict[str, Any],
        trained_with: dict[str, Any],
    ) -> dict[str, bytes]:
        """The preview's rows for held-out digits, with the training job's params, and a walk
        between the codes of the first two."""
        images, _ = chosen_images(drawn)
        shown = images[: params["count"]]
        rows = self.preview_rows(model, shown, {**trained_with, "seed": params["seed"]})
        files = {"samples/grid.png": grid_png(rows)}
        if len(images) >= 2:
            encode, decode = split_at_code(model)
            files["samples/interpolation.png"] = code_interpolation(encode, decode, images[:2])
        return files

    def held_out_count(self, params: dict[str, Any]) -> int:
        """The grid's images, and at least the interpolation's two ends."""
        return max(int(params["count"]), 2)


class Denoiser(Autoencoder):
    """The same network trained on noisy inputs against the clean images."""

    name = "denoiser"

    def inputs(self, x: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        return noisy_images(x, params["noise_factor"], params["clip"], seed)

    def preview_rows(
        self, model: keras.Model, clean: np.ndarray, params: dict[str, Any]
    ) -> list[np.ndarray]:
        """Noisy, denoised and original rows (the seed's figure)."""
        noisy = self.inputs(clean, params, params["seed"] + 2)
        return [noisy, np.asarray(model(noisy, training=False)), clean]

    def scores(self, built: Built, seen: np.ndarray, x: np.ndarray, split: str) -> dict[str, Any]:
        """The autoencoder's scores, plus the noisy inputs' PSNR and the gain over it."""
        from workers.engine.quality import psnr_db

        results = super().scores(built, seen, x, split)
        noisy_mse = float(np.sum(np.square(seen - x, dtype=np.float64))) / x.size
        results[f"{split}_noisy_psnr_db"] = psnr_db(noisy_mse)
        results[f"{split}_psnr_gain_db"] = results[f"{split}_psnr_db"] - psnr_db(noisy_mse)
        return results


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
        if params["quality_samples"] and len(held_out(arrays)[1]) < QUALITY_MIN_SAMPLES:
            # Found before training, not after it: scoring needs two held-out images at least.
            raise UserError(
                f"quality needs at least {QUALITY_MIN_SAMPLES} held-out images; the dataset has "
                "fewer (set quality_samples to 0 to train without scoring)"
            )
        slices: Any = x
        if params.get("conditional", False):
            if arrays.y_train is None:
                raise UserError("conditional needs labels: the dataset has no y_train")
            slices = (x, arrays.y_train.astype(np.int32))
        real = tf.data.Dataset.from_tensor_slices(slices).shuffle(len(x), seed=params["seed"])
        # BatchNorm wants full batches; every replica gets an equal share.
        spe = params["steps_per_epoch"]
        train = _batched(real.repeat(), global_batch, drop=True)
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


class Vae(Kind):
    """A convolutional variational autoencoder: trained on reconstruction + beta × KL,
    validated on the test split; its samples come from the prior and are scored as the GAN's."""

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
        return Built(vae, [optimizer], build_vae_export(encoder, decoder))

    def plan(self, arrays: Arrays, params: dict[str, Any], global_batch: int) -> Plan:
        check_quality_images(arrays, params)
        x = arrays.x_train
        train = _shuffled(
            tf.data.Dataset.from_tensor_slices(x), len(x), params["shuffle"], params["seed"]
        )
        validation = None
        if arrays.x_test is not None:
            _, test, _ = held_out(arrays)
            validation = _batched(tf.data.Dataset.from_tensor_slices(test), global_batch)
        return Plan(_batched(train, global_batch), validation, params["epochs"])

    def preview(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> bytes:
        return square_grid_png(prior_samples(built.model.decoder, 16, 1234))

    def evaluate(self, built: Built, arrays: Arrays, params: dict[str, Any]) -> dict[str, Any]:
        """Reconstruction MSE and the ELBO's terms on the held-out split; FID, classifier score
        and digit shares of ``quality_samples`` images drawn from the prior."""
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
            fake = np.concatenate(
                [
                    prior_samples(vae.decoder, min(1000, wanted - i), i)
                    for i in range(0, wanted, 1000)
                ]
            )
            results.update(gan_quality(fake, x))
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
        """``count`` digits drawn from the prior with ``seed``, and a walk between the codes of
        two held-out digits that ``seed`` chose."""
        images, _ = chosen_images(drawn)
        encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
        grid = prior_samples(decoder, params["count"], params["seed"])
        files = {"samples/grid.png": square_grid_png(grid)}
        if len(images) >= 2:

            def decode(codes: np.ndarray) -> np.ndarray:
                return np.asarray(decoder(codes, training=False))

            files["samples/interpolation.png"] = code_interpolation(
                lambda ends: mean_codes(encoder, ends), decode, images[:2]
            )
        return files


def check_quality_images(arrays: Arrays, params: dict[str, Any]) -> None:
    """A UserError, before training, when quality is asked for and the held-out split is too
    small to score it."""
    if params["quality_samples"] and len(held_out(arrays)[1]) < QUALITY_MIN_SAMPLES:
        raise UserError(
            f"quality needs at least {QUALITY_MIN_SAMPLES} held-out images; the dataset has "
            "fewer (set quality_samples to 0 to train without scoring)"
        )


def chosen_images(drawn: Drawn | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The held-out images a sampling job drew (and their labels, if any)."""
    if drawn is None:
        raise UserError("sampling this model needs its dataset")
    return drawn.images, drawn.labels


KINDS: dict[str, Kind] = {
    kind.name: kind for kind in (Classifier(), Autoencoder(), Denoiser(), Gan(), Vae())
}
# Every defined kind trains here, and nothing trains that is not defined.
if set(KINDS) != set(KIND_SPECS):
    raise RuntimeError(
        f"engine kinds {sorted(KINDS)} do not match the definitions {sorted(KIND_SPECS)}"
    )
