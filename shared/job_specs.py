"""Job-spec validation: each model kind's parameters, their defaults (the seed's) and bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class SpecError(Exception):
    """A job spec that cannot be accepted; names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Param:
    """One bounded, typed parameter with its default."""

    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""

    def coerce(self, field: str, value: Any) -> Any:
        """Return ``value`` checked against type and bounds, or raise SpecError."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise SpecError(field, f"{field} must be true or false")
            return value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(field, f"{field} must be an integer")
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SpecError(field, f"{field} must be a number")
            value = float(value)
            if not math.isfinite(value):
                raise SpecError(field, f"{field} must be a finite number")
        if self.low is not None and value < self.low:
            raise SpecError(field, f"{field} must be at least {self.low:g}")
        if self.high is not None and value > self.high:
            raise SpecError(field, f"{field} must be at most {self.high:g}")
        return value


_COMMON = {
    "max_train_images": Param(int, 0, 0, 10_000_000, "use only the first N images (0: all)"),
    "mixed_precision": Param(
        bool, False, help="bfloat16 on CPUs, float16 on GPUs (see docs/engine-benchmarks.md)"
    ),
    "max_runtime_seconds": Param(
        int, 0, 0, 10**8, "stop and fail after this long (0: the service default)"
    ),
    "seed": Param(int, 0, 0, 2**31 - 1, "random seed"),
}

_AUTOENCODER = {
    "epochs": Param(int, 50, 1, 1000, "passes over the training split"),
    "batch_size": Param(int, 256, 1, 4096, "images per batch, per replica"),
    "learning_rate": Param(float, 0.001, 1e-6, 1.0, "Adam learning rate"),
    "encoding_dim": Param(int, 32, 1, 784, "size of the code layer"),
    "shuffle": Param(bool, True, help="shuffle the training split each epoch"),
    "sample_every": Param(int, 0, 0, 1000, "save a sample grid every K epochs (0: at the end)"),
    **_COMMON,
}

_DENOISER = {
    **_AUTOENCODER,
    "noise_factor": Param(float, 0.55, 0.0, 2.0, "standard deviation of the added Gaussian noise"),
    "clip": Param(bool, True, help="clip noisy images to [0, 1]"),
}

_CLASSIFIER = {
    "epochs": Param(int, 2, 1, 1000, "passes over the training split"),
    "batch_size": Param(int, 64, 1, 4096, "images per batch, per replica"),
    "learning_rate": Param(float, 0.001, 1e-6, 1.0, "RMSprop learning rate"),
    "hidden_units": Param(int, 64, 1, 4096, "units in each of the two hidden layers"),
    "validation_split": Param(float, 0.2, 0.0, 0.5, "share of training images held for validation"),
    "shuffle": Param(bool, True, help="shuffle the training split each epoch"),
    "sample_every": Param(int, 0, 0, 1000, "save a labelled grid every K epochs (0: at the end)"),
    **_COMMON,
}

_GAN = {
    "steps": Param(
        int, 2000, 1, 1_000_000, "training steps (one discriminator + one generator update)"
    ),
    "batch_size": Param(int, 128, 2, 4096, "real images per step, per replica"),
    "learning_rate": Param(float, 0.0004, 1e-6, 1.0, "Adam learning rate of both networks"),
    "latent_dim": Param(int, 32, 1, 512, "size of the latent vector"),
    "steps_per_epoch": Param(int, 100, 1, 100_000, "steps between metrics and checkpoints"),
    "sample_every": Param(
        int, 500, 0, 1_000_000, "save a sample grid every K steps (0: at the end)"
    ),
    "label_smoothing": Param(float, 0.0, 0.0, 0.5, "real label is 1 minus this"),
    "quality_samples": Param(int, 2000, 0, 20_000, "generated images scored at the end (0: none)"),
    **_COMMON,
}

# Parameters of each trainable kind; defaults are the seed lecture's.
TRAINING_PARAMS: dict[str, dict[str, Param]] = {
    "classifier": _CLASSIFIER,
    "autoencoder": _AUTOENCODER,
    "denoiser": _DENOISER,
    "gan": _GAN,
}

SAMPLE_PARAMS: dict[str, Param] = {
    "count": Param(int, 16, 1, 1024, "images in the grid"),
    "seed": Param(int, 0, 0, 2**31 - 1, "random seed for the images drawn"),
}


def _check_params(params: Any, schema: dict[str, Param], field: str) -> dict[str, Any]:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise SpecError(field, f"{field} must be an object")
    unknown = sorted(set(params) - set(schema))
    if unknown:
        known = ", ".join(sorted(schema))
        raise SpecError(
            f"{field}.{unknown[0]}", f"unknown parameter {unknown[0]!r}; known: {known}"
        )
    return {
        name: spec.coerce(f"{field}.{name}", params[name]) if name in params else spec.default
        for name, spec in schema.items()
    }


def validate_training_spec(
    kind: Any, params: Any, max_runtime_cap: int | None = None
) -> dict[str, Any]:
    """Complete and check a training job's params; raises SpecError naming the field."""
    if not isinstance(kind, str) or kind not in TRAINING_PARAMS:
        available = ", ".join(sorted(TRAINING_PARAMS))
        raise SpecError("kind", f"unknown kind {kind!r}; available: {available}")
    checked = _check_params(params, TRAINING_PARAMS[kind], "params")
    if max_runtime_cap is not None and checked["max_runtime_seconds"] > max_runtime_cap:
        raise SpecError(
            "params.max_runtime_seconds", f"max_runtime_seconds must be at most {max_runtime_cap}"
        )
    if kind == "gan":
        checked["steps_per_epoch"] = min(checked["steps_per_epoch"], checked["steps"])
        if checked["steps"] % checked["steps_per_epoch"]:
            raise SpecError(
                "params.steps_per_epoch",
                f"steps ({checked['steps']}) must be a multiple of steps_per_epoch "
                f"({checked['steps_per_epoch']})",
            )
    return checked


def validate_sample_params(params: Any) -> dict[str, Any]:
    """Complete and check a sampling job's params."""
    return _check_params(params, SAMPLE_PARAMS, "params")
