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
from shared.job_records import (
    heartbeat,
    record_artifact,
    record_metric,
    record_progress,
    update_fields,
)
from shared.job_state import JobStatus
from shared.settings import Settings
from shared.storage import ObjectStore, job_key
from workers.engine.reporter import LeaseLost

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

    @contextmanager
    def _held(self) -> Iterator[Session]:
        """A transaction in which the job's row is locked and still ours; raises LeaseLost.

        Every write of a running job goes through here, so a worker that was presumed dead
        (frozen, partitioned) and woke up after the job moved on cannot write over its successor.
        """
        with session_scope(self.settings.database_url) as session:
            lease = session.scalar(select(Job.lease).where(Job.id == self.job_id).with_for_update())
            if lease != self.lease:
                self.stop_reason = StopReason.LOST
                raise LeaseLost(self.job_id)
            yield session

    def _key(self, name: str) -> str:
        # Each attempt writes its own objects: a stale attempt can never overwrite the bytes
        # of the attempt that holds the job; the artifact row points at the holder's.
        return job_key(self.job_id, f"attempt-{self.attempt}", *name.split("/"))

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        with self._held() as session:
            update_fields(
                session,
                self.job_id,
                param_count=param_count,
                replicas=replicas,
                global_batch_size=global_batch_size,
            )

    def _record_epoch(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
        only_if_absent: bool,
    ) -> None:
        with self._held() as session:
            record_metric(session, self.job_id, step, values, seconds, self.attempt, only_if_absent)
            record_progress(session, self.job_id, progress, eta)

    def epoch_done(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        self._record_epoch(step, values, seconds, progress, eta, only_if_absent=False)

    def epoch_replayed(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        self._record_epoch(step, values, seconds, progress, eta, only_if_absent=True)

    def should_stop(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stop_reason = StopReason.TIMEOUT
            return True
        with session_scope(self.settings.database_url) as session:
            row = session.execute(
                select(Job.status, Job.lease, Job.drain_requested).where(Job.id == self.job_id)
            ).one_or_none()
        if row is None or row.lease != self.lease:
            self.stop_reason = StopReason.LOST
        elif row.status == JobStatus.CANCELLING.value:
            self.stop_reason = StopReason.CANCELLED
        elif row.drain_requested:
            self.stop_reason = StopReason.DRAIN
        return self.stop_reason is not None

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        stored = self.store.put_file(self._key(name), path, content_type)
        with self._held() as session:
            record_artifact(session, self.job_id, name, stored, content_type)

    def save_bytes(self, name: str, data: bytes, content_type: str) -> None:
        stored = self.store.put_bytes(self._key(name), data, content_type)
        with self._held() as session:
            record_artifact(session, self.job_id, name, stored, content_type)

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

    def __init__(self, settings: Settings, job_id: str, lease: str) -> None:
        self.settings = settings
        self.job_id = job_id
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                with session_scope(self.settings.database_url) as session:
                    if not heartbeat(session, self.job_id, self.lease):
                        return  # the lease is gone; the reporter notices and stops training
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
