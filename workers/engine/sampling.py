"""Sampling from a trained model: load it safely (kept in memory), draw PNG grids per kind."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from shared.kinds import KIND_SPECS
from workers.engine.data import Arrays, Drawn, draw
from workers.engine.gan_parts import interpolation_strip
from workers.engine.kinds import KINDS
from workers.engine.reporter import UserError

__all__ = [
    "held_out_count",
    "interpolation_strip",
    "load_model",
    "needs_dataset",
    "sample_images",
]

CACHE_SIZE = 4
_models: OrderedDict[str, keras.Model] = OrderedDict()


def load_model(key: str, fetch: Callable[[], Path]) -> keras.Model:
    """The model for ``key``, loaded with ``safe_mode=True`` on first use and kept (LRU)."""
    if key in _models:
        _models.move_to_end(key)
        return _models[key]
    model = keras.models.load_model(fetch(), safe_mode=True, compile=False)
    _models[key] = model
    while len(_models) > CACHE_SIZE:
        _models.popitem(last=False)
    return model


def needs_dataset(model_kind: str) -> bool:
    """Whether sampling this kind draws from the dataset (its definition says; unknown: yes)."""
    spec = KIND_SPECS.get(model_kind)
    return spec is None or spec.sampling_needs_dataset


def held_out_count(model_kind: str, params: dict[str, Any]) -> int:
    """How many held-out images a sampling job of ``model_kind`` draws (unknown kind: ``count``)."""
    kind = KINDS.get(model_kind)
    return kind.held_out_count(params) if kind is not None else int(params["count"])


def sample_images(
    model_kind: str,
    model: keras.Model,
    images: Drawn | Arrays | None,
    params: dict[str, Any],
    trained_with: dict[str, Any],
) -> dict[str, bytes]:
    """The PNG files a sampling job of ``model_kind`` produces, by artifact name.

    ``images`` are the held-out images ``params`` choose (``data.load_drawn`` reads only those),
    or a dataset in memory to choose them from; ``trained_with`` are the training job's params
    (the denoiser's noise, say)."""
    kind = KINDS.get(model_kind)
    if kind is None:
        raise UserError(f"sampling {model_kind!r} models is not supported")
    if kind.spec.sampling_needs_dataset and images is None:
        raise UserError("sampling this model needs its dataset")
    if isinstance(images, Arrays):
        images = draw(images, kind.held_out_count(params), params["seed"])
    return kind.sample(model, images, params, trained_with)
