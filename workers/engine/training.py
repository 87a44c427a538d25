"""Training a job's model: strategy, resume from checkpoint, fit with callbacks, results."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from workers.engine.callbacks import EverySoManyEpochs, JobProgress
from workers.engine.checkpoints import CHECKPOINT_ARTIFACT, restore_checkpoint
from workers.engine.data import Arrays
from workers.engine.distribution import dtype_policy, make_strategy
from workers.engine.kinds import KINDS
from workers.engine.reporter import JOB_LOG, Reporter, UserError
from workers.engine.tensorboard_log import TensorBoardLog

MODEL_ARTIFACT = "model.keras"
PNG = "image/png"


@dataclass
class TrainingOutcome:
    """How training ended and what it measured."""

    # Stopped before its end (the reporter knows why: cancel, drain, runtime limit).
    stopped: bool
    results: dict[str, Any] = field(default_factory=dict)


def train(
    kind_name: str, arrays: Arrays, params: dict[str, Any], reporter: Reporter
) -> TrainingOutcome:
    """Train a model of ``kind_name``, resuming from the job's checkpoint if it has one."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise UserError(f"model kind {kind_name!r} cannot be trained by this worker")
    keras.utils.set_random_seed(params["seed"])
    strategy = make_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = params["batch_size"] * replicas
    with strategy.scope(), dtype_policy(params.get("mixed_precision", False)):
        built = kind.build(params)
    plan = kind.plan(arrays, params, global_batch)

    initial_epoch, last = 0, None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.npz"
        if reporter.load_file(CHECKPOINT_ARTIFACT, path):
            initial_epoch, last = restore_checkpoint(path, built.model, built.optimizers)
            # Recorded already unless the job died between checkpoint and metrics: idempotent.
            reporter.epoch_replayed(last.step, last.values, last.seconds, last.progress, last.eta)
            unit = "step" if plan.step_scale > 1 else "epoch"
            JOB_LOG.info("resumed from the checkpoint of %s %d", unit, last.step)
    reporter.started(built.model.count_params(), replicas, global_batch)

    unit = "step" if plan.step_scale > 1 else "epoch"
    with TensorBoardLog(reporter, reporter.attempt) as board:
        if last is not None:
            # The attempt before may have died before uploading it: at worst a point repeated.
            board.record(last)

        def save_preview(epoch: int) -> None:
            step = epoch * plan.step_scale
            built.sync_export(arrays)
            png = kind.preview(built, arrays, params)
            reporter.save_bytes(f"samples/{unit}-{step:06d}.png", png, PNG)
            board.image(step, png)

        progress = JobProgress(
            reporter, plan.epochs, plan.step_scale, built.model, built.optimizers, board.record
        )
        callbacks: list[keras.callbacks.Callback] = [progress]
        # sample_every counts epochs, or steps for step-counted kinds (rounded to whole blocks).
        sample_every = params.get("sample_every", 0) // plan.step_scale
        if sample_every:
            callbacks.append(EverySoManyEpochs(sample_every, save_preview))
        callbacks.append(board)  # last: uploads what the others wrote at each epoch's end
        if initial_epoch < plan.epochs:
            built.model.fit(
                plan.train,
                validation_data=plan.validation,
                epochs=plan.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=plan.steps_per_epoch,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles
                verbose=0,
            )

        built.sync_export(arrays)  # the grid, the exported model and the scores use it as trained
        final = kind.preview(built, arrays, params)
        reporter.save_bytes(kind.final_grid, final, PNG)
        board.image(board.last_step, final)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_ARTIFACT
        built.export.save(path)
        reporter.save_file(MODEL_ARTIFACT, path, "application/octet-stream")
    if progress.stopped:
        return TrainingOutcome(stopped=True)
    return TrainingOutcome(stopped=False, results=kind.evaluate(built, arrays, params))
