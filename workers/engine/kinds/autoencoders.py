"""The autoencoder and denoiser kinds (the seed's dense networks, or convolutional ones), and
the seed's corruption of the denoiser's inputs."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.engine.data import Arrays, Drawn, held_out
from workers.engine.distribution import jit_compile_setting
from workers.engine.interpolation import code_interpolation, split_at_code
from workers.engine.kinds.base import (
    GRID_COLUMNS,
    Built,
    Kind,
    Plan,
    batched,
    chosen_images,
    shuffled,
)
from workers.engine.models import (
    build_autoencoder,
    build_conv_autoencoder,
)
from workers.images import grid_png

# Images per block of denoiser noise (float64 while drawn): 4,096 × 784 × 8 B ≈ 25 MB.
_NOISE_CHUNK = 4096 * 784
# Images scored at a time at the end of training (outputs and SSIM's float64 stay small).
_EVAL_BLOCK = 1000


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
        train = shuffled(pairs, len(x), params["shuffle"], params["seed"])
        validation = None
        if arrays.x_test is not None:
            _, test, _ = held_out(arrays)
            slices = (self.inputs(test, params, params["seed"] + 1), test)
            validation = batched(tf.data.Dataset.from_tensor_slices(slices), global_batch)
        return Plan(batched(train, global_batch), validation, params["epochs"])

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
