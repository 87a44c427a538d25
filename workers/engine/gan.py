"""The seed's GAN as a ``keras.Model`` with its own compiled ``train_step``.

Each network has its own optimizer and is trained on its own gradients, so no ``trainable``
toggling is needed (the seed's Keras-2 idiom leaves the discriminator untrained under Keras 3).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


def latent_noise(batch: Any, latent_dim: int, seed: Any = None) -> tf.Tensor:
    """Latent vectors drawn uniformly in [-1, 1], as the seed draws them."""
    return keras.random.uniform((batch, latent_dim), minval=-1.0, maxval=1.0, seed=seed)


class GAN(keras.Model):
    """Discriminator trained on a real and a fake half, then the generator through it."""

    def __init__(
        self, discriminator: keras.Model, generator: keras.Model, latent_dim: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.bce = keras.losses.BinaryCrossentropy()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_accuracy = keras.metrics.BinaryAccuracy(name="d_acc")
        self.seed_generator = keras.random.SeedGenerator(0)
        # Both parts are built by their functional constructors.
        self.built = True

    def compile(  # type: ignore[override]
        self,
        d_optimizer: keras.optimizers.Optimizer,
        g_optimizer: keras.optimizers.Optimizer,
        label_smoothing: float = 0.0,
        jit_compile: bool | str = False,
    ) -> None:
        """Attach one optimizer per network (built here, inside the strategy scope)."""
        super().compile(jit_compile=jit_compile)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.label_smoothing = label_smoothing
        # Under MirroredStrategy an optimizer left to build lazily inside train_step fails.
        d_optimizer.build(self.discriminator.trainable_weights)
        g_optimizer.build(self.generator.trainable_weights)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """Loss trackers, reset by ``fit`` each epoch."""
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_accuracy]

    def call(self, latent: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Generate images from latent vectors."""
        return self.generator(latent, training=training)

    def _replica_scaled(self, loss: tf.Tensor) -> tf.Tensor:
        # Gradients are summed over replicas, so each replica's mean loss is divided by their count.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / tf.cast(replicas, loss.dtype)

    def train_step(self, real: tf.Tensor) -> dict[str, tf.Tensor]:
        """One seed step: D on real + fake (generated in inference mode, as the seed's
        ``predict``), then G through D with 'real' labels."""
        batch = tf.shape(real)[0]
        fake = self.generator(
            latent_noise(batch, self.latent_dim, self.seed_generator), training=False
        )
        images = tf.concat([real, tf.cast(fake, real.dtype)], axis=0)
        real_label = 1.0 - self.label_smoothing
        labels = tf.concat([tf.fill((batch, 1), real_label), tf.zeros((batch, 1))], axis=0)
        with tf.GradientTape() as tape:
            predictions = self.discriminator(images, training=True)
            d_loss = self.bce(labels, predictions)
            scaled = self.d_optimizer.scale_loss(self._replica_scaled(d_loss))
        grads = tape.gradient(scaled, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights, strict=True)
        )

        latent = latent_noise(batch, self.latent_dim, self.seed_generator)
        with tf.GradientTape() as tape:
            judged = self.discriminator(self.generator(latent, training=True), training=True)
            g_loss = self.bce(tf.ones((batch, 1)), judged)
            scaled = self.g_optimizer.scale_loss(self._replica_scaled(g_loss))
        grads = tape.gradient(scaled, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_accuracy.update_state(tf.round(labels), predictions)
        return {m.name: m.result() for m in self.metrics}
