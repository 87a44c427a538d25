"""The Celery app as both sides configure it: broker, queues, task names (messages carry ids)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from shared.settings import Settings

TRAIN_TASK = "gentrain.train_job"
SAMPLE_TASK = "gentrain.sample_job"
TRAIN_QUEUE = "train"
SAMPLE_QUEUE = "sample"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery configuration derived from the service settings."""
    transport_options: dict[str, Any] = {}
    events = False
    if settings.broker_url.startswith("filesystem://"):
        for sub in ("in", "processed", "control"):
            (settings.broker_dir / sub).mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(settings.broker_dir / "in"),
            "data_folder_out": str(settings.broker_dir / "in"),
            "processed_folder": str(settings.broker_dir / "processed"),
            # Exchange metadata; kombu's default is a "control" folder in the working directory.
            "control_folder": str(settings.broker_dir / "control"),
            "store_processed": False,
            "polling_interval": settings.broker_polling_interval,
        }
    elif settings.broker_url.startswith("redis"):
        # Training runs for hours; Redis must not hand a running job to a second worker after
        # the default 1 h. Duplicates are harmless anyway: a worker only runs a job it can claim
        # from "queued" in the database.
        transport_options = {"visibility_timeout": 12 * 3600}
        # Task events feed Celery Flower (the filesystem broker has no fanout to carry them).
        events = True
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # The database is the record of outcomes; Celery results would be a second one.
        "task_ignore_result": True,
        "task_acks_late": True,
        # One long task at a time per process: prefetching would strand jobs behind it.
        "worker_prefetch_multiplier": 1,
        # A hard ceiling far above any sane job so a wedged process is eventually reclaimed.
        "task_time_limit": 48 * 3600,
        "task_default_queue": TRAIN_QUEUE,
        "task_queues": (Queue(TRAIN_QUEUE), Queue(SAMPLE_QUEUE)),
        "task_routes": {
            TRAIN_TASK: {"queue": TRAIN_QUEUE},
            SAMPLE_TASK: {"queue": SAMPLE_QUEUE},
        },
        "worker_hijack_root_logger": False,
        "broker_connection_timeout": 5,
        "worker_send_task_events": events,
        "task_send_sent_event": events,
    }


def make_celery(settings: Settings, name: str = "gentrain") -> Celery:
    """A Celery app configured from ``settings``."""
    app = Celery(name)
    app.config_from_object(celery_config(settings))
    return app


def enqueue(app: Celery, task_name: str, job_id: str) -> None:
    """Send a job id to the queue of ``task_name``: a wake-up for the worker that takes it,
    which runs the queued job first in line (``shared.jobs.claim_next``). Messages carry no
    priority: the database orders the jobs, on every broker, and keeps a re-queued job's place
    (a re-sent message would join the back of its broker's list)."""
    app.send_task(task_name, args=[job_id])


def queue_length(app: Celery, queue: str) -> int:
    """Messages waiting in ``queue`` (not counting ones a worker has taken)."""
    with app.connection_for_write() as connection:
        declared = connection.default_channel.queue_declare(queue=queue)
        return int(declared.message_count)
