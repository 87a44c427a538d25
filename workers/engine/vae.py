"""The variational autoencoder (keras-io's convolutional VAE): encoder and decoder builders, the
reparameterisation layer, the ELBO's terms, the ``keras.Model`` with its own train and test
steps, and the exported model that sampling loads.

The exported model is functional (784 → mean code → 784) and holds the encoder and the decoder as
named sub-models, so it loads with ``safe_mode=True``: sampling draws from the prior with
``get_layer("decoder")`` and encodes with ``get_layer("encoder")``. A VAE trained with
``prior=mixture`` also holds its fitted ``MixturePrior`` as ``get_layer("prior")`` (a layer
registered as ``gentrain>MixturePrior``: importing this module lets Keras load it); without
one, only Keras's own layers.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from workers.engine.models import conv_decoder_trunk, conv_encoder_trunk

PIXELS = 784
# keras.losses' clipping of probabilities, so the figures here match the training loss.
_EPSILON = 1e-7
# Images scored at a time at the end of training.
_EVAL_BLOCK = 1000


def build_vae_encoder(latent_dim: int = 16, hidden: int = 128, depth: int = 32) -> keras.Model:
    """784 → two 3×3 stride-2 convolutions (28 → 14 → 7) → dense → the code's mean and log
    variance (float32 under a mixed policy: the KL term needs the range)."""
    inputs = keras.Input(shape=(PIXELS,), name="image")
    x = layers.Dense(hidden, activation="relu", name="hidden")(conv_encoder_trunk(inputs, depth))
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_vae_decoder(latent_dim: int = 16, depth: int = 32) -> keras.Model:
    """A code → Dense 7·7·64 → two stride-2 transposed convolutions → a sigmoid 28×28 image,
    as 784 pixels."""
    inputs = keras.Input(shape=(latent_dim,), name="latent")
    x = conv_decoder_trunk(inputs, depth)
    x = layers.Conv2DTranspose(
        1, 3, padding="same", activation="sigmoid", name="pixels", dtype="float32"
    )(x)
    outputs = layers.Reshape((PIXELS,), name="decoded", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="decoder")


def build_vae_export(
    encoder: keras.Model, decoder: keras.Model, mixture_components: int = 0
) -> keras.Model:
    """The model saved as model.keras: images → mean code → reconstructions, holding
    ``encoder`` and ``decoder`` (the trained ones, not copies) as named sub-models; with
    ``mixture_components``, a ``MixturePrior`` named "prior" on the code path as well."""
    inputs = keras.Input(shape=(PIXELS,), name="digits")
    z_mean, _ = encoder(inputs)
    if mixture_components:
        z_mean = MixturePrior(mixture_components, name="prior", dtype="float32")(z_mean)
    return keras.Model(inputs, decoder(z_mean), name="vae")


def kl_divergence(z_mean: Any, z_log_var: Any) -> Any:
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) of each image's code, summed over its dimensions."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def reconstruction_loss(images: Any, reconstructions: Any) -> Any:
    """Each image's binary cross-entropy, summed over its pixels."""
    return ops.sum(ops.binary_crossentropy(images, reconstructions), axis=-1)


class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) · ε with ε ~ N(0, I): the reparameterisation trick."""

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, z_mean: Any, z_log_var: Any) -> Any:
        """One code drawn from each image's posterior."""
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class VAE(keras.Model):
    """Trained on reconstruction (per-image BCE summed over pixels) + ``beta`` × KL, both
    averaged over the batch; reports both terms and their weighted sum each epoch."""

    def __init__(
        self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.beta = beta
        self.sampling = Sampling(name="sampling", dtype="float32")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        # Both parts are built by their functional constructors.
        self.built = True

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """Loss trackers, reset by ``fit`` each epoch (``val_`` ones on the validation data)."""
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Reconstructions of ``images`` from their mean codes."""
        z_mean, _ = self.encoder(images, training=training)
        return self.decoder(z_mean, training=training)

    def elbo_terms(self, images: tf.Tensor, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """Each image's reconstruction loss through a sampled code, and its KL term."""
        z_mean, z_log_var = self.encoder(images, training=training)
        z = self.sampling(z_mean, z_log_var)
        reconstructions = self.decoder(z, training=training)
        images = ops.cast(images, reconstructions.dtype)
        return reconstruction_loss(images, reconstructions), kl_divergence(z_mean, z_log_var)

    def _track(self, reconstruction: tf.Tensor, kl: tf.Tensor) -> dict[str, tf.Tensor]:
        # Weighted by images, so uneven batches (the last one, a replica's share) count right.
        count = ops.cast(ops.shape(kl)[0], "float32")
        self.loss_tracker.update_state(_mean(reconstruction + self.beta * kl), count)
        self.reconstruction_tracker.update_state(_mean(reconstruction), count)
        self.kl_tracker.update_state(_mean(kl), count)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """One gradient step on the batch's mean loss."""
        with tf.GradientTape() as tape:
            reconstruction, kl = self.elbo_terms(images, training=True)
            loss = _mean(reconstruction + self.beta * kl)
            # Gradients are summed over replicas: each replica's mean is divided by their count.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(loss / replicas)
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        return self._track(reconstruction, kl)

    def test_step(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """The same terms on held-out images, without training."""
        return self._track(*self.elbo_terms(images, training=False))


def _mean(per_image: Any) -> Any:
    """Mean over the batch; 0 for an empty one (a replica's share of a last, tiny batch)."""
    count = ops.cast(ops.shape(per_image)[0], per_image.dtype)
    return ops.sum(per_image) / ops.maximum(count, 1.0)


@keras.saving.register_keras_serializable(package="gentrain")
class MixturePrior(layers.Layer):
    """A Gaussian mixture over codes that samples are drawn from instead of N(0, I): fitted after
    training to the training digits' mean codes (Ghosh et al. 2020's ex-post density estimation).

    Identity on the codes it is given: it sits on the exported model's code path so that the
    mixture travels inside model.keras (``get_layer("prior")``). Until fitted it is N(0, I)."""

    def __init__(self, components: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.components = components

    def build(self, input_shape: tuple[int, ...]) -> None:
        """Log mixture weights (k), means (k, d) and lower-triangular scales (k, d, d)."""
        k, d = self.components, input_shape[-1]
        self.log_weights = self.add_weight(
            shape=(k,), initializer="zeros", trainable=False, name="log_weights"
        )
        self.means = self.add_weight(
            shape=(k, d), initializer="zeros", trainable=False, name="means"
        )
        eye = np.broadcast_to(np.eye(d, dtype=np.float32), (k, d, d))
        self.scale_tril = self.add_weight(
            shape=(k, d, d),
            initializer=keras.initializers.Constant(eye),
            trainable=False,
            name="scale_tril",
        )

    def call(self, codes: Any) -> Any:
        """``codes`` as they are."""
        return codes

    def get_config(self) -> dict[str, Any]:
        """Enough to rebuild it; the mixture itself is in the weights."""
        return {**super().get_config(), "components": self.components}

    def fit(self, codes: np.ndarray, seed: int) -> None:
        """Fit the mixture to ``codes`` (N, d) by EM, from ``seed``."""
        log_weights, means, scale_tril = fit_mixture(codes, self.components, seed)
        self.log_weights.assign(log_weights.astype(np.float32))
        self.means.assign(means.astype(np.float32))
        self.scale_tril.assign(scale_tril.astype(np.float32))

    def sample(self, count: int, seed: int) -> np.ndarray:
        """``count`` codes drawn from the mixture with ``seed``."""
        rng = np.random.default_rng(seed)
        weights = np.exp(np.asarray(self.log_weights, np.float64))
        means = np.asarray(self.means, np.float64)
        scale_tril = np.asarray(self.scale_tril, np.float64)
        chosen = rng.choice(len(weights), size=count, p=weights / weights.sum())
        noise = rng.normal(size=(count, means.shape[1]))
        codes = means[chosen] + np.einsum("nij,nj->ni", scale_tril[chosen], noise)
        return codes.astype(np.float32)


# Training images whose codes a mixture prior is fitted to, at most: a 16-number code's mixture
# needs no more, and a large dataset would cost minutes of EM at every grid.
PRIOR_FIT_IMAGES = 10_000
# EM stops after this many rounds, or once the mean log-likelihood gains less than the tolerance.
_EM_ROUNDS = 200
_EM_TOLERANCE = 1e-6
# Added to each covariance's diagonal, relative to the codes' mean variance: no singular ones.
_EM_RIDGE = 1e-4


def fit_mixture(
    codes: np.ndarray, components: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A full-covariance Gaussian mixture fitted to ``codes`` (N, d) by EM: its log weights (k),
    means (k, d) and the Cholesky factors of its covariances (k, d, d). It starts from
    ``components`` distinct codes chosen with ``seed`` as means and the codes' covariance."""
    x = np.asarray(codes, np.float64)
    count, dim = x.shape
    if count < components:
        raise ValueError(f"{components} mixture components need at least as many codes")
    rng = np.random.default_rng(seed)
    ridge = _EM_RIDGE * max(float(x.var(axis=0).mean()), 1e-12) * np.eye(dim)
    means = x[rng.choice(count, components, replace=False)]
    covariances = np.repeat((np.cov(x, rowvar=False) + ridge)[None], components, axis=0)
    log_weights = np.full(components, -np.log(components))
    previous = -np.inf
    for _ in range(_EM_ROUNDS):
        scale_tril = np.linalg.cholesky(covariances)
        log_density = _log_densities(x, log_weights, means, scale_tril)
        top = log_density.max(axis=1, keepdims=True)
        log_total = top + np.log(np.exp(log_density - top).sum(axis=1, keepdims=True))
        likelihood = float(log_total.mean())
        responsibility = np.exp(log_density - log_total)
        mass = responsibility.sum(axis=0) + 1e-12
        log_weights = np.log(mass / count)
        means = (responsibility.T @ x) / mass[:, None]
        for j in range(components):
            centred = x - means[j]
            covariances[j] = (responsibility[:, j, None] * centred).T @ centred / mass[j] + ridge
        if likelihood - previous < _EM_TOLERANCE:
            break
        previous = likelihood
    return log_weights, means, np.linalg.cholesky(covariances)


def _log_densities(
    x: np.ndarray, log_weights: np.ndarray, means: np.ndarray, scale_tril: np.ndarray
) -> np.ndarray:
    """log(weight_j · N(x_i; mean_j, L_j L_jᵀ)) for every code i and component j."""
    count, dim = x.shape
    out = np.empty((count, len(log_weights)))
    for j, (mean, tril) in enumerate(zip(means, scale_tril, strict=True)):
        solved = np.linalg.solve(tril, (x - mean).T)
        log_det = 2.0 * np.log(np.diag(tril)).sum()
        out[:, j] = log_weights[j] - 0.5 * (
            np.square(solved).sum(axis=0) + log_det + dim * np.log(2.0 * np.pi)
        )
    return out


def fitting_codes(encoder: keras.Model, images: np.ndarray, seed: int) -> np.ndarray:
    """The mean codes a mixture prior is fitted to: of at most ``PRIOR_FIT_IMAGES`` of
    ``images`` (chosen with ``seed`` when there are more), encoded a block at a time."""
    if len(images) > PRIOR_FIT_IMAGES:
        chosen = np.random.default_rng(seed).choice(len(images), PRIOR_FIT_IMAGES, replace=False)
        images = images[np.sort(chosen)]
    return np.concatenate(
        [
            mean_codes(encoder, images[start : start + _EVAL_BLOCK])
            for start in range(0, len(images), _EVAL_BLOCK)
        ]
    )


def prior_codes(latent_dim: int, count: int, seed: int, prior: MixturePrior | None) -> np.ndarray:
    """``count`` codes drawn with ``seed``: from the fitted ``prior``, or N(0, I) without one."""
    if prior is not None:
        return prior.sample(count, seed)
    return np.random.default_rng(seed).normal(size=(count, latent_dim)).astype(np.float32)


def prior_samples(
    decoder: keras.Model, count: int, seed: int, prior: MixturePrior | None = None
) -> np.ndarray:
    """``count`` images decoded from codes drawn from the prior with ``seed`` (the fitted
    mixture ``prior``, or N(0, I)), as rows of 784 pixels."""
    latent_dim = int(decoder.inputs[0].shape[-1])
    codes = prior_codes(latent_dim, count, seed, prior)
    return np.asarray(decoder(codes, training=False)).reshape(count, PIXELS)


def exported_prior(export: keras.Model) -> MixturePrior | None:
    """The fitted mixture an exported VAE carries, or None (it samples from N(0, I))."""
    try:
        layer = export.get_layer("prior")
    except ValueError:
        return None
    return layer if isinstance(layer, MixturePrior) else None


def mean_codes(encoder: keras.Model, images: np.ndarray) -> np.ndarray:
    """The posterior means of ``images``' codes."""
    z_mean, _ = encoder(np.asarray(images, np.float32).reshape(-1, PIXELS), training=False)
    return np.asarray(z_mean)


def elbo_scores(
    encoder: keras.Model, decoder: keras.Model, x: np.ndarray, split: str, seed: int
) -> dict[str, float]:
    """On ``x``: the MSE of reconstructions decoded from the mean codes, and the ELBO's terms
    per image (reconstruction through one code sampled with ``seed``, KL, and the ELBO), a block
    of images at a time."""
    rng = np.random.default_rng(seed)
    squared = reconstruction = kl = 0.0
    for start in range(0, len(x), _EVAL_BLOCK):
        block = x[start : start + _EVAL_BLOCK]
        z_mean, z_log_var = (np.asarray(t, np.float64) for t in encoder(block, training=False))
        from_mean = np.asarray(decoder(z_mean.astype(np.float32), training=False), np.float64)
        squared += float(np.sum(np.square(from_mean - block)))
        z = z_mean + np.exp(0.5 * z_log_var) * rng.normal(size=z_mean.shape)
        p = np.asarray(decoder(z.astype(np.float32), training=False), np.float64)
        p = np.clip(p, _EPSILON, 1.0 - _EPSILON)
        reconstruction -= float(np.sum(block * np.log(p) + (1.0 - block) * np.log(1.0 - p)))
        kl -= 0.5 * float(np.sum(1.0 + z_log_var - np.square(z_mean) - np.exp(z_log_var)))
    count = max(len(x), 1)
    return {
        f"{split}_mse": squared / max(x.size, 1),
        f"{split}_reconstruction_loss": reconstruction / count,
        f"{split}_kl_loss": kl / count,
        f"{split}_elbo": -(reconstruction + kl) / count,
    }
