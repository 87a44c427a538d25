"""The seed lecture's plain Keras scripts, as the baseline of ``bench/engine_vs_seed.py``.

Each function is the seed's code for one model with the seed's defaults, parameterised only by
the data, the number of epochs (or steps) and a timing hook:

* ``classifier``, ``autoencoder``, ``denoiser``: plain ``model.fit`` on NumPy arrays under Keras 3
  (the package the service uses), timed per epoch by ``EpochTimer``;
* ``gan_loop``: the seed's Python loop of ``generator.predict`` + ``discriminator.train_on_batch``
  + ``adversarial.train_on_batch``. It only trains the discriminator under Keras 2 semantics, so it
  must run in a process started with ``TF_USE_LEGACY_KERAS=1`` and takes ``tf_keras`` as its
  ``keras`` argument (``python bench/seed_scripts.py gan`` does both checks).

``verbose=0`` everywhere: the seed's progress bars are I/O, not training, and leaving them out
can only make the baseline faster.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_5k.npz"

LATENT_DIM = 32
GAN_BATCH = 128
GAN_LEARNING_RATE = 0.0004
NOISE_FACTOR = 0.55


def load_digits(path: Path = FIXTURE) -> dict[str, np.ndarray]:
    """The seed's preprocessing: float32 in [0, 1], flattened to 784 pixels."""
    with np.load(path, allow_pickle=False) as npz:
        return {
            "x_train": npz["x_train"].reshape(-1, 784).astype("float32") / 255.0,
            "y_train": npz["y_train"].astype("int64"),
            "x_test": npz["x_test"].reshape(-1, 784).astype("float32") / 255.0,
            "y_test": npz["y_test"].astype("int64"),
        }


def epoch_timer(keras: Any, meter: Any = None) -> Any:
    """A callback recording each epoch's seconds (begin → end, validation included), the wall
    time between consecutive epoch ends and, with a ``meter`` (``reset()``, ``share()``,
    ``own_seconds()``), the CPU share other processes took and the CPU seconds this process used
    in each of those intervals (instrumentation, not the seed's)."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.ends: list[float] = []
            self.foreign: list[float] = []
            self.cpu: list[float] = []
            self._began = 0.0

        def on_train_begin(self, logs: Any = None) -> None:
            self.ends.append(time.perf_counter())
            if meter is not None:
                meter.reset()

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            now = time.perf_counter()
            self.seconds.append(now - self._began)
            self.ends.append(now)
            if meter is not None:
                self.foreign.append(meter.share())
                self.cpu.append(meter.own_seconds())
                meter.reset()

    return EpochTimer()


def classifier(data: dict[str, np.ndarray], epochs: int, callbacks: list[Any]) -> Any:
    """The seed's functional-API classifier: Dense 64/64/10, RMSprop, batch 64, split 0.2."""
    import keras

    inputs = keras.Input(shape=(784,), name="digits")
    x = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = keras.layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = keras.layers.Dense(10, name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.RMSprop(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model.fit(
        data["x_train"],
        data["y_train"],
        batch_size=64,
        epochs=epochs,
        validation_split=0.2,
        callbacks=callbacks,
        verbose=0,
    )


def _dense_autoencoder(keras: Any) -> Any:
    input_img = keras.Input(shape=(784,))
    encoded = keras.layers.Dense(32, activation="relu")(input_img)
    decoded = keras.layers.Dense(784, activation="sigmoid")(encoded)
    autoencoder = keras.Model(input_img, decoded)
    autoencoder.compile(optimizer="adam", loss="mse")
    return autoencoder


def autoencoder(data: dict[str, np.ndarray], epochs: int, callbacks: list[Any]) -> Any:
    """The seed's dense autoencoder 784-32-784: Adam, MSE, batch 256, shuffle, test validation."""
    import keras

    model = _dense_autoencoder(keras)
    x_train, x_test = data["x_train"], data["x_test"]
    return model.fit(
        x_train,
        x_train,
        epochs=epochs,
        batch_size=256,
        shuffle=True,
        validation_data=(x_test, x_test),
        callbacks=callbacks,
        verbose=0,
    )


def denoiser(data: dict[str, np.ndarray], epochs: int, callbacks: list[Any]) -> Any:
    """The same network on inputs with Gaussian noise times 0.55, not clipped (as the seed)."""
    import keras

    x_train, x_test = data["x_train"], data["x_test"]
    x_train_noisy = x_train + NOISE_FACTOR * np.random.normal(0.0, 1.0, size=x_train.shape)
    x_test_noisy = x_test + NOISE_FACTOR * np.random.normal(0.0, 1.0, size=x_test.shape)
    x_train_noisy = x_train_noisy.astype("float32")
    x_test_noisy = x_test_noisy.astype("float32")
    model = _dense_autoencoder(keras)
    return model.fit(
        x_train_noisy,
        x_train,
        epochs=epochs,
        batch_size=256,
        shuffle=True,
        validation_data=(x_test_noisy, x_test),
        callbacks=callbacks,
        verbose=0,
    )


SEED_FITS = {"classifier": classifier, "autoencoder": autoencoder, "denoiser": denoiser}


def gan_networks(keras: Any) -> tuple[Any, Any, Any]:
    """The seed's discriminator, generator and adversarial model, compiled the seed's way:
    the discriminator is compiled, then frozen before the combined model is compiled (a Keras 2
    idiom: only ``tf_keras`` freezes ``trainable`` at compile time)."""
    layers = keras.layers
    depth, dropout = 64, 0.4

    discriminator = keras.Sequential(name="discriminator")
    discriminator.add(keras.Input(shape=(28, 28, 1)))
    for filters in (depth, depth * 2, depth * 4):
        discriminator.add(layers.Conv2D(filters, 5, strides=2, padding="same", activation="relu"))
        discriminator.add(layers.Dropout(dropout))
    discriminator.add(layers.Flatten())
    discriminator.add(layers.Dense(1, activation="sigmoid"))

    generator = keras.Sequential(name="generator")
    generator.add(keras.Input(shape=(LATENT_DIM,)))
    generator.add(layers.Dense(7 * 7 * depth))
    generator.add(layers.BatchNormalization(momentum=0.9))
    generator.add(layers.LeakyReLU())
    generator.add(layers.Reshape((7, 7, depth)))
    generator.add(layers.Dropout(dropout))
    for filters in (depth // 2, depth // 4):
        generator.add(layers.UpSampling2D())
        generator.add(layers.Conv2DTranspose(filters, 5, padding="same"))
        generator.add(layers.BatchNormalization(momentum=0.9))
        generator.add(layers.LeakyReLU())
    generator.add(layers.Conv2D(1, 5, padding="same", activation="sigmoid"))

    # learning_rate=, not the seed's lr= (tf_keras silently ignores lr and keeps 0.001).
    discriminator.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=GAN_LEARNING_RATE),
        metrics=["accuracy"],
    )
    discriminator.trainable = False
    adversarial = keras.Sequential([generator, discriminator], name="adversarial")
    adversarial.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=GAN_LEARNING_RATE),
        metrics=["accuracy"],
    )
    return discriminator, generator, adversarial


def gan_loop(
    keras: Any, x_train: np.ndarray, steps: int, batch_size: int = GAN_BATCH, meter: Any = None
) -> dict[str, Any]:
    """The seed's training loop for ``steps`` steps; returns per-step and per-part seconds (and,
    with a ``meter``, other processes' CPU share during each step)."""
    discriminator, generator, adversarial = gan_networks(keras)
    images = x_train.reshape(-1, 28, 28, 1)
    d_before = [w.copy() for w in discriminator.get_weights()]
    parts: dict[str, list[float]] = {"predict": [], "d_train": [], "a_train": []}
    step_seconds: list[float] = []
    foreign: list[float] = []
    cpu: list[float] = []
    for _ in range(steps):
        if meter is not None:
            meter.reset()
        t0 = time.perf_counter()
        real = images[np.random.randint(0, images.shape[0], size=batch_size)]
        noise = np.random.uniform(-1.0, 1.0, size=[batch_size, LATENT_DIM])
        fake = generator.predict(noise, verbose=0)
        t1 = time.perf_counter()
        x = np.concatenate((real, fake))
        y = np.ones([2 * batch_size, 1])
        y[batch_size:, :] = 0
        discriminator.train_on_batch(x, y)
        t2 = time.perf_counter()
        y = np.ones([batch_size, 1])
        noise = np.random.uniform(-1.0, 1.0, size=[batch_size, LATENT_DIM])
        adversarial.train_on_batch(noise, y)
        t3 = time.perf_counter()
        parts["predict"].append(t1 - t0)
        parts["d_train"].append(t2 - t1)
        parts["a_train"].append(t3 - t2)
        step_seconds.append(t3 - t0)
        if meter is not None:
            foreign.append(meter.share())
            cpu.append(meter.own_seconds())
    d_after = discriminator.get_weights()
    return {
        "step_seconds": step_seconds,
        "foreign": foreign,
        "cpu": cpu,
        "parts": parts,
        "discriminator_trained": all(
            not np.allclose(a, b) for a, b in zip(d_before, d_after, strict=True)
        ),
        "params": [discriminator.count_params(), generator.count_params()],
    }


def main() -> None:
    """``python bench/seed_scripts.py gan STEPS``: the seed's GAN loop under ``tf_keras``, as
    one JSON line on stdout."""
    if len(sys.argv) != 3 or sys.argv[1] != "gan":
        sys.exit("usage: seed_scripts.py gan STEPS   (with TF_USE_LEGACY_KERAS=1)")
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("run with TF_USE_LEGACY_KERAS=1: the seed's GAN needs Keras 2 semantics")
    import tf_keras
    from engine_vs_seed import ForeignLoad

    np.random.seed(0)
    tf_keras.utils.set_random_seed(0)
    result = gan_loop(tf_keras, load_digits()["x_train"], int(sys.argv[2]), meter=ForeignLoad())
    result["keras"] = f"tf_keras {tf_keras.__version__}"
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
