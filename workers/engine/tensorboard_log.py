"""A training job's TensorBoard event file: every metric per epoch (per block of steps for the
GAN, at its global step) and the sample grids as images, kept as the job's artifact under
``tensorboard/``. It is uploaded at each epoch's end when it grew, and when training ends: a
resumed job replays only its last checkpointed epoch, so a file uploaded less often would lose
the epochs between its last upload and a worker's death (docs/engine-benchmarks.md: an upload is
about 20 ms, two transactions and a PUT).

Each run of a job writes a file of its own into the same folder: TensorBoard reads every file of a
run's folder whose name holds ``tfevents``, in name order, so the runs of a resumed job show
as one run (a subfolder per attempt would make each attempt a run of its own)."""

from __future__ import annotations

import importlib.util
import logging
import struct
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.engine.checkpoints import EpochRecord
from workers.engine.reporter import Reporter

log = logging.getLogger(__name__)

TENSORBOARD_FOLDER = "tensorboard"
EVENTS_CONTENT_TYPE = "application/octet-stream"
IMAGE_TAG = "samples"


def event_file_name(attempt: int, started: float) -> str:
    """The artifact name of a run's event file, unique to the run.

    The start time (10 digits until 2286) sorts the runs in the order they ran; the random part
    keeps apart two runs of one attempt (a job handed back by a worker shutting down runs again
    under the same attempt number)."""
    run = uuid.uuid4().hex[:6]
    return (
        f"{TENSORBOARD_FOLDER}/events.out.tfevents.{int(started):010d}.attempt-{attempt}.{run}.v2"
    )


def tensorboard_available() -> bool:
    """Whether TensorBoard is installed: since TensorFlow 2.21 it no longer comes with it, and
    the summaries' metadata (and ``tf.summary.scalar``/``image``) are TensorBoard's code."""
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLog(keras.callbacks.Callback):
    """Writes one run's event file; as the last callback, uploads it at each epoch's end.

    Used as a context manager around training; without TensorBoard installed it writes
    nothing (the job trains all the same) and says so in the worker's log."""

    def __init__(self, reporter: Reporter, attempt: int) -> None:
        super().__init__()
        self.reporter = reporter
        self.artifact_name = event_file_name(attempt, time.time())
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._writer: Any = None
        self._metadata: dict[str, bytes] = {}
        self._uploaded_size = 0
        self._image_steps: set[int] = set()
        # The step of the last completed epoch written (0: none yet).
        self.last_step = 0

    def __enter__(self) -> TensorBoardLog:
        if not tensorboard_available():
            log.warning("TensorBoard is not installed: this job writes no TensorBoard files")
            return self
        from tensorboard.plugins.image import metadata as image_metadata
        from tensorboard.plugins.scalar import metadata as scalar_metadata

        # What tf.summary.scalar and image attach to each value, made once: written with
        # tf.summary.write, a scalar costs half as much, and a grid goes in as the PNG the job
        # stored (tf.summary.image would decode and encode it again: 4-10 ms a grid, not 0.5).
        self._metadata = {
            "scalar": scalar_metadata.create_summary_metadata(None, None).SerializeToString(),
            "image": image_metadata.create_summary_metadata(None, None).SerializeToString(),
        }
        self._folder = tempfile.TemporaryDirectory(prefix="tensorboard-")
        # Flushed by upload(), not on a timer: the file is read only once it is uploaded.
        self._writer = tf.summary.create_file_writer(
            self._folder.name, max_queue=1000, flush_millis=24 * 3600 * 1000
        )
        return self

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        try:
            if exc_type is None:
                self.upload()  # a failed run keeps what its last completed epoch uploaded
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._folder is not None:
                self._folder.cleanup()
                self._folder = None

    def record(self, record: EpochRecord) -> None:
        """Every metric of a completed epoch (or block of steps) at its step."""
        self.last_step = max(self.last_step, record.step)
        if self._writer is None:
            return
        with self._writer.as_default():
            for name, value in record.values.items():
                tf.summary.write(
                    name, np.float32(value), step=record.step, metadata=self._metadata["scalar"]
                )

    def image(self, step: int, png: bytes) -> None:
        """A sample grid (PNG) at ``step``; a second grid for the same step is left out."""
        if self._writer is None or step in self._image_steps:
            return
        self._image_steps.add(step)
        # As tf.summary.image stores an image: width, height (from the PNG's header), the PNG.
        width, height = struct.unpack(">II", png[16:24])
        tensor = tf.constant([str(width).encode(), str(height).encode(), png])
        with self._writer.as_default():
            tf.summary.write(IMAGE_TAG, tensor, step=step, metadata=self._metadata["image"])

    def upload(self) -> None:
        """Store the event file through the reporter if it grew since its last upload."""
        if self._writer is None or self._folder is None:
            return
        self._writer.flush()
        files = sorted(Path(self._folder.name).glob("*tfevents*"))
        if not files:
            return
        path = files[0]
        size = path.stat().st_size
        if size == self._uploaded_size:
            return
        self.reporter.save_file(self.artifact_name, path, EVENTS_CONTENT_TYPE)
        self._uploaded_size = size

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.upload()
