"""Sampling from a trained model: load it safely (cached), draw a PNG grid."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import keras
import numpy as np

from workers.engine.data import Arrays
from workers.engine.reporter import UserError
from workers.engine.training import reconstruction_rows
from workers.images import grid_png

_CACHE_SIZE = 4
_models: OrderedDict[str, keras.Model] = OrderedDict()


def load_model(key: str, path_factory: Any) -> keras.Model:
    """The model for ``key``, loaded with ``safe_mode=True`` on first use and kept (LRU)."""
    if key in _models:
        _models.move_to_end(key)
        return _models[key]
    path: Path = path_factory()
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    _models[key] = model
    while len(_models) > _CACHE_SIZE:
        _models.popitem(last=False)
    return model


def sample_grid(
    model_kind: str, model: keras.Model, arrays: Arrays, params: dict[str, Any]
) -> bytes:
    """A PNG grid of ``count`` samples drawn with ``seed``."""
    if model_kind != "autoencoder":
        raise UserError(f"sampling {model_kind!r} models is not supported by this worker")
    pool = arrays.x_test if arrays.x_test is not None else arrays.x_train
    rng = np.random.default_rng(params["seed"])
    count = min(params["count"], len(pool))
    chosen = pool[rng.choice(len(pool), size=count, replace=False)]
    return grid_png(reconstruction_rows(model, chosen))
