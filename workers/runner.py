"""Running one job: claim it, hand it to the engine with a reporter, record the outcome."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shared.db.models import Artifact, Dataset, Job
from shared.db.session import session_scope
from shared.job_records import (
    claim,
    current_status,
    record_artifact,
    record_metric,
    record_progress,
    transition,
    update_fields,
)
from shared.job_state import IllegalTransition, JobStatus
from shared.settings import Settings
from shared.storage import ObjectStore, job_key, open_store
from workers.engine.reporter import UserError

log = logging.getLogger(__name__)


class JobReporter:
    """The engine's Reporter for one job: writes metrics and progress to the database and
    artifacts to object storage as they happen."""

    def __init__(self, settings: Settings, store: ObjectStore, job_id: str) -> None:
        self.settings = settings
        self.store = store
        self.job_id = job_id

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        with session_scope(self.settings.database_url) as session:
            update_fields(
                session,
                self.job_id,
                param_count=param_count,
                replicas=replicas,
                global_batch_size=global_batch_size,
            )

    def epoch_done(
        self,
        step: int,
        values: dict[str, float],
        seconds: float,
        progress: float,
        eta: float | None,
    ) -> None:
        with session_scope(self.settings.database_url) as session:
            record_metric(session, self.job_id, step, values, seconds)
            record_progress(session, self.job_id, progress, eta)

    def should_stop(self) -> bool:
        with session_scope(self.settings.database_url) as session:
            return current_status(session, self.job_id) is JobStatus.CANCELLING

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        stored = self.store.put_file(job_key(self.job_id, *name.split("/")), path, content_type)
        with session_scope(self.settings.database_url) as session:
            record_artifact(session, self.job_id, name, stored, content_type)

    def save_bytes(self, name: str, data: bytes, content_type: str) -> None:
        stored = self.store.put_bytes(job_key(self.job_id, *name.split("/")), data, content_type)
        with session_scope(self.settings.database_url) as session:
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


def _finish(
    settings: Settings, job_id: str, target: JobStatus, message: str | None, **fields: Any
) -> None:
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id, populate_existing=True)
        if job is None:
            return
        if target is JobStatus.SUCCEEDED and job.status == JobStatus.CANCELLING.value:
            # The cancel arrived after the last epoch: the user asked to stop, so it is cancelled.
            target, message = JobStatus.CANCELLED, "cancelled after training finished"
        if target is JobStatus.CANCELLED and job.status == JobStatus.RUNNING.value:
            transition(session, job, JobStatus.CANCELLING, "cancel requested")
        for name, value in fields.items():
            setattr(job, name, value)
        try:
            transition(session, job, target, message)
        except IllegalTransition:
            log.warning("job %s: cannot record %s from %s", job_id, target.value, job.status)


def _failure_reason(error: Exception) -> str:
    """What the job's error says: the user's mistake as is, anything else as internal."""
    if isinstance(error, UserError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"


def _dataset_file(store: ObjectStore, dataset: Dataset, folder: Path) -> Path:
    path = folder / "dataset.npz"
    store.download(dataset.storage_key, path)
    return path


def run_training_job(settings: Settings, job_id: str) -> None:
    """Train a queued job to its end; a duplicate delivery of a job not queued does nothing."""
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        if job is None:
            log.info("job %s is not queued; skipping this delivery", job_id)
            return
        dataset = session.get(Dataset, job.dataset_id) if job.dataset_id else None
        kind, params = job.model_kind, dict(job.params)
    store = open_store(settings)
    reporter = JobReporter(settings, store, job_id)
    started = time.perf_counter()
    try:
        # TensorFlow is imported here, in the process that trains, never at module import.
        from workers.engine.data import load_arrays
        from workers.engine.training import train

        if dataset is None:
            raise UserError("the job's dataset no longer exists")
        with tempfile.TemporaryDirectory() as tmp:
            arrays = load_arrays(
                _dataset_file(store, dataset, Path(tmp)), params.get("max_train_images", 0)
            )
        outcome = train(kind, arrays, params, reporter)
    except Exception as error:
        reason = _failure_reason(error)
        log.exception("job %s failed", job_id)
        _finish(settings, job_id, JobStatus.FAILED, reason)
        return
    seconds = round(time.perf_counter() - started, 3)
    if outcome.cancelled:
        _finish(settings, job_id, JobStatus.CANCELLED, "cancelled while running")
    else:
        results = {**outcome.results, "train_seconds": seconds}
        _finish(settings, job_id, JobStatus.SUCCEEDED, None, results=results, progress=1.0)


def run_sampling_job(settings: Settings, job_id: str) -> None:
    """Draw sample grids from the parent job's trained model."""
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        if job is None:
            log.info("job %s is not queued; skipping this delivery", job_id)
            return
        parent = session.get(Job, job.parent_id, options=[selectinload(Job.artifacts)])
        model_artifact: Artifact | None = None
        trained_with: dict[str, Any] = {}
        if parent is not None:
            model_artifact = next((a for a in parent.artifacts if a.name == "model.keras"), None)
            trained_with = dict(parent.params)
        dataset = session.get(Dataset, job.dataset_id) if job.dataset_id else None
        kind, params, parent_id = job.model_kind, dict(job.params), job.parent_id
    store = open_store(settings)
    reporter = JobReporter(settings, store, job_id)
    try:
        from workers.engine.data import load_arrays
        from workers.engine.sampling import load_model, needs_dataset, sample_images

        if model_artifact is None:
            raise UserError("the parent job has no trained model")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            key = model_artifact.storage_key

            def fetch_model() -> Path:
                path = folder / "model.keras"
                store.download(key, path)
                return path

            model = load_model(f"{parent_id}:{model_artifact.sha256}", fetch_model)
            arrays = None
            if needs_dataset(kind):
                if dataset is None:
                    raise UserError("the parent job's dataset no longer exists")
                arrays = load_arrays(_dataset_file(store, dataset, folder))
        for name, png in sample_images(kind, model, arrays, params, trained_with).items():
            reporter.save_bytes(name, png, "image/png")
    except Exception as error:
        reason = _failure_reason(error)
        log.exception("sampling job %s failed", job_id)
        _finish(settings, job_id, JobStatus.FAILED, reason)
        return
    _finish(settings, job_id, JobStatus.SUCCEEDED, None, progress=1.0)
