"""What the engine tells the outside world as it trains (implemented by the job runner)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

# The job's own log: its lines (one per epoch, like Keras's verbose=2) go to the job's stored log
# as they are, and to the worker's log. INFO whatever the root logger's level.
JOB_LOG = logging.getLogger("gentrain.job")
JOB_LOG.setLevel(logging.INFO)


class Reporter(Protocol):
    """Receives progress from the engine and says whether to stop."""

    # Which run of the job this is (1 for the first; a resumed job's next run counts up).
    attempt: int

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        """The model is built and training is about to begin."""
        ...

    def epoch_done(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        """One epoch (or block of steps) finished with these metrics."""
        ...

    def epoch_replayed(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        """A resumed job's last checkpointed epoch: record it unless already recorded."""
        ...

    def should_stop(self) -> bool:
        """Whether the job has been asked to stop (cancel); cheap enough to call every second."""
        ...

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        """Keep a file as the job's artifact ``name``."""
        ...

    def save_bytes(self, name: str, data: bytes, content_type: str) -> None:
        """Keep bytes as the job's artifact ``name``."""
        ...

    def load_file(self, name: str, path: Path) -> bool:
        """Copy the job's artifact ``name`` to ``path``; False if the job has none by that name."""
        ...


class UserError(Exception):
    """A failure caused by what the user asked for (bad dataset, impossible params): not retried."""


class LeaseLost(Exception):
    """The job was taken over by another worker (this one was presumed dead): stop writing."""
