"""Running one job: claim it, hand it to the engine with a reporter, record the outcome."""

from __future__ import annotations

import enum
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, selectinload

from shared.db.models import Artifact, Dataset, Job
from shared.db.session import session_scope
from shared.job_state import IllegalTransition, JobStatus
from shared.jobs import claim, claim_next, finish, hand_back
from shared.log_format import job_context
from shared.redaction import Redactor
from shared.settings import Settings
from shared.storage import ObjectStore, open_store
from workers import metrics
from workers.engine.reporter import LeaseLost, UserError
from workers.job_logs import JobLog, header_lines
from workers.job_reporter import Heartbeat, JobReporter, StopReason

log = logging.getLogger(__name__)


class RunResult(enum.StrEnum):
    """What became of a delivery of a job."""

    SKIPPED = "skipped"  # not queued: taken by another delivery, cancelled, or finished
    FINISHED = "finished"  # reached a terminal status (or lost to another worker)
    REQUEUED = "requeued"  # handed back to the queue: send it again


def _end_log(job_log: JobLog | None, line: str) -> None:
    """The last line of the run's log, stored with the rest before the job's status changes."""
    if job_log is not None:
        job_log.line(line)
        job_log.flush()


def _finish(
    settings: Settings,
    job_id: str,
    lease: str,
    target: JobStatus,
    message: str | None,
    results: dict[str, Any] | None = None,
    job_log: JobLog | None = None,
) -> None:
    """Record the end of a job we still hold (a job that ended or moved on is left alone)."""
    _end_log(job_log, f"[gentrain] {target.value}" + (f": {message}" if message else ""))
    with session_scope(settings.database_url) as session:
        try:
            ended = finish(session, job_id, lease, target, message, results)
        except IllegalTransition as error:
            log.warning("job %s: cannot record its end: %s", job_id, error)
            return
    if ended is None:
        log.warning("job %s is no longer this worker's; not recording %s", job_id, target.value)
        return
    metrics.run_ended(ended.value)


def _hand_back(
    settings: Settings,
    job_id: str,
    lease: str,
    message: str,
    counts: bool,
    job_log: JobLog | None = None,
) -> bool:
    """Put a job we hold back in the queue; False if it is no longer ours or no longer running."""
    _end_log(job_log, f"[gentrain] back to the queue: {message}")
    with session_scope(settings.database_url) as session:
        handed = hand_back(session, job_id, lease, message, counts_as_attempt=counts)
    if handed:
        metrics.run_ended("requeued")
    return handed


def _dataset_file(store: ObjectStore, dataset: Dataset, folder: Path) -> Path:
    path = folder / "dataset.npz"
    store.download(dataset.storage_key, path)
    return path


def _job_log(settings: Settings, reporter: JobReporter) -> JobLog:
    """The capture of one run's output, stored as the job's log through ``reporter``."""
    redact = Redactor.for_settings(settings)
    return JobLog(
        reporter.store_log, redact, settings.log_flush_seconds, settings.max_log_bytes_per_job
    )


def _handle_failure(
    settings: Settings, reporter: JobReporter, error: Exception, job_log: JobLog | None = None
) -> RunResult:
    """A user's mistake fails the job at once; anything else is retried up to max_attempts.
    The error and its traceback go to the worker's log and the job's (stored before its end).

    An error of a run whose job ended or moved on meanwhile (a worker frozen long enough for the
    database to end its transaction fails on waking) is no failure of the job: the run stops."""
    job_id, lease, attempts = reporter.job_id, reporter.lease, reporter.attempt
    if isinstance(error, LeaseLost) or not reporter.still_held():
        reporter.lost()
        log.warning("job %s ended or moved to another worker; this run stops", job_id)
        return RunResult.FINISHED
    if isinstance(error, UserError):
        log.warning("job %s failed: %s", job_id, error, exc_info=error)
        _finish(settings, job_id, lease, JobStatus.FAILED, str(error), job_log=job_log)
        return RunResult.FINISHED
    reason = f"infrastructure error: {type(error).__name__}: {error}"
    log.error("job %s failed (attempt %d)", job_id, attempts, exc_info=error)
    if attempts < settings.max_attempts:
        message = f"{reason}; retrying (attempt {attempts} of {settings.max_attempts})"
        if _hand_back(settings, job_id, lease, message, counts=True, job_log=job_log):
            return RunResult.REQUEUED
        return RunResult.FINISHED
    message = f"{reason} (after {attempts} attempts)"
    _finish(settings, job_id, lease, JobStatus.FAILED, message, job_log=job_log)
    return RunResult.FINISHED


def _claim(
    session: Session, job_id: str, worker: str, sampling: bool, next_in_line: bool
) -> Job | None:
    """Claim job ``job_id`` or, ``next_in_line``, the queued job first in line (priority, then
    age: the message is a wake-up); None, logged, when there is nothing to run."""
    if not next_in_line:
        job = claim(session, job_id, worker)
    else:
        job = claim_next(session, sampling, worker)
        if job is not None and job.id != job_id:
            log.info("message of job %s: job %s is first in line; running it", job_id, job.id)
    if job is None:
        what = "no job is queued" if next_in_line else f"job {job_id} is not queued"
        log.info("%s; skipping this delivery", what)
    return job


def run_training_job(
    settings: Settings, job_id: str, worker: str = "", next_in_line: bool = False
) -> RunResult:
    """Train a queued job to its end; a duplicate delivery of a job not queued does nothing.
    ``next_in_line``: train the queued training job first in line instead (see ``_claim``)."""
    with session_scope(settings.database_url) as session:
        job = _claim(session, job_id, worker, False, next_in_line)
        if job is None:
            return RunResult.SKIPPED
        job_id = job.id
        dataset = session.get(Dataset, job.dataset_id) if job.dataset_id else None
        kind, params, attempts = job.model_kind, dict(job.params), job.attempts
        lease = str(job.lease)
    with job_context(job_id, attempts):
        return _train(settings, job_id, worker, dataset, kind, params, attempts, lease)


def _train(
    settings: Settings,
    job_id: str,
    worker: str,
    dataset: Dataset | None,
    kind: str,
    params: dict[str, Any],
    attempts: int,
    lease: str,
) -> RunResult:
    """Train a job this worker has claimed, under ``lease``."""
    max_runtime = params.get("max_runtime_seconds") or settings.default_max_runtime_seconds
    store = open_store(settings)
    reporter = JobReporter(settings, store, job_id, lease, attempts, max_runtime)
    started = time.perf_counter()
    with _job_log(settings, reporter) as job_log:
        with Heartbeat(reporter):
            try:
                # TensorFlow is imported here, in the process that trains, never at module import.
                from workers.engine.data import load_arrays
                from workers.engine.distribution import runtime_summary
                from workers.engine.training import train

                for line in header_lines(
                    settings, worker, job_id, kind, attempts, runtime_summary()
                ):
                    job_log.line(line)
                if dataset is None:
                    raise UserError("the job's dataset no longer exists")
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp)
                    arrays = load_arrays(
                        _dataset_file(store, dataset, folder), params.get("max_train_images", 0)
                    )
                outcome = train(kind, arrays, params, reporter)
            except Exception as error:
                return _handle_failure(settings, reporter, error, job_log)
        seconds = round(time.perf_counter() - started, 3)
        if not outcome.stopped:
            results = {**outcome.results, "train_seconds": seconds}
            _finish(settings, job_id, lease, JobStatus.SUCCEEDED, None, results, job_log)
            return RunResult.FINISHED
        reason = reporter.stop_reason
        if reason is StopReason.DRAIN:
            message = "the worker is shutting down; handed back after its last checkpoint"
            if _hand_back(settings, job_id, lease, message, counts=False, job_log=job_log):
                return RunResult.REQUEUED
        elif reason is StopReason.TIMEOUT:
            message = f"exceeded max_runtime_seconds ({max_runtime} s); the last checkpoint is kept"
            _finish(settings, job_id, lease, JobStatus.FAILED, message, job_log=job_log)
        elif reason is StopReason.CANCELLED:
            message = reporter.pruned_reason or "cancelled while running"
            _finish(settings, job_id, lease, JobStatus.CANCELLED, message, job_log=job_log)
        else:
            log.warning("job %s ended or moved to another worker; this run stops", job_id)
    return RunResult.FINISHED


def run_sampling_job(
    settings: Settings, job_id: str, worker: str = "", next_in_line: bool = False
) -> RunResult:
    """Draw sample grids from the parent job's trained model (``next_in_line``: of the queued
    sampling job first in line)."""
    with session_scope(settings.database_url) as session:
        job = _claim(session, job_id, worker, True, next_in_line)
        if job is None:
            return RunResult.SKIPPED
        job_id = job.id
        parent = session.get(Job, job.parent_id, options=[selectinload(Job.artifacts)])
        model_artifact: Artifact | None = None
        trained_with: dict[str, Any] = {}
        if parent is not None:
            model_artifact = next((a for a in parent.artifacts if a.name == "model.keras"), None)
            trained_with = dict(parent.params)
        dataset = session.get(Dataset, job.dataset_id) if job.dataset_id else None
        kind, params, parent_id = job.model_kind, dict(job.params), job.parent_id
        attempts, lease = job.attempts, str(job.lease)
    with job_context(job_id, attempts):
        return _sample(
            settings, job_id, worker, kind, params, parent_id, attempts, lease, model_artifact,
            trained_with, dataset,
        )  # fmt: skip


def _sample(
    settings: Settings,
    job_id: str,
    worker: str,
    kind: str,
    params: dict[str, Any],
    parent_id: str | None,
    attempts: int,
    lease: str,
    model_artifact: Artifact | None,
    trained_with: dict[str, Any],
    dataset: Dataset | None,
) -> RunResult:
    """Draw the samples of a sampling job this worker has claimed, under ``lease``."""
    store = open_store(settings)
    reporter = JobReporter(settings, store, job_id, lease, attempts)
    # Beats like a training job: a sampling job that outlasts the heartbeat timeout (a large
    # count, a slow model load) is alive, not a dead worker's job to re-queue.
    with _job_log(settings, reporter) as job_log:
        with Heartbeat(reporter):
            try:
                from workers.engine.data import load_drawn
                from workers.engine.distribution import runtime_summary
                from workers.engine.sampling import (
                    held_out_count,
                    load_model,
                    needs_dataset,
                    sample_images,
                )

                sampling = f"sampling ({kind})"
                for line in header_lines(
                    settings, worker, job_id, sampling, attempts, runtime_summary()
                ):
                    job_log.line(line)
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
                    drawn = None
                    if needs_dataset(kind):
                        if dataset is None:
                            raise UserError("the parent job's dataset no longer exists")
                        # Only the held-out images drawn (the grid's, an interpolation's two
                        # ends), never the whole dataset.
                        path = _dataset_file(store, dataset, folder)
                        drawn = load_drawn(path, held_out_count(kind, params), params["seed"])
                for name, png in sample_images(kind, model, drawn, params, trained_with).items():
                    reporter.save_bytes(name, png, "image/png")
            except Exception as error:
                return _handle_failure(settings, reporter, error, job_log)
        _finish(settings, job_id, lease, JobStatus.SUCCEEDED, None, {}, job_log)
    return RunResult.FINISHED
