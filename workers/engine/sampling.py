"""Sampling from a trained model: load it safely (kept in memory), draw PNG grids per kind."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from workers.engine.data import Arrays
from workers.engine.kinds import KINDS, Autoencoder, Classifier, Gan, held_out
from workers.engine.reporter import UserError
from workers.images import grid_png, labelled_grid_png, square_grid_png

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


def interpolation_strip(
    generator: keras.Model, latent_dim: int, seed: int, steps: int = 10
) -> bytes:
    """Images along a straight line between two latent vectors drawn with ``seed``."""
    ends = np.random.default_rng(seed).uniform(-1.0, 1.0, (2, latent_dim)).astype(np.float32)
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    latent = (1.0 - weights) * ends[0] + weights * ends[1]
    images = np.asarray(generator(latent, training=False)).reshape(steps, 784)
    return grid_png([images])


def needs_dataset(model_kind: str) -> bool:
    """Whether sampling this kind draws from the dataset (all but the GAN)."""
    return model_kind != "gan"


def sample_images(
    model_kind: str,
    model: keras.Model,
    arrays: Arrays | None,
    params: dict[str, Any],
    trained_with: dict[str, Any],
) -> dict[str, bytes]:
    """The PNG files a sampling job of ``model_kind`` produces, by artifact name.

    ``trained_with`` are the training job's params (the denoiser's noise, say)."""
    kind = KINDS.get(model_kind)
    if kind is None:
        raise UserError(f"sampling {model_kind!r} models is not supported")
    count, seed = params["count"], params["seed"]
    if isinstance(kind, Gan):
        latent_dim = int(model.inputs[0].shape[-1])
        return {
            "samples/grid.png": square_grid_png(kind.generate(model, count, latent_dim, seed)),
            "samples/interpolation.png": interpolation_strip(model, latent_dim, seed),
        }
    if arrays is None:
        raise UserError("sampling this model needs its dataset")
    _, pool, labels = held_out(arrays)
    chosen = np.random.default_rng(seed).choice(
        len(pool), size=min(count, len(pool)), replace=False
    )
    images = pool[chosen]
    if isinstance(kind, Classifier):
        predicted = np.argmax(np.asarray(model(images, training=False)), axis=1)
        truth = labels[chosen] if labels is not None else None
        return {"samples/grid.png": labelled_grid_png(images, predicted, truth)}
    assert isinstance(kind, Autoencoder)
    rows = kind.preview_rows(model, images, {**trained_with, "seed": seed})
    return {"samples/grid.png": grid_png(rows)}
