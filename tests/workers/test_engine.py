"""The training engine on real digits, with an in-memory reporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.job_specs import validate_training_spec

tf = pytest.importorskip("tensorflow")

from workers.engine.data import load_arrays  # noqa: E402
from workers.engine.reporter import UserError  # noqa: E402
from workers.engine.training import train  # noqa: E402


class MemoryReporter:
    """Keeps what the engine reports; asks to stop after ``stop_after`` epochs if set."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.epochs: list[tuple[int, dict[str, float], float]] = []
        self.files: dict[str, bytes] = {}
        self.start: tuple[int, int, int] | None = None

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        self.start = (param_count, replicas, global_batch_size)

    def epoch_done(self, step, values, seconds, progress, eta) -> None:  # type: ignore[no-untyped-def]
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


def test_autoencoder_learns_on_real_digits(mnist_path: Path) -> None:
    arrays = load_arrays(mnist_path)
    params = validate_training_spec("autoencoder", {"epochs": 5, "sample_every": 2})
    reporter = MemoryReporter()
    outcome = train("autoencoder", arrays, params, reporter)
    assert reporter.start == (50_992, 1, 256)  # the seed's parameter count
    assert [step for step, _, _ in reporter.epochs] == [1, 2, 3, 4, 5]
    losses = [values["loss"] for _, values, _ in reporter.epochs]
    assert losses[-1] < 0.7 * losses[0]
    assert "val_loss" in reporter.epochs[0][1]
    assert reporter.epochs[-1][2] == pytest.approx(1.0)
    assert not outcome.cancelled
    assert outcome.results["split"] == "test"
    assert outcome.results["test_mse"] < 0.07
    assert outcome.results["test_psnr_db"] > 11.5
    assert set(reporter.files) == {
        "samples/epoch-0002.png",
        "samples/epoch-0004.png",
        "samples/reconstructions.png",
        "model.keras",
    }


def test_cancel_stops_at_the_epoch_boundary(mnist_path: Path) -> None:
    arrays = load_arrays(mnist_path, max_train_images=512)
    params = validate_training_spec("autoencoder", {"epochs": 50})
    reporter = MemoryReporter(stop_after=2)
    outcome = train("autoencoder", arrays, params, reporter)
    assert outcome.cancelled
    assert [step for step, _, _ in reporter.epochs] == [1, 2]
    assert "model.keras" in reporter.files


def test_unknown_kind_is_a_user_error(mnist_path: Path) -> None:
    with pytest.raises(UserError):
        train("vae", load_arrays(mnist_path, 64), {}, MemoryReporter())
