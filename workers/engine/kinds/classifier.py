"""The classifier kind: the seed's functional-API MNIST classifier."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.engine.data import Arrays, Drawn, held_out
from workers.engine.distribution import jit_compile_setting
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
    build_classifier,
)
from workers.engine.reporter import UserError
from workers.images import labelled_grid_png


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
        train = shuffled(
            tf.data.Dataset.from_tensor_slices((x, y)), cut, params["shuffle"], params["seed"]
        )
        validation = None
        if cut < len(arrays.x_train):
            slices = (arrays.x_train[cut:], arrays.y_train[cut:])
            validation = batched(tf.data.Dataset.from_tensor_slices(slices), global_batch)
        return Plan(batched(train, global_batch), validation, params["epochs"])

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
