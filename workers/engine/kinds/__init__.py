"""The model kinds' Keras side: how each is built, fed, previewed, scored and sampled.

Keyed by the names of ``shared.kinds``, which holds everything else about a kind (parameters,
defaults, needs, the final grid's name)."""

from __future__ import annotations

from shared.kinds import KIND_SPECS
from workers.engine.kinds.autoencoders import Autoencoder, Denoiser, noisy_images
from workers.engine.kinds.base import Built, Kind, Plan
from workers.engine.kinds.classifier import Classifier
from workers.engine.kinds.gan import Gan
from workers.engine.kinds.vae import Vae

__all__ = ["KINDS", "Built", "Gan", "Kind", "Plan", "noisy_images"]

KINDS: dict[str, Kind] = {
    kind.name: kind for kind in (Classifier(), Autoencoder(), Denoiser(), Gan(), Vae())
}
# Every defined kind trains here, and nothing trains that is not defined.
if set(KINDS) != set(KIND_SPECS):
    raise RuntimeError(
        f"engine kinds {sorted(KINDS)} do not match the definitions {sorted(KIND_SPECS)}"
    )
