"""The parts every model kind shares: the ``Kind`` interface, what ``build`` and ``plan``
return, input pipelines, and the checks and helpers of more than one kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from shared.kinds import KIND_SPECS, QUALITY_MIN_SAMPLES, KindSpec
from workers.engine.data import Arrays, Drawn, held_out
from workers.engine.reporter import UserError

GRID_COLUMNS = 10
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
    # Brings ``export`` up to date with training (a moving average's copy, a VAE's prior fitted
    # to the job's training split), before it is used.
    sync_export: Callable[[Arrays], None] = lambda arrays: None


def batched(dataset: tf.data.Dataset, global_batch: int, drop: bool = False) -> tf.data.Dataset:
    """Batches of ``global_batch`` (the last one dropped if short and ``drop``), prefetched."""
    return dataset.batch(global_batch, drop_remainder=drop).prefetch(AUTOTUNE)


def shuffled(dataset: tf.data.Dataset, count: int, on: bool, seed: int) -> tf.data.Dataset:
    """``dataset`` reshuffled each pass from ``seed`` when ``on``, else as it is."""
    return dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True) if on else dataset


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
