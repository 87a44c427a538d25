"""The seed's GAN as a ``keras.Model`` with its own compiled ``train_step``, and its options: the
hinge loss, class-conditional networks, and real and fake halves judged apart (for a
discriminator with BatchNorm).

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
    """Discriminator trained on a real and a fake half, then the generator through it.

    ``loss`` is ``bce`` (the seed's: a sigmoid discriminator) or ``hinge`` (a raw score);
    ``conditional`` networks take ``(input, label)`` and the batches are ``(images, labels)``;
    ``split_halves`` judges the real and the fake half in two calls, so that a discriminator's
    BatchNorm never mixes them (the seed's discriminator has none and judges them together);
    ``fakes_in_training_mode`` draws the discriminator's fakes from the generator in training
    mode, as its own step draws them (the seed draws them in inference mode, as its ``predict``
    did: a generator with BatchNorm then shows the discriminator other images than it trains on,
    from moving statistics that lag behind).
    """

    def __init__(
        self,
        discriminator: keras.Model,
        generator: keras.Model,
        latent_dim: int,
        loss: str = "bce",
        conditional: bool = False,
        split_halves: bool = False,
        fakes_in_training_mode: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.loss_name = loss
        self.conditional = conditional
        self.split_halves = split_halves
        self.fakes_in_training_mode = fakes_in_training_mode
        self.bce = keras.losses.BinaryCrossentropy()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        # A hinge discriminator's score says "real" above 0, a probability above 0.5.
        threshold = 0.0 if loss == "hinge" else 0.5
        self.d_accuracy = keras.metrics.BinaryAccuracy(name="d_acc", threshold=threshold)
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

    def call(self, inputs: Any, training: bool = False) -> tf.Tensor:
        """Generate images from latent vectors (and labels, when conditional)."""
        return self.generator(inputs, training=training)

    def _replica_scaled(self, loss: tf.Tensor) -> tf.Tensor:
        # Gradients are summed over replicas, so each replica's mean loss is divided by their count.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / tf.cast(replicas, loss.dtype)

    def _generate(self, batch: Any, labels: tf.Tensor | None, training: bool) -> tf.Tensor:
        latent = latent_noise(batch, self.latent_dim, self.seed_generator)
        return self.generator(latent if labels is None else [latent, labels], training=training)

    def _judge(self, images: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        inputs = images if labels is None else [images, labels]
        return self.discriminator(inputs, training=True)

    def _d_loss(
        self, real: tf.Tensor, fake: tf.Tensor, labels: tf.Tensor | None, targets: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The discriminator's loss and its outputs for the real half, then the fake one."""
        if self.split_halves:
            predictions = tf.concat([self._judge(real, labels), self._judge(fake, labels)], 0)
        else:
            both = None if labels is None else tf.concat([labels, labels], axis=0)
            predictions = self._judge(tf.concat([real, fake], axis=0), both)
        if self.loss_name == "hinge":
            on_real, on_fake = tf.split(predictions, 2, axis=0)
            loss = tf.reduce_mean(tf.nn.relu(1.0 - on_real)) + tf.reduce_mean(
                tf.nn.relu(1.0 + on_fake)
            )
            return loss, predictions
        return self.bce(targets, predictions), predictions

    def _g_loss(self, judged: tf.Tensor) -> tf.Tensor:
        if self.loss_name == "hinge":
            return -tf.reduce_mean(judged)
        return self.bce(tf.ones_like(judged), judged)

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        """One seed step: D on real + fake (generated in inference mode, as the seed's
        ``predict``, unless ``fakes_in_training_mode``), then G through D with 'real' labels.
        A conditional batch is ``(images, labels)``; its fakes are drawn for the same labels."""
        real, labels = data if self.conditional else (data, None)
        batch = tf.shape(real)[0]
        fake = self._generate(batch, labels, training=self.fakes_in_training_mode)
        fake = tf.cast(fake, real.dtype)
        real_label = 1.0 - self.label_smoothing
        targets = tf.concat([tf.fill((batch, 1), real_label), tf.zeros((batch, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss, predictions = self._d_loss(real, fake, labels, targets)
            scaled = self.d_optimizer.scale_loss(self._replica_scaled(d_loss))
        grads = tape.gradient(scaled, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights, strict=True)
        )

        with tf.GradientTape() as tape:
            judged = self._judge(self._generate(batch, labels, training=True), labels)
            g_loss = self._g_loss(judged)
            scaled = self.g_optimizer.scale_loss(self._replica_scaled(g_loss))
        grads = tape.gradient(scaled, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_accuracy.update_state(tf.round(targets), predictions)
        return {m.name: m.result() for m in self.metrics}
