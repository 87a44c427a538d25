"""Keras callbacks reporting to the job as training runs: checkpoints, metrics, progress, stop."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras

from workers.engine.checkpoints import CHECKPOINT_ARTIFACT, EpochRecord, save_checkpoint
from workers.engine.reporter import JOB_LOG, Reporter, UserError

STOP_CHECK_SECONDS = 1.0


def check_losses(logs: dict[str, Any] | None, where: str) -> None:
    """Raise UserError if a loss is not finite: training diverged (a learning rate too high, or
    bad inputs), and retrying would only diverge again."""
    for name, value in (logs or {}).items():
        if name.endswith("loss") and not math.isfinite(float(value)):
            raise UserError(
                f"{name} became {float(value)} {where}: training diverged; try a lower "
                "learning_rate (or check the dataset's values)"
            )


def _number(value: float) -> str:
    # As Keras's progress lines show values: 4 decimals, or 4 significant digits when tiny.
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.4e}"


def epoch_line(
    done: int, epochs: int, step_scale: int, seconds: float, values: dict[str, float]
) -> str:
    """One line per epoch (or block of steps) as Keras's ``verbose=2`` prints it:
    ``epoch 3/5 - 2.1s - loss: 0.1234 - val_loss: 0.1301`` (``step 300/2000 - ...``)."""
    unit = "step" if step_scale > 1 else "epoch"
    parts = [f"{unit} {done * step_scale}/{epochs * step_scale}", f"{seconds:.1f}s"]
    parts += [f"{name}: {_number(value)}" for name, value in values.items()]
    return " - ".join(parts)


class JobProgress(keras.callbacks.Callback):
    """After each completed epoch: checkpoint, then metrics, progress and ETA; between batches,
    a cheap check whether the job must stop (cancel, drain, runtime limit).

    ``step_scale`` > 1 means an "epoch" is a block of that many steps (the GAN): metrics are then
    keyed by global step. ``recorded`` hears of each epoch once its metrics are recorded.
    """

    def __init__(
        self,
        reporter: Reporter,
        epochs: int,
        step_scale: int,
        model: keras.Model,
        optimizers: Sequence[keras.optimizers.Optimizer],
        recorded: Callable[[EpochRecord], None] | None = None,
    ) -> None:
        super().__init__()
        self.recorded = recorded
        self.reporter = reporter
        self.epochs = epochs
        self.step_scale = step_scale
        self.target = model
        self.optimizers = optimizers
        self.stopped = False
        self._epoch_started = 0.0
        self._last_check = 0.0
        self._epoch = 0
        self._batches = 0
        self._durations: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._batches = 0
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches = batch + 1
        now = time.perf_counter()
        if now - self._last_check >= STOP_CHECK_SECONDS:
            self._last_check = now
            check_losses(logs, f"in epoch {self._epoch + 1}")
            if self.reporter.should_stop():
                self.stopped = True
                self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopped:
            return  # a partial epoch is not a completed one: the last checkpoint stays
        check_losses(logs, f"at the end of epoch {epoch + 1}")  # before it is checkpointed
        seconds = time.perf_counter() - self._epoch_started
        self._durations.append(seconds)
        done = epoch + 1
        eta = (self.epochs - done) * sum(self._durations) / len(self._durations)
        values = {key: float(value) for key, value in (logs or {}).items()}
        record = EpochRecord(done * self.step_scale, values, seconds, done / self.epochs, eta)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.npz"
            save_checkpoint(path, self.target, self.optimizers, done, record)
            self.reporter.save_file(CHECKPOINT_ARTIFACT, path, "application/octet-stream")
        self.reporter.epoch_done(record.step, values, seconds, record.progress, eta)
        # Throughput for the worker's metrics, where the reporter takes it (the job runner's).
        batches_trained = getattr(self.reporter, "batches_trained", None)
        if batches_trained is not None:
            batches_trained(self._batches, seconds)
        JOB_LOG.info("%s", epoch_line(done, self.epochs, self.step_scale, seconds, values))
        if self.recorded is not None:
            self.recorded(record)
        if done < self.epochs and self.reporter.should_stop():
            self.stopped = True
            self.model.stop_training = True


class EverySoManyEpochs(keras.callbacks.Callback):
    """Calls ``action(epoch)`` after every ``every``-th completed epoch."""

    def __init__(self, every: int, action: Callable[[int], None]) -> None:
        super().__init__()
        self.every = every
        self.action = action

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.every and (epoch + 1) % self.every == 0 and not self.model.stop_training:
            self.action(epoch + 1)
