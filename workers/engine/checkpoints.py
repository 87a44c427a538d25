"""Checkpoints as plain ``.npz`` files: model weights, optimizer state and the epoch reached.

Plain arrays (loaded with ``allow_pickle=False``) rather than pickled or Keras-specific state, so a
checkpoint can be restored into a freshly built model under any distribution strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

CHECKPOINT_ARTIFACT = "checkpoints/latest.npz"


def save_checkpoint(
    path: Path, model: keras.Model, optimizers: Sequence[keras.optimizers.Optimizer], epoch: int
) -> None:
    """Write the weights, every optimizer's variables and ``epoch`` (completed) to ``path``."""
    arrays: dict[str, np.ndarray] = {"epoch": np.asarray(epoch, dtype=np.int64)}
    for i, weight in enumerate(model.weights):
        arrays[f"w{i:04d}"] = np.asarray(weight.numpy())
    for k, optimizer in enumerate(optimizers):
        for i, variable in enumerate(optimizer.variables):
            arrays[f"o{k}_{i:04d}"] = np.asarray(variable.numpy())
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def restore_checkpoint(
    path: Path, model: keras.Model, optimizers: Sequence[keras.optimizers.Optimizer]
) -> int:
    """Load a checkpoint into a built model and built optimizers; returns the epoch reached."""
    with np.load(path, allow_pickle=False) as saved:
        weights = sorted(name for name in saved.files if name.startswith("w"))
        if len(weights) != len(model.weights):
            raise ValueError("checkpoint does not match the model")
        for variable, name in zip(model.weights, weights, strict=True):
            variable.assign(saved[name])
        for k, optimizer in enumerate(optimizers):
            names = sorted(name for name in saved.files if name.startswith(f"o{k}_"))
            for variable, name in zip(optimizer.variables, names, strict=True):
                variable.assign(saved[name])
        return int(saved["epoch"])
