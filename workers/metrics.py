"""A worker's own Prometheus figures: attempts, outcomes, training time and throughput.

What the database knows (jobs by status, heartbeat ages, storage) is exported by the API at
scrape time; these are what only the worker sees as it trains. Jobs run in Celery's pool
children, so the figures use prometheus_client's multiprocess mode: each child writes its values
to files under ``PROMETHEUS_MULTIPROC_DIR`` and the worker's main process serves their sum on
``gentrain worker --metrics-port``. Without that variable (tests calling the runner directly,
``--metrics-port`` unset) the figures live in this process's memory and are served by nobody.
"""

from __future__ import annotations

import logging
import os
import shutil

from prometheus_client import CollectorRegistry, Counter, Gauge, multiprocess, start_http_server

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PORT_ENV = "GENTRAIN_WORKER_METRICS_PORT"
ADDRESS_ENV = "GENTRAIN_WORKER_METRICS_ADDRESS"
# The folders `gentrain worker --metrics-port` makes (services/cli/process_commands.py).
FOLDER_PREFIX = "gentrain-metrics-"
# Not registered anywhere: in multiprocess mode the values are read back from the files.
_REGISTRY = CollectorRegistry(auto_describe=True)

ATTEMPTS_STARTED = Counter(
    "gentrain_worker_job_attempts_started_total",
    "Job attempts this worker started training (a model was built), by kind",
    ["kind"],
    registry=_REGISTRY,
)
JOBS_FINISHED = Counter(
    "gentrain_worker_jobs_finished_total",
    "Runs this worker ended, by outcome: succeeded, failed, cancelled, or requeued (handed back)",
    ["outcome"],
    registry=_REGISTRY,
)
TRAINING_SECONDS = Counter(
    "gentrain_worker_training_seconds_total",
    "Seconds spent in completed epochs (or blocks of GAN steps), by kind",
    ["kind"],
    registry=_REGISTRY,
)
TRAIN_STEPS = Counter(
    "gentrain_worker_train_steps_total",
    "Optimizer steps (batches) of completed epochs, by kind",
    ["kind"],
    registry=_REGISTRY,
)
TRAIN_IMAGES = Counter(
    "gentrain_worker_train_images_total",
    "Images trained on in completed epochs (steps x global batch; a last partial batch counts "
    "whole), by kind",
    ["kind"],
    registry=_REGISTRY,
)
IMAGES_PER_SECOND = Gauge(
    "gentrain_worker_job_images_per_second",
    "Images per second of the last epoch of the job this pool process runs (0 when idle); one "
    "series per process (pid), one job per process at a time",
    ["kind"],
    registry=_REGISTRY,
    multiprocess_mode="liveall",
)
LAST_HEARTBEAT = Gauge(
    "gentrain_worker_last_heartbeat_timestamp_seconds",
    "When this pool process last stamped its job's heartbeat (Unix time; 0 when idle)",
    registry=_REGISTRY,
    multiprocess_mode="liveall",
)


def attempt_started(kind: str) -> None:
    """A job attempt built its model and starts training."""
    ATTEMPTS_STARTED.labels(kind).inc()


def epoch_trained(kind: str, steps: int, images: int, seconds: float) -> None:
    """One completed epoch (or block of steps): add its time and work, set the throughput."""
    TRAINING_SECONDS.labels(kind).inc(max(seconds, 0.0))
    TRAIN_STEPS.labels(kind).inc(max(steps, 0))
    TRAIN_IMAGES.labels(kind).inc(max(images, 0))
    IMAGES_PER_SECOND.labels(kind).set(images / seconds if seconds > 0 else 0.0)


def run_ended(outcome: str) -> None:
    """A run ended with ``outcome`` (a terminal status, or ``requeued``)."""
    JOBS_FINISHED.labels(outcome).inc()


def run_stopped(kind: str | None) -> None:
    """This process runs no job any more: its throughput and heartbeat go back to 0."""
    if kind is not None:
        IMAGES_PER_SECOND.labels(kind).set(0.0)
    LAST_HEARTBEAT.set(0.0)


def heartbeat_stamped(at: float) -> None:
    """The running job's heartbeat was written at ``at`` (Unix time)."""
    LAST_HEARTBEAT.set(at)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve the pool's figures (summed over its processes) on ``address:port``/metrics."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=address, registry=registry)
    log.info("worker metrics on http://%s:%d/metrics", address, port)


def remove_own_folder() -> None:
    """Remove the value files' folder if ``gentrain worker`` made it for this worker."""
    folder = os.environ.get(MULTIPROC_ENV, "")
    if folder and os.path.basename(folder).startswith(FOLDER_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


def process_exited(pid: int) -> None:
    """A pool process is gone: its live gauges stop counting (its counters are kept)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
