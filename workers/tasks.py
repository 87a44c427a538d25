"""Celery tasks: thin wrappers that run a job by id."""

from __future__ import annotations

from celery import shared_task

from shared.queue import SAMPLE_TASK, TRAIN_TASK
from shared.settings import get_settings
from workers.runner import run_sampling_job, run_training_job


@shared_task(name=TRAIN_TASK)
def train_job(job_id: str) -> None:
    """Train the model of job ``job_id``."""
    run_training_job(get_settings(), job_id)


@shared_task(name=SAMPLE_TASK)
def sample_job(job_id: str) -> None:
    """Draw samples for sampling job ``job_id``."""
    run_sampling_job(get_settings(), job_id)
