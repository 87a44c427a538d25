"""Checkpoints as plain ``.npz`` files: model weights, optimizer state, the epoch reached and the
metrics of that epoch.

Plain arrays (loaded with ``allow_pickle=False``) rather than pickled or Keras-specific state, so a
checkpoint can be restored into a freshly built model under any distribution strategy. A
checkpoint is written before its epoch's metrics are recorded and carries them, so a job killed
between the two records them on resume instead of training that epoch again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

CHECKPOINT_ARTIFACT = "checkpoints/latest.npz"


@dataclass(frozen=True)
class EpochRecord:
    """What was reported for a completed epoch (or block of steps)."""

    step: int
    values: dict[str, float]
    seconds: float
    progress: float
    eta: float | None


def save_checkpoint(
    path: Path,
    model: keras.Model,
    optimizers: Sequence[keras.optimizers.Optimizer],
    epoch: int,
    record: EpochRecord,
) -> None:
    """Write the weights, every optimizer's variables, ``epoch`` (completed) and its record."""
    arrays: dict[str, np.ndarray] = {
        "epoch": np.asarray(epoch, dtype=np.int64),
        "record": np.frombuffer(json.dumps(record.__dict__).encode(), dtype=np.uint8),
    }
    for i, weight in enumerate(model.weights):
        arrays[f"w{i:04d}"] = np.asarray(weight.numpy())
    for k, optimizer in enumerate(optimizers):
        for i, variable in enumerate(optimizer.variables):
            arrays[f"o{k}_{i:04d}"] = np.asarray(variable.numpy())
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def restore_checkpoint(
    path: Path, model: keras.Model, optimizers: Sequence[keras.optimizers.Optimizer]
) -> tuple[int, EpochRecord]:
    """Load a checkpoint into a built model and optimizers; the epoch reached and its record."""
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
        fields: dict[str, Any] = json.loads(saved["record"].tobytes().decode())
        return int(saved["epoch"]), EpochRecord(**fields)
