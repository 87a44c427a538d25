"""The GAN's options in the engine: networks, a few training steps, results, sampling by digit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shared.job_specs import validate_sample_params, validate_training_spec

pytest.importorskip("tensorflow")

from tests.workers.test_engine import MemoryReporter  # noqa: E402
from workers.engine.data import Arrays, load_arrays  # noqa: E402
from workers.engine.gan_parts import is_conditional  # noqa: E402
from workers.engine.kinds import KINDS  # noqa: E402
from workers.engine.reporter import UserError  # noqa: E402
from workers.engine.training import train  # noqa: E402

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mnist_5k.npz"
SMALL = {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "sample_every": 0}
# The grids are drawn with 2×2 px per pixel.
CELL = 28 * 2


@pytest.fixture(scope="module")
def arrays() -> Arrays:
    return load_arrays(FIXTURE, max_train_images=512)


def gan_params(**overrides: Any) -> dict[str, Any]:
    return validate_training_spec("gan", {**SMALL, "quality_samples": 0, **overrides})


def png_shape(data: bytes) -> tuple[int, int]:
    """Height and width in pixels."""
    width, height = Image.open(io.BytesIO(data)).size
    return height, width


@pytest.mark.parametrize(
    "options",
    [
        {"architecture": "dcgan"},
        {"loss": "hinge"},
        {"conditional": True},
        {"architecture": "dcgan", "loss": "hinge", "conditional": True, "ema": 0.9},
    ],
)
def test_each_option_trains_a_few_steps(arrays: Arrays, options: dict[str, Any]) -> None:
    params = gan_params(**options)
    kind = KINDS["gan"]
    built = kind.build(params)
    assert is_conditional(built.export) == params["conditional"]
    before_d = [w.numpy().copy() for w in built.model.discriminator.trainable_weights]
    before_g = [w.numpy().copy() for w in built.model.generator.trainable_weights]
    plan = kind.plan(arrays, params, params["batch_size"])
    history = built.model.fit(plan.train, epochs=1, steps_per_epoch=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_acc"}
    assert all(np.isfinite(values[-1]) for values in history.history.values()), history.history
    after_d = built.model.discriminator.trainable_weights
    after_g = built.model.generator.trainable_weights
    # Every weight moves (an embedding only in the rows of labels seen: compare whole arrays),
    # but the hinge discriminator's output bias: while every score is within (-1, 1) its
    # gradients from the real and the fake half cancel exactly.
    moved_d = [not np.allclose(a, b.numpy()) for a, b in zip(before_d, after_d, strict=True)]
    still = [w.path for w, moved in zip(after_d, moved_d, strict=True) if not moved]
    assert still == (["real/bias"] if params["loss"] == "hinge" else []) or all(moved_d), still
    assert all(not np.allclose(a, b.numpy()) for a, b in zip(before_g, after_g, strict=True))
    if params["architecture"] == "dcgan":
        assert built.optimizers[0].beta_1 == built.optimizers[1].beta_1 == 0.5
        # The discriminator sees the generator's training-mode images, as the generator trains
        # on (its inference mode's lagging BatchNorm statistics collapsed a conditional GAN).
        assert built.model.fakes_in_training_mode
        layers = {layer.name for layer in built.model.discriminator.layers}
        assert {"bn_2", "act_2"} <= layers
    if params["loss"] == "hinge":
        # A raw score, not a probability: the last layer has no sigmoid.
        output = built.model.discriminator.layers[-1]
        assert getattr(output, "activation", None) is not keras_sigmoid()


def keras_sigmoid() -> Any:
    import keras

    return keras.activations.sigmoid


def test_the_seed_defaults_build_the_seeds_networks() -> None:
    built = KINDS["gan"].build(gan_params())
    assert built.model.discriminator.count_params() == 1_030_145
    assert built.model.generator.count_params() == 180_673
    assert built.export is built.model.generator and not is_conditional(built.export)
    assert built.optimizers[0].beta_1 == 0.9 and built.model.split_halves is False
    assert built.model.fakes_in_training_mode is False  # the seed's predict: inference mode


def test_results_name_the_generator_and_a_conditional_ones_accuracy(arrays: Arrays) -> None:
    plain = train("gan", arrays, gan_params(quality_samples=40), MemoryReporter())
    assert plain.results["generator"] == "raw" and "conditional_accuracy" not in plain.results
    averaged = train("gan", arrays, gan_params(quality_samples=40, ema=0.9), MemoryReporter())
    assert averaged.results["generator"] == "ema"

    reporter = MemoryReporter()
    params = gan_params(quality_samples=40, conditional=True)
    results = train("gan", arrays, params, reporter).results
    assert results["generator"] == "raw" and results["samples"] == 40
    assert 0.0 <= results["conditional_accuracy"] <= 1.0
    assert set(results["conditional_accuracy_by_digit"]) == {str(d) for d in range(10)}
    # The final grid: a row of 10 per digit.
    assert png_shape(reporter.files["samples/generated.png"]) == (10 * CELL, 10 * CELL)
    assert "model.keras" in reporter.files


def test_conditional_without_labels_is_a_user_error(arrays: Arrays) -> None:
    unlabelled = Arrays(arrays.x_train, None, arrays.x_test, None)
    params = gan_params(conditional=True)
    with pytest.raises(UserError, match="y_train"):
        train("gan", unlabelled, params, MemoryReporter())


def test_a_conditional_sampling_job_draws_a_row_per_digit(tmp_path: Path) -> None:
    trained_with = gan_params(conditional=True)
    model = KINDS["gan"].build(trained_with).export
    kind = KINDS["gan"]
    params = validate_sample_params({"digits": [7, 3, 7], "count": 5}, "gan", trained_with)
    files = kind.sample(model, None, params, trained_with)
    assert png_shape(files["samples/grid.png"]) == (3 * CELL, 5 * CELL)
    assert png_shape(files["samples/interpolation.png"]) == (CELL, 10 * CELL)
    every = validate_sample_params({"digits": "all", "count": 4}, "gan", trained_with)
    assert png_shape(kind.sample(model, None, every, trained_with)["samples/grid.png"]) == (
        10 * CELL,
        4 * CELL,
    )
    # Without digits: count samples of digits 0-9 in turn, in a square grid (3×3 for 9).
    plain = validate_sample_params({"count": 9}, "gan", trained_with)
    assert png_shape(kind.sample(model, None, plain, trained_with)["samples/grid.png"]) == (
        3 * CELL,
        3 * CELL,
    )
    # The exported model round trips through model.keras loaded safely, two inputs and all.
    import keras

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    assert is_conditional(loaded)
    assert png_shape(kind.sample(loaded, None, params, trained_with)["samples/grid.png"]) == (
        3 * CELL,
        5 * CELL,
    )


def test_digits_of_an_unconditional_model_are_a_user_error() -> None:
    trained_with = gan_params()
    model = KINDS["gan"].build(trained_with).export
    with pytest.raises(UserError, match="conditional"):
        KINDS["gan"].sample(model, None, {"count": 2, "seed": 0, "digits": [1]}, trained_with)


def test_the_moving_average_warms_up() -> None:
    """Decay min(ema, (1 + t) / (10 + t)) at step t; the first step copies the weights."""
    import keras

    from workers.engine.gan_parts import WarmupEmaAdam

    optimizer = WarmupEmaAdam(1e-3, use_ema=True, ema_momentum=0.999)
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer.build([variable])
    expected = 0.0
    for step in range(4):
        value = float(step + 1)
        variable.assign(np.full(3, value, np.float32))
        # A zero gradient leaves Adam's weights where they are: only the average moves.
        optimizer.apply_gradients([(np.zeros(3, np.float32), variable)])
        decay = 0.0 if step == 0 else min(0.999, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * value
        average = optimizer._model_variables_moving_average[0].numpy()
        np.testing.assert_allclose(average, np.full(3, expected), rtol=1e-6)
