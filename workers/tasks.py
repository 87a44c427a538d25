"""Celery tasks: thin wrappers that run a job by id, and send it again if it was handed back."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.queue import SAMPLE_TASK, TRAIN_TASK
from shared.settings import get_settings
from workers.runner import RunResult, run_sampling_job, run_training_job


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self: Any, job_id: str) -> str:
    """Train the model of job ``job_id``."""
    result = run_training_job(get_settings(), job_id, self.request.hostname or "")
    if result is RunResult.REQUEUED:
        self.app.send_task(TRAIN_TASK, args=[job_id])
    return result.value


@shared_task(name=SAMPLE_TASK, bind=True)
def sample_job(self: Any, job_id: str) -> str:
    """Draw samples for sampling job ``job_id``."""
    result = run_sampling_job(get_settings(), job_id, self.request.hostname or "")
    if result is RunResult.REQUEUED:
        self.app.send_task(SAMPLE_TASK, args=[job_id])
    return result.value
