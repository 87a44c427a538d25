"""The worker's Celery app (``celery -A workers.celery_app worker``)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_process_init

from shared.db.session import dispose_engines
from shared.queue import make_celery
from shared.settings import get_settings

app = make_celery(get_settings(), name="gentrain-worker")
app.set_default()
import workers.tasks  # noqa: E402,F401 - registers the tasks on the app

log = logging.getLogger(__name__)


@worker_process_init.connect
def _child_started(**_kwargs: Any) -> None:
    # Each pool child is forked from a parent that never imported TensorFlow; it gets its own
    # database connections and loads TensorFlow now, so the first job does not wait for it.
    dispose_engines()
    if os.environ.get("GENTRAIN_PRELOAD_TENSORFLOW", "1") == "1":
        import tensorflow  # noqa: F401

        log.info("TensorFlow loaded in worker child %d", os.getpid())
