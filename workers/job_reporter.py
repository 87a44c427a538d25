"""The engine's Reporter for one job: metrics, progress and artifacts as they happen, a heartbeat,
and the reasons a job must stop (cancel, drain, lost lease, runtime limit)."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Artifact, Job
from shared.db.session import session_scope
from shared.job_state import IllegalTransition
from shared.jobs import (
    JobGone,
    check_held,
    heartbeat,
    record_artifact,
    record_epoch,
    record_log,
    record_start,
    standing,
)
from shared.settings import Settings
from shared.storage import ObjectStore, StoredObject, job_key
from shared.sweeps.pruning import TrialRef, report_epoch, stop_pruned, trial_of
from workers import metrics
from workers.engine.reporter import JOB_LOG, LeaseLost

log = logging.getLogger(__name__)


class StopReason(enum.StrEnum):
    """Why a job stopped before its end."""

    CANCELLED = "cancelled"
    DRAIN = "drain"  # the worker is shutting down: hand the job back
    LOST = "lost"  # another worker holds the job now
    TIMEOUT = "timeout"  # past max_runtime_seconds


class JobReporter:
    """Writes what the engine reports for job ``job_id`` held under ``lease``."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        job_id: str,
        lease: str,
        attempt: int = 1,
        max_runtime_seconds: float | None = None,
    ) -> None:
        self.attempt = attempt
        self.settings = settings
        self.store = store
        self.job_id = job_id
        self.lease = lease
        self.deadline = time.monotonic() + max_runtime_seconds if max_runtime_seconds else None
        self.stop_reason: StopReason | None = None
        # A sweep's trial with a pruner (looked up at the first epoch), and why it was pruned.
        self._trial: TrialRef | None | bool = False
        self.pruned_reason: str | None = None
        # For the worker's metrics (workers.metrics): known once the model is built.
        self.kind: str | None = None
        self.global_batch_size = 0

    @contextmanager
    def _held(self) -> Iterator[Session]:
        """A transaction for a write of the running job; raises LeaseLost once it is not ours.

        Every write goes through ``shared.jobs``, which refuses it unless the job is still
        running under our lease: a worker presumed dead (frozen, partitioned) that wakes up after
        its job ended or moved on writes nothing, and stops at its next check."""
        if self.stop_reason is StopReason.LOST:
            raise LeaseLost(self.job_id)
        try:
            with session_scope(self.settings.database_url) as session:
                yield session
        except JobGone:
            self.lost()
            raise LeaseLost(self.job_id) from None

    def still_held(self) -> bool:
        """Whether the job still runs under our lease (True when the database cannot say)."""
        if self.stop_reason is StopReason.LOST:
            return False
        try:
            with session_scope(self.settings.database_url) as session:
                return standing(session, self.job_id, self.lease).held
        except Exception:  # noqa: BLE001 - the caller's own error handling takes over
            log.warning("cannot read job %s's standing", self.job_id, exc_info=True)
            return True

    def lost(self) -> None:
        """The job is no longer ours (seen by the heartbeat or a refused write)."""
        if self.stop_reason is not StopReason.LOST:
            log.warning(
                "job %s is no longer running under this worker's lease; stopping", self.job_id
            )
        self.stop_reason = StopReason.LOST

    def _key(self, name: str) -> str:
        # Each attempt writes its own objects: a stale attempt can never overwrite the bytes
        # of the attempt that holds the job; the artifact row points at the holder's.
        return job_key(self.job_id, f"attempt-{self.attempt}", *name.split("/"))

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        with self._held() as session:
            record_start(session, self.job_id, self.lease, param_count, replicas, global_batch_size)
            job = session.get(Job, self.job_id)  # the row record_start holds: no query
            self.kind = job.model_kind if job is not None else "unknown"
        self.global_batch_size = global_batch_size
        metrics.attempt_started(self.kind)
        JOB_LOG.info(
            "model built: %d parameters; %d replica%s, global batch %d",
            param_count,
            replicas,
            "" if replicas == 1 else "s",
            global_batch_size,
        )

    def store_log(self, text: str) -> bool:
        """Store a chunk of the job's log; False once the log takes no more: the job is no
        longer ours (ended, moved on; the heartbeat or the next write stops the run) or its
        log reached its cap."""
        if self.stop_reason is StopReason.LOST:
            return False
        try:
            with session_scope(self.settings.database_url) as session:
                written = record_log(
                    session, self.job_id, self.lease, text, self.settings.max_log_bytes_per_job
                )
        except JobGone:
            return False
        return not written.truncated

    def _record_epoch(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
        replayed: bool,
    ) -> None:
        with self._held() as session:
            record_epoch(
                session,
                self.job_id,
                self.lease,
                step=step,
                values=values,
                seconds=seconds,
                progress=progress,
                eta_seconds=eta,
                replayed=replayed,
            )

    def epoch_done(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        self._record_epoch(step, values, seconds, progress, eta, replayed=False)
        self._report_to_sweep(step, values)

    def _report_to_sweep(self, step: int, values: dict[str, float]) -> None:
        """A sweep's trial tells its pruner how the epoch went; pruned, its job is cancelled
        (it stops after this epoch, checkpoint kept). A failure to report costs only pruning."""
        url = self.settings.database_url
        if self._trial is False:
            self._trial = trial_of(url, self.job_id)
        if not isinstance(self._trial, TrialRef) or self.pruned_reason is not None:
            return
        try:
            if report_epoch(url, self._trial, step, values):
                unit = "step" if self.kind == "gan" else "epoch"
                self.pruned_reason = stop_pruned(url, self.job_id, step, unit)
        except (LookupError, IllegalTransition):
            return  # the job ended meanwhile
        except Exception:  # noqa: BLE001 - Optuna's storage hiccups: train on
            log.warning("job %s: cannot report to its sweep", self.job_id, exc_info=True)

    def batches_trained(self, batches: int, seconds: float) -> None:
        """The epoch just recorded took ``batches`` optimizer steps in ``seconds`` (metrics)."""
        images = batches * self.global_batch_size
        metrics.epoch_trained(self.kind or "unknown", batches, images, seconds)

    def epoch_replayed(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        self._record_epoch(step, values, seconds, progress, eta, replayed=True)

    def should_stop(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stop_reason = StopReason.TIMEOUT
            return True
        with session_scope(self.settings.database_url) as session:
            now = standing(session, self.job_id, self.lease)
        if not now.held:
            self.lost()
        elif now.cancelling:
            self.stop_reason = StopReason.CANCELLED
        elif now.drain_requested:
            self.stop_reason = StopReason.DRAIN
        return self.stop_reason is not None

    def _check_before_upload(self) -> None:
        # Uploading is the slow part of saving: a worker that lost its job uploads nothing.
        with self._held() as session:
            check_held(session, self.job_id, self.lease)

    def _register(self, name: str, stored: StoredObject, content_type: str) -> None:
        with self._held() as session:
            record_artifact(session, self.job_id, self.lease, name, stored, content_type)

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        self._check_before_upload()
        stored = self.store.put_file(self._key(name), path, content_type)
        self._register(name, stored, content_type)

    def save_bytes(self, name: str, data: bytes, content_type: str) -> None:
        self._check_before_upload()
        self._register(
            name, self.store.put_bytes(self._key(name), data, content_type), content_type
        )

    def load_file(self, name: str, path: Path) -> bool:
        with session_scope(self.settings.database_url) as session:
            key = session.scalar(
                select(Artifact.storage_key).where(
                    Artifact.job_id == self.job_id, Artifact.name == name
                )
            )
        if key is None:
            return False
        self.store.download(key, path)
        return True


class Heartbeat:
    """A background thread stamping the job's heartbeat while it runs (epochs can be long)."""

    def __init__(self, reporter: JobReporter) -> None:
        self.reporter = reporter
        self.settings = reporter.settings
        self.job_id = reporter.job_id
        self.lease = reporter.lease
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self.job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        metrics.run_stopped(self.reporter.kind)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                with session_scope(self.settings.database_url) as session:
                    beating = heartbeat(session, self.job_id, self.lease)
                if beating:
                    metrics.heartbeat_stamped(time.time())
                if not beating:
                    self.reporter.lost()  # training stops at its next check, writing nothing
                    return
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
