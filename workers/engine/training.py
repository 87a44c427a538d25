"""Training a job's model: strategy, input pipeline, fit with reporting callbacks, final results."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.engine.callbacks import EverySoManyEpochs, JobProgress
from workers.engine.data import Arrays
from workers.engine.distribution import make_strategy
from workers.engine.models import build_autoencoder
from workers.engine.reporter import Reporter, UserError
from workers.images import grid_png

MODEL_ARTIFACT = "model.keras"
GRID_COLUMNS = 10


@dataclass
class TrainingOutcome:
    """How training ended and what it measured."""

    cancelled: bool
    results: dict[str, Any] = field(default_factory=dict)


def image_pipeline(
    x: np.ndarray, global_batch: int, shuffle: bool, seed: int, drop_remainder: bool = False
) -> tf.data.Dataset:
    """(input, target) batches of images for an autoencoder, shuffled each epoch, prefetched."""
    dataset = tf.data.Dataset.from_tensor_slices((x, x))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(global_batch, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def psnr_db(mse: float) -> float:
    """Peak signal-to-noise ratio of images in [0, 1] with mean squared error ``mse``."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def reconstruction_rows(model: keras.Model, originals: np.ndarray) -> list[np.ndarray]:
    """Originals above their reconstructions, as the seed draws them."""
    reconstructed = np.asarray(model(originals, training=False))
    return [originals, reconstructed]


def train_autoencoder(
    arrays: Arrays, params: dict[str, Any], reporter: Reporter
) -> TrainingOutcome:
    """The seed's dense autoencoder: Adam, MSE, validated on the test split when there is one."""
    keras.utils.set_random_seed(params["seed"])
    strategy = make_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = params["batch_size"] * replicas
    if len(arrays.x_train) < replicas:
        raise UserError("the dataset has fewer training images than replicas")
    with strategy.scope():
        model = build_autoencoder(params["encoding_dim"])
        model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss="mse")
    reporter.started(model.count_params(), replicas, global_batch)

    train = image_pipeline(arrays.x_train, global_batch, params["shuffle"], params["seed"])
    held_out = arrays.x_test if arrays.x_test is not None else None
    validation = image_pipeline(held_out, global_batch, False, 0) if held_out is not None else None
    preview = (held_out if held_out is not None else arrays.x_train)[:GRID_COLUMNS]

    def save_grid(epoch: int) -> None:
        png = grid_png(reconstruction_rows(model, preview))
        reporter.save_bytes(f"samples/epoch-{epoch:04d}.png", png, "image/png")

    progress = JobProgress(reporter, params["epochs"])
    callbacks: list[keras.callbacks.Callback] = [progress]
    if params["sample_every"]:
        callbacks.append(EverySoManyEpochs(params["sample_every"], save_grid))
    model.fit(
        train,
        validation_data=validation,
        epochs=params["epochs"],
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=0,
    )

    reporter.save_bytes(
        "samples/reconstructions.png", grid_png(reconstruction_rows(model, preview)), "image/png"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_ARTIFACT
        model.save(path)
        reporter.save_file(MODEL_ARTIFACT, path, "application/octet-stream")
    if progress.cancelled:
        return TrainingOutcome(cancelled=True)

    evaluated = held_out if held_out is not None else arrays.x_train
    split = "test" if held_out is not None else "train"
    reconstructed = np.asarray(model.predict(evaluated, batch_size=1024, verbose=0))
    mse = float(np.mean((reconstructed - evaluated) ** 2))
    return TrainingOutcome(
        cancelled=False,
        results={"split": split, f"{split}_mse": mse, f"{split}_psnr_db": psnr_db(mse)},
    )


TRAINERS = {"autoencoder": train_autoencoder}


def train(kind: str, arrays: Arrays, params: dict[str, Any], reporter: Reporter) -> TrainingOutcome:
    """Train a model of ``kind``; raises UserError for what the user must fix."""
    trainer = TRAINERS.get(kind)
    if trainer is None:
        raise UserError(f"model kind {kind!r} cannot be trained by this worker")
    return trainer(arrays, params, reporter)
