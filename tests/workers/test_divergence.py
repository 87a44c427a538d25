"""Jobs that cannot succeed fail at once as the user's error (not retried): a loss that stops
being finite, a GAN whose quality cannot be scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.job_specs import validate_training_spec

pytest.importorskip("tensorflow")

from tests.workers.test_engine import MemoryReporter  # noqa: E402
from workers.engine.data import Arrays  # noqa: E402
from workers.engine.reporter import UserError  # noqa: E402
from workers.engine.training import train  # noqa: E402


def test_a_nan_loss_is_the_users_error_and_nothing_is_checkpointed(mnist_path: Path) -> None:
    with np.load(mnist_path) as data:
        x = data["x_train"][:512].reshape(-1, 784).astype(np.float32) / 255.0
    x[7, 100] = np.nan  # one bad pixel poisons the loss of its batch, then the weights
    arrays = Arrays(x_train=x, y_train=None, x_test=None, y_test=None)
    reporter = MemoryReporter()
    params = validate_training_spec("autoencoder", {"epochs": 3, "batch_size": 64})
    with pytest.raises(UserError, match="loss became nan .*diverged"):
        train("autoencoder", arrays, params, reporter)
    assert reporter.epochs == []
    assert "checkpoints/latest.npz" not in reporter.files


def test_a_gan_that_could_not_be_scored_fails_before_training(mnist_path: Path) -> None:
    # A job queued before quality_samples was bounded, on a dataset with one held-out image.
    with np.load(mnist_path) as data:
        x = data["x_train"][:256].reshape(-1, 784).astype(np.float32) / 255.0
    arrays = Arrays(x_train=x, y_train=None, x_test=x[:1], y_test=None)
    reporter = MemoryReporter()
    params = validate_training_spec("gan", {"steps": 10, "batch_size": 16})
    with pytest.raises(UserError, match="held-out images"):
        train("gan", arrays, params, reporter)
    assert reporter.epochs == []
