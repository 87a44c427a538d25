"""The training engine on real digits, with an in-memory reporter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.job_specs import validate_training_spec

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from workers.engine.data import Arrays, load_arrays  # noqa: E402
from workers.engine.models import (  # noqa: E402
    build_autoencoder,
    build_classifier,
    build_discriminator,
    build_generator,
)
from workers.engine.reporter import UserError  # noqa: E402
from workers.engine.training import train  # noqa: E402

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mnist_5k.npz"


class MemoryReporter:
    """Keeps what the engine reports; asks to stop after ``stop_after`` epochs if set."""

    attempt = 1

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.epochs: list[tuple[int, dict[str, float], float]] = []
        self.files: dict[str, bytes] = {}
        self.start: tuple[int, int, int] | None = None

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        self.start = (param_count, replicas, global_batch_size)

    def epoch_done(self, step, values, seconds, progress, eta) -> None:  # type: ignore[no-untyped-def]
        self.epochs.append((step, values, progress))

    def epoch_replayed(self, step, values, seconds, progress, eta) -> None:  # type: ignore[no-untyped-def]
        if all(recorded != step for recorded, _, _ in self.epochs):
            self.epochs.append((step, values, progress))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.epochs) >= self.stop_after

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        self.files[name] = path.read_bytes()

    def save_bytes(self, name: str, data: bytes, content_type: str) -> None:
        self.files[name] = data

    def load_file(self, name: str, path: Path) -> bool:
        if name not in self.files:
            return False
        path.write_bytes(self.files[name])
        return True


@pytest.fixture(scope="module")
def arrays(mnist_path: Path) -> Arrays:
    return load_arrays(mnist_path)


def test_builders_have_the_seeds_parameter_counts() -> None:
    assert build_classifier().count_params() == 55_050
    assert build_autoencoder().count_params() == 50_992
    assert build_discriminator().count_params() == 1_030_145
    assert build_generator().count_params() == 180_673


def test_autoencoder_learns_on_real_digits(arrays: Arrays) -> None:
    params = validate_training_spec("autoencoder", {"epochs": 5, "sample_every": 2})
    reporter = MemoryReporter()
    outcome = train("autoencoder", arrays, params, reporter)
    assert reporter.start == (50_992, 1, 256)
    assert [step for step, _, _ in reporter.epochs] == [1, 2, 3, 4, 5]
    losses = [values["loss"] for _, values, _ in reporter.epochs]
    assert losses[-1] < 0.7 * losses[0]
    assert "val_loss" in reporter.epochs[0][1]
    assert reporter.epochs[-1][2] == pytest.approx(1.0)
    assert not outcome.stopped
    assert outcome.results["split"] == "test"
    assert outcome.results["test_mse"] < 0.07
    assert outcome.results["test_psnr_db"] > 11.5
    assert 0 < outcome.results["test_ssim"] < 1
    board = [name for name in reporter.files if name.startswith("tensorboard/")]
    assert len(board) == 1  # its TensorBoard file: tests/workers/test_tensorboard_log.py
    assert set(reporter.files) - set(board) == {
        "samples/epoch-000002.png",
        "samples/epoch-000004.png",
        "samples/reconstructions.png",
        "checkpoints/latest.npz",
        "model.keras",
    }


def test_classifier_beats_chance(arrays: Arrays) -> None:
    reporter = MemoryReporter()
    outcome = train("classifier", arrays, validate_training_spec("classifier", {}), reporter)
    assert reporter.start == (55_050, 1, 64)
    assert [step for step, _, _ in reporter.epochs] == [1, 2]
    assert "val_accuracy" in reporter.epochs[-1][1]
    assert outcome.results["test_accuracy"] > 0.6  # chance is 0.1
    assert "samples/predictions.png" in reporter.files


def test_denoiser_output_is_cleaner_than_its_input(arrays: Arrays) -> None:
    params = validate_training_spec("denoiser", {"epochs": 4})
    outcome = train("denoiser", arrays, params, MemoryReporter())
    results = outcome.results
    # The seed's noise, unclipped: MSE 0.55 ** 2, 5.2 dB (clipped it would be 8.8 dB).
    assert results["test_noisy_psnr_db"] == pytest.approx(5.2, abs=0.3)
    assert results["test_psnr_gain_db"] > 1.0
    assert results["test_psnr_db"] > results["test_noisy_psnr_db"]


def test_gan_trains_both_networks(arrays: Arrays) -> None:
    from workers.engine.kinds import KINDS

    params = validate_training_spec(
        "gan", {"steps": 6, "steps_per_epoch": 3, "quality_samples": 200, "max_train_images": 512}
    )
    kind = KINDS["gan"]
    built = kind.build(params)
    before_d = [w.numpy().copy() for w in built.model.discriminator.trainable_weights]
    before_g = [w.numpy().copy() for w in built.model.generator.trainable_weights]
    plan = kind.plan(arrays, params, params["batch_size"])
    history = built.model.fit(plan.train, epochs=1, steps_per_epoch=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_acc"}
    after_d = built.model.discriminator.trainable_weights
    after_g = built.model.generator.trainable_weights
    assert all(not np.allclose(a, b.numpy()) for a, b in zip(before_d, after_d, strict=True))
    assert all(not np.allclose(a, b.numpy()) for a, b in zip(before_g, after_g, strict=True))

    reporter = MemoryReporter()
    outcome = train("gan", arrays, params, reporter)
    assert reporter.start is not None and reporter.start[0] == 1_030_145 + 180_673
    assert [step for step, _, _ in reporter.epochs] == [3, 6]
    assert outcome.results["samples"] == 200
    assert set(outcome.results["digit_shares"]) == {str(d) for d in range(10)}
    assert "samples/generated.png" in reporter.files


def small_split(arrays: Arrays, train: int, test: int) -> Arrays:
    """The first ``train`` training and ``test`` test digits (keeps the VAE's tests short)."""
    assert arrays.x_test is not None
    return Arrays(arrays.x_train[:train], None, arrays.x_test[:test], None)


def test_vae_learns_on_real_digits(arrays: Arrays) -> None:
    params = validate_training_spec(
        "vae", {"epochs": 3, "batch_size": 64, "latent_dim": 8, "quality_samples": 100}
    )
    reporter = MemoryReporter()
    outcome = train("vae", small_split(arrays, 1000, 200), params, reporter)
    assert [step for step, _, _ in reporter.epochs] == [1, 2, 3]
    first, last = reporter.epochs[0][1], reporter.epochs[-1][1]
    terms = {"loss", "reconstruction_loss", "kl_loss"}
    assert set(first) == terms | {f"val_{name}" for name in terms}
    assert last["loss"] < 0.8 * first["loss"]
    assert last["val_loss"] < first["val_loss"]
    # beta 1: the loss is the negative ELBO, its two terms summed.
    assert last["loss"] == pytest.approx(last["reconstruction_loss"] + last["kl_loss"], rel=1e-4)
    assert last["kl_loss"] > 0

    results = outcome.results
    assert results["split"] == "test" and results["evaluated_images"] == 200
    assert 0 < results["test_mse"] < 0.1
    assert results["test_kl_loss"] > 0 and results["test_reconstruction_loss"] > 0
    assert results["test_elbo"] == pytest.approx(
        -(results["test_reconstruction_loss"] + results["test_kl_loss"])
    )
    # One code sampled per image, as in training: close to the last epoch's validation figure.
    assert results["test_reconstruction_loss"] == pytest.approx(
        last["val_reconstruction_loss"], rel=0.1
    )
    assert results["samples"] == 100 and results["fid"] > 0
    assert results["prior"] == "standard"  # scored on codes from N(0, I)
    assert 1 <= results["classifier_score"] <= 10
    assert sum(results["digit_shares"].values()) == pytest.approx(1.0)
    assert {"samples/generated.png", "model.keras", "checkpoints/latest.npz"} <= set(reporter.files)


def test_a_mixture_prior_vae_samples_from_a_mixture_fitted_to_its_training_codes(
    arrays: Arrays, tmp_path: Path
) -> None:
    """prior=mixture: after training, a mixture is fitted to the trained encoder's codes of the
    training split; it is saved inside model.keras and the quality figures come from it."""
    small = small_split(arrays, 600, 200)
    params = validate_training_spec(
        "vae",
        {
            "epochs": 2,
            "batch_size": 64,
            "latent_dim": 4,
            "prior": "mixture",
            "prior_components": 3,
            "quality_samples": 100,
        },
    )
    reporter = MemoryReporter()
    results = train("vae", small, params, reporter).results
    assert results["prior"] == "mixture" and results["samples"] == 100
    path = tmp_path / "model.keras"
    path.write_bytes(reporter.files["model.keras"])
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    prior = model.get_layer("prior")
    weights = np.exp(np.asarray(prior.log_weights))
    assert weights.shape == (3,) and weights.sum() == pytest.approx(1.0, rel=1e-4)
    means = np.asarray(prior.means)
    assert not np.allclose(means, 0.0)  # fitted, not the N(0, I) it starts as
    # EM's last step puts the mixture's mean at the codes' mean.
    codes = np.asarray(model.get_layer("encoder")(small.x_train)[0])
    np.testing.assert_allclose(weights @ means, codes.mean(axis=0), atol=1e-3)


def test_a_stopped_vae_resumes_close_to_an_uninterrupted_one(arrays: Arrays) -> None:
    """Killed after an epoch and resumed from its checkpoint: the same epochs recorded once, and
    a validation loss close to a run never stopped (the data order restarts from the seed)."""
    small = small_split(arrays, 512, 100)
    params = validate_training_spec(
        "vae", {"epochs": 3, "batch_size": 64, "latent_dim": 4, "quality_samples": 0}
    )
    whole = MemoryReporter()
    train("vae", small, params, whole)
    resumed = MemoryReporter(stop_after=1)
    assert train("vae", small, params, resumed).stopped
    resumed.stop_after = None
    assert not train("vae", small, params, resumed).stopped
    assert [step for step, _, _ in resumed.epochs] == [1, 2, 3]
    assert resumed.epochs[0][1] == pytest.approx(whole.epochs[0][1], rel=1e-3)  # same start
    assert resumed.epochs[-1][1]["val_loss"] == pytest.approx(
        whole.epochs[-1][1]["val_loss"], rel=0.05
    )


def test_a_restarted_job_resumes_after_its_last_completed_epoch(arrays: Arrays) -> None:
    small = load_arrays(FIXTURE, max_train_images=512)
    params = validate_training_spec("autoencoder", {"epochs": 5})
    reporter = MemoryReporter(stop_after=2)
    assert train("autoencoder", small, params, reporter).stopped
    first_loss = reporter.epochs[-1][1]["loss"]
    # The same job started again (same reporter: same artifacts), no longer asked to stop.
    reporter.stop_after = None
    outcome = train("autoencoder", small, params, reporter)
    assert not outcome.stopped
    assert [step for step, _, _ in reporter.epochs] == [1, 2, 3, 4, 5]  # 1-2 not repeated
    assert reporter.epochs[2][1]["loss"] < first_loss * 1.05  # continued, not from scratch


def test_cancel_stops_at_the_epoch_boundary(arrays: Arrays) -> None:
    small = load_arrays(FIXTURE, max_train_images=512)
    params = validate_training_spec("autoencoder", {"epochs": 50})
    reporter = MemoryReporter(stop_after=2)
    outcome = train("autoencoder", small, params, reporter)
    assert outcome.stopped
    assert [step for step, _, _ in reporter.epochs] == [1, 2]
    assert "model.keras" in reporter.files


def test_unknown_kind_is_a_user_error(arrays: Arrays) -> None:
    with pytest.raises(UserError):
        train("flow", arrays, {}, MemoryReporter())


def test_classifier_without_labels_is_a_user_error(arrays: Arrays) -> None:
    unlabelled = Arrays(arrays.x_train[:100], None, None, None)
    with pytest.raises(UserError, match="y_train"):
        train("classifier", unlabelled, validate_training_spec("classifier", {}), MemoryReporter())


def test_two_replicas_train_every_kind() -> None:
    """The CPU split into 2 logical devices: MirroredStrategy over both, and each kind learns."""
    script = Path(__file__).with_name("two_replicas.py")
    result = subprocess.run(
        [sys.executable, str(script), str(FIXTURE)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "replicas=2" in result.stdout
