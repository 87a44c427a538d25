"""Checkpoints as plain ``.npz`` files: model weights and optimizer state keyed by variable path,
the format version, the epoch reached and the metrics of that epoch.

Plain arrays (loaded with ``allow_pickle=False``) rather than pickled or Keras-specific state, so a
checkpoint can be restored into a freshly built model under any distribution strategy. A
checkpoint is written before its epoch's metrics are recorded and carries them, so a job killed
between the two records them on resume instead of training that epoch again.

Every array is keyed by where its variable sits in the model, not by its position, so a model
that gains or loses a weight (an EMA copy, a new layer) is refused with the names that differ
instead of being mis-loaded. Keys must be the same in any process that builds the same kind, and
Keras's own ``variable.path`` is not always: it carries the names of models built around a layer
(``sequential_1/dense/kernel``) and every optimizer's auto-name (``adam_3/iteration``), which
count up within a process. So a weight's key is its path relative to the model that owns it,
behind the names of the sub-models leading there (``generator/project/kernel``), under ``model/``;
an optimizer's variable is keyed by the optimizer's index in ``optimizers`` and, for a slot, by the
weight it tracks (``optimizer1/generator/project/kernel/momentum``, ``optimizer1/iteration``;
a loss-scale optimizer's inner optimizer under ``inner/``). Layers must therefore be named
explicitly, as the model builders do: an auto-named layer (``dense_1``) changes its key between
builds, which restore reports as a mismatch, never as a silent mis-load.

A checkpoint without a format version predates format 2 (weights stored by position): it is
refused, not guessed at, so a job in flight across the upgrade fails with a clear message and is
resubmitted from scratch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from workers.engine.reporter import UserError

CHECKPOINT_ARTIFACT = "checkpoints/latest.npz"
FORMAT_VERSION = 2
_METADATA = frozenset({"format_version", "epoch", "record"})
# Format 1 stored weights as w0000, w0001, ... and optimizer k's variables as o{k}_0000, ...
_POSITIONAL = re.compile(r"w\d{4}|o\d+_\d{4}")
_NAMES_SHOWN = 3


class CheckpointMismatch(UserError):
    """A checkpoint that cannot be restored into this model: another format, or other variables."""


@dataclass(frozen=True)
class EpochRecord:
    """What was reported for a completed epoch (or block of steps)."""

    step: int
    values: dict[str, float]
    seconds: float
    progress: float
    eta: float | None


def model_variables(model: keras.Model) -> dict[str, keras.Variable]:
    """The model's weights by key: sub-model names, then the path within the owning model."""
    chains: dict[int, list[keras.Model]] = {}

    def visit(owner: keras.Model, chain: list[keras.Model]) -> None:
        for variable in owner.weights:
            chains[id(variable)] = chain  # a deeper sub-model overwrites its parent
        for layer in owner.layers:
            if isinstance(layer, keras.Model):
                visit(layer, [*chain, layer])

    visit(model, [model])
    keyed: dict[str, keras.Variable] = {}
    for variable in model.weights:
        chain = chains[id(variable)]
        parts = variable.path.split("/")
        # Drop the name scopes of the models themselves (a Sequential's, a subclass's).
        for owner in chain:
            if len(parts) > 1 and parts[0] == owner.name:
                parts = parts[1:]
        _add(keyed, "/".join([owner.name for owner in chain[1:]] + parts), variable)
    return keyed


def optimizer_variables(
    optimizer: keras.optimizers.Optimizer, model_keys: dict[str, keras.Variable]
) -> dict[str, keras.Variable]:
    """One optimizer's variables by key: a slot under its weight's key, others by name."""
    scopes = {optimizer.name: ""}
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        scopes[inner.name] = "inner/"
    # A slot is named after its weight's path with "/" as "_" (Keras's add_variable_from_reference);
    # longest first, so "a_b_" does not claim a slot of "a_b_c_".
    slot_prefixes = sorted(
        ((variable.path.replace("/", "_") + "_", key) for key, variable in model_keys.items()),
        key=lambda pair: -len(pair[0]),
    )
    keyed: dict[str, keras.Variable] = {}
    for variable in optimizer.variables:
        parts = variable.path.split("/")
        scope = ""
        owned = [i for i, part in enumerate(parts[:-1]) if part in scopes]
        if owned:
            scope = scopes[parts[owned[-1]]]
            parts = parts[owned[-1] + 1 :]
        name = "/".join(parts)
        for prefix, key in slot_prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = f"{key}/{name[len(prefix) :]}"
                break
        _add(keyed, scope + name, variable)
    return keyed


def checkpoint_variables(
    model: keras.Model, optimizers: Sequence[keras.optimizers.Optimizer]
) -> dict[str, keras.Variable]:
    """Every variable a checkpoint holds, by the key it is stored under."""
    weights = model_variables(model)
    keyed = {f"model/{key}": variable for key, variable in weights.items()}
    for k, optimizer in enumerate(optimizers):
        for key, variable in optimizer_variables(optimizer, weights).items():
            keyed[f"optimizer{k}/{key}"] = variable
    return keyed


def _add(keyed: dict[str, keras.Variable], key: str, variable: keras.Variable) -> None:
    if key in keyed:
        raise ValueError(
            f"two variables share the checkpoint key {key!r} ({keyed[key].path!r} and "
            f"{variable.path!r}): name the layers or sub-models apart"
        )
    keyed[key] = variable


def save_checkpoint(
    path: Path,
    model: keras.Model,
    optimizers: Sequence[keras.optimizers.Optimizer],
    epoch: int,
    record: EpochRecord,
) -> None:
    """Write the weights, every optimizer's variables, ``epoch`` (completed) and its record."""
    arrays: dict[str, np.ndarray] = {
        "format_version": np.asarray(FORMAT_VERSION, dtype=np.int64),
        "epoch": np.asarray(epoch, dtype=np.int64),
        "record": np.frombuffer(json.dumps(record.__dict__).encode(), dtype=np.uint8),
    }
    for key, variable in checkpoint_variables(model, optimizers).items():
        arrays[key] = np.asarray(variable.numpy())
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def restore_checkpoint(
    path: Path, model: keras.Model, optimizers: Sequence[keras.optimizers.Optimizer]
) -> tuple[int, EpochRecord]:
    """Load a checkpoint into a built model and optimizers; the epoch reached and its record.

    Raises ``CheckpointMismatch`` (nothing assigned) unless the checkpoint is format 2 and holds
    exactly the model's and optimizers' variables, each of the variable's shape.
    """
    with np.load(path, allow_pickle=False) as saved:
        files = set(saved.files)
        if "format_version" not in files:
            if any(_POSITIONAL.fullmatch(name) for name in files):
                raise CheckpointMismatch(
                    f"the checkpoint predates checkpoint format {FORMAT_VERSION} (weights stored "
                    "by position) and cannot be restored safely: resubmit the job"
                )
            raise CheckpointMismatch("the file is not a gentrain checkpoint (no format version)")
        version = int(saved["format_version"])
        if version != FORMAT_VERSION:
            raise CheckpointMismatch(
                f"the checkpoint has format {version}; this worker reads format {FORMAT_VERSION}"
            )
        arrays = {name: saved[name] for name in files - _METADATA}
        epoch = int(saved["epoch"])
        fields: dict[str, Any] = json.loads(saved["record"].tobytes().decode())
    expected = checkpoint_variables(model, optimizers)
    _check_matches(arrays, expected)
    for key, variable in expected.items():
        variable.assign(arrays[key])
    return epoch, EpochRecord(**fields)


def _check_matches(arrays: dict[str, np.ndarray], expected: dict[str, keras.Variable]) -> None:
    missing = sorted(expected.keys() - arrays.keys())
    extra = sorted(arrays.keys() - expected.keys())
    misshaped = [
        f"{key} {arrays[key].shape} in the checkpoint, {tuple(expected[key].shape)} in the model"
        for key in sorted(expected.keys() & arrays.keys())
        if tuple(arrays[key].shape) != tuple(expected[key].shape)
    ]
    found = [
        _listed(heading, names)
        for heading, names in (
            ("missing from the checkpoint", missing),
            ("not in the model", extra),
            ("of another shape", misshaped),
        )
        if names
    ]
    if found:
        raise CheckpointMismatch("the checkpoint does not match the model; " + "; ".join(found))


def _listed(heading: str, names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = f", and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
    return f"{heading}: {len(names)} ({shown}{more})"
