"""Celery tasks: thin wrappers that run the job first in line when a message arrives (the
message is a wake-up: ``shared.jobs.claim_next``), and send one again if it was handed back."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.queue import SAMPLE_TASK, TRAIN_TASK
from shared.settings import get_settings
from shared.sweeps.driver import drive_all
from workers.runner import RunResult, run_sampling_job, run_training_job


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self: Any, job_id: str) -> str:
    """Train the training job first in line (``job_id``'s message woke this worker)."""
    worker = self.request.hostname or ""
    settings = get_settings()
    result = run_training_job(settings, job_id, worker, next_in_line=True)
    if result is RunResult.REQUEUED:
        self.app.send_task(TRAIN_TASK, args=[job_id])
    elif result is RunResult.FINISHED:
        drive_all(self.app, settings.database_url)  # a sweep's trial ended: queue the next
    return result.value


@shared_task(name=SAMPLE_TASK, bind=True)
def sample_job(self: Any, job_id: str) -> str:
    """Draw samples for the sampling job first in line (woken by ``job_id``'s message)."""
    worker = self.request.hostname or ""
    result = run_sampling_job(get_settings(), job_id, worker, next_in_line=True)
    if result is RunResult.REQUEUED:
        self.app.send_task(SAMPLE_TASK, args=[job_id])
    return result.value
