"""The worker's Celery app (``celery -A workers.celery_app worker``)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
    worker_shutting_down,
)

from shared.db.session import dispose_engines, session_scope
from shared.jobs import notify, request_drain
from shared.log_format import configure as configure_logging
from shared.queue import make_celery
from shared.settings import get_settings
from workers import metrics

app = make_celery(get_settings(), name="gentrain-worker")
notify.configure(get_settings().broker_url)  # job changes wake the API's event streams
app.set_default()
import workers.tasks  # noqa: E402,F401 - registers the tasks on the app

log = logging.getLogger(__name__)


if get_settings().log_format == "json":

    @setup_logging.connect
    def _json_logs(**_kwargs: Any) -> None:
        # Connected, this replaces Celery's own logging setup: every record (Celery's, the
        # runner's, a job's) becomes a JSON line with the job id and attempt it belongs to.
        configure_logging("worker", "json")


@worker_process_init.connect
def _child_started(**_kwargs: Any) -> None:
    # Each pool child is forked from a parent that never imported TensorFlow; it gets its own
    # database connections and loads TensorFlow now, so the first job does not wait for it.
    dispose_engines()
    if os.environ.get("GENTRAIN_PRELOAD_TENSORFLOW", "1") == "1":
        import tensorflow  # noqa: F401

        log.info("TensorFlow loaded in worker child %d", os.getpid())


@worker_shutting_down.connect
def _drain(sender: str, **_kwargs: Any) -> None:
    # Warm shutdown (SIGTERM): the running job stops after its current epoch, checkpoints and
    # is handed back to the queue, so the worker exits within one epoch, not one job.
    try:
        with session_scope(get_settings().database_url) as session:
            count = request_drain(session, sender)
        log.info("worker %s shutting down: %d running job(s) asked to hand back", sender, count)
    except Exception:  # noqa: BLE001 - the reaper re-queues the job if this fails
        log.exception("could not ask running jobs to hand back")


@worker_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    # `gentrain worker --metrics-port`: the main process serves what its pool children count
    # (prometheus_client's multiprocess mode; the folder was made before Celery started).
    port = os.environ.get(metrics.PORT_ENV)
    if port and os.environ.get(metrics.MULTIPROC_ENV):
        metrics.serve(int(port), os.environ.get(metrics.ADDRESS_ENV, "0.0.0.0"))


@worker_process_shutdown.connect
def _child_exited(pid: int | None = None, **_kwargs: Any) -> None:
    # A pool child is gone: its live gauges (throughput, heartbeat) stop counting.
    metrics.process_exited(pid or os.getpid())


@worker_shutdown.connect
def _remove_metrics_files(**_kwargs: Any) -> None:
    # The pool is gone: the folder `gentrain worker --metrics-port` made for it goes too.
    metrics.remove_own_folder()
