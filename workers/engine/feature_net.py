"""A small pinned MNIST CNN whose 128-unit "features" layer is the space for GAN quality metrics.

The weights ship as ``assets/mnist_feature_net.npz`` (plain arrays in ``model.get_weights()`` order,
keys ``w000``, ``w001``, …). Rebuild them with ``python -m workers.engine.feature_net``: it trains
reproducibly on ``tests/fixtures/mnist_5k.npz`` and rewrites the asset.
"""

from __future__ import annotations

import threading
from pathlib import Path

import keras
import numpy as np
from keras import layers

ASSET_PATH = Path(__file__).parent / "assets" / "mnist_feature_net.npz"
FIXTURE_PATH = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mnist_5k.npz"
FEATURE_DIM = 128
NUM_CLASSES = 10
BATCH_SIZE = 1000
TRAIN_SEED = 0
TRAIN_EPOCHS = 8
TRAIN_BATCH_SIZE = 64
TRAIN_LEARNING_RATE = 1e-3

_lock = threading.Lock()
_model: keras.Model | None = None
_extractor: keras.Model | None = None


def build_feature_net() -> keras.Model:
    """Untrained: 784 → 28×28×1 → two conv/pool stages → 128 features → 10 logits."""
    inputs = keras.Input(shape=(784,), name="image")
    x = layers.Reshape((28, 28, 1), name="to_2d")(inputs)
    x = layers.Conv2D(16, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    features = layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    logits = layers.Dense(NUM_CLASSES, name="logits")(features)
    return keras.Model(inputs, logits, name="mnist_feature_net")


def save_weights(model: keras.Model, path: Path = ASSET_PATH) -> None:
    """Write the model's weights as a plain compressed npz (``w000``, ``w001``, … in order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        f"w{i:03d}": np.asarray(w, dtype=np.float32) for i, w in enumerate(model.get_weights())
    }
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def _read_weights(path: Path) -> list[np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"feature net weights missing at {path} (not packaged? rebuild them with "
            "`python -m workers.engine.feature_net`)"
        )
    with np.load(path, allow_pickle=False) as npz:
        return [npz[f"w{i:03d}"] for i in range(len(npz.files))]


def load_feature_net(path: Path = ASSET_PATH) -> keras.Model:
    """The feature net with the committed weights; built and loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            model = build_feature_net()
            weights = _read_weights(path)
            expected = [tuple(w.shape) for w in model.get_weights()]
            if [tuple(w.shape) for w in weights] != expected:
                raise ValueError(f"{path} does not hold weights for {model.name}")
            model.set_weights(weights)
            _model = model
        return _model


def feature_extractor() -> keras.Model:
    """The loaded net with two outputs: features (N, 128) and class probabilities (N, 10)."""
    global _extractor
    model = load_feature_net()
    with _lock:
        if _extractor is None:
            probs = layers.Softmax(name="probs")(model.output)
            _extractor = keras.Model(
                model.input, [model.get_layer("features").output, probs], name="feature_extractor"
            )
        return _extractor


def as_images(images: np.ndarray) -> np.ndarray:
    """Images (N, 784) or (N, 28, 28), uint8 or floats in [0, 1], as float32 rows of 784."""
    array = np.asarray(images)
    flat = array.reshape(len(array), -1)
    if flat.shape[1] != 784:
        raise ValueError(f"images must be 28×28, got shape {array.shape}")
    if array.dtype == np.uint8:
        return flat.astype(np.float32) / 255.0
    return flat.astype(np.float32)


def features_and_probs(
    images: np.ndarray, batch_size: int = BATCH_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 128) and class probabilities (N, 10) of images, computed in batches."""
    x = as_images(images)
    extractor = feature_extractor()
    features = np.empty((len(x), FEATURE_DIM), dtype=np.float32)
    probs = np.empty((len(x), NUM_CLASSES), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        stop = start + batch_size
        f, p = extractor(x[start:stop], training=False)
        features[start:stop] = keras.ops.convert_to_numpy(f)
        probs[start:stop] = keras.ops.convert_to_numpy(p)
    return features, probs


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose most probable class is the label."""
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))


def train_feature_net(
    x_train: np.ndarray, y_train: np.ndarray, epochs: int = TRAIN_EPOCHS
) -> keras.Model:
    """Train a fresh feature net reproducibly (seed 0, Adam, sparse cross-entropy)."""
    import tensorflow as tf

    keras.utils.set_random_seed(TRAIN_SEED)
    tf.config.experimental.enable_op_determinism()
    model = build_feature_net()
    model.compile(
        optimizer=keras.optimizers.Adam(TRAIN_LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        as_images(x_train),
        np.asarray(y_train, dtype=np.int64),
        epochs=epochs,
        batch_size=TRAIN_BATCH_SIZE,
        shuffle=True,
        verbose=2,
    )
    return model


def main() -> None:
    """Train on the fixture's training split, print test accuracy, write the weights asset."""
    with np.load(FIXTURE_PATH, allow_pickle=False) as npz:
        x_train, y_train = npz["x_train"], npz["y_train"]
        x_test, y_test = npz["x_test"], npz["y_test"]
    model = train_feature_net(x_train, y_train)
    logits = keras.ops.convert_to_numpy(model(as_images(x_test), training=False))
    print(f"parameters: {model.count_params()}")
    print(f"test accuracy: {accuracy(logits, y_test):.4f} on {len(x_test)} images")
    save_weights(model)
    print(f"wrote {ASSET_PATH} ({ASSET_PATH.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
