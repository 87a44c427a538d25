"""The reaper: re-queues jobs whose worker died, and re-sends queued jobs the broker lost.

The database is the source of truth; the queue only carries ids, so anything the broker loses
(a Redis restart or flush, a message acknowledged by a worker that then died) is sent again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from celery import Celery
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from shared.db.models import utcnow
from shared.db.session import session_scope
from shared.jobs import mark_enqueued, notify, reap, stale_jobs, unsent_jobs
from shared.kinds import SAMPLE_KIND
from shared.queue import (
    SAMPLE_QUEUE,
    SAMPLE_TASK,
    TRAIN_QUEUE,
    TRAIN_TASK,
    enqueue,
    queue_length,
)
from shared.retention import retention_pass
from shared.settings import Settings
from shared.storage import ObjectStore, open_store
from shared.sweeps.driver import drive_all

log = logging.getLogger(__name__)

# The reaper's figures, served by `gentrain reaper --metrics-port` (one process, no pool).
REGISTRY = CollectorRegistry(auto_describe=True)
REAPED = Counter(
    "gentrain_reaper_jobs_total",
    "Jobs the reaper acted on, by action: requeued (worker lost), failed (worker lost too often), "
    "cancelled, resent (message lost), swept (superseded objects removed), expired (retention)",
    ["action"],
    registry=REGISTRY,
)
PASSES = Counter("gentrain_reaper_passes_total", "Reaper passes run", registry=REGISTRY)
PASS_ERRORS = Counter(
    "gentrain_reaper_pass_errors_total", "Reaper passes that failed", registry=REGISTRY
)
LAST_PASS = Gauge(
    "gentrain_reaper_last_pass_timestamp_seconds",
    "When the last reaper pass ended (Unix time)",
    registry=REGISTRY,
)
ACTIONS = ("requeued", "failed", "cancelled", "resent", "swept", "expired")
for _action in ACTIONS:
    REAPED.labels(_action)  # every action shows from the start, at 0


@dataclass
class ReapReport:
    """What one pass did, by job id."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)  # sweeps' trials created and sent
    swept: list[str] = field(default_factory=list)  # superseded attempts' objects removed
    expired: list[str] = field(default_factory=list)  # artifacts removed (GENTRAIN_RETAIN_DAYS)


def reap_once(settings: Settings, app: Celery, store: ObjectStore | None = None) -> ReapReport:
    """One pass: handle jobs with a stale heartbeat, (re)send queued jobs nobody took, then
    remove ended jobs' superseded and expired objects."""
    report = ReapReport()
    _retain(settings, store, report)
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
    with session_scope(settings.database_url) as session:
        for job in stale_jobs(session, stale_before):
            outcome = reap(session, job, settings.max_attempts)
            getattr(report, outcome.value).append(job.id)
    # Sweeps move on here too, whoever else drives them (issue 15): a dead driver stops none.
    report.trials = drive_all(app, settings.database_url)
    resend_before = now - timedelta(seconds=settings.requeue_after_seconds)
    # A queued job's message is presumed lost only when its queue is empty: while messages wait
    # there, its own is most likely among them (re-sending would only pile up duplicates).
    empty = {}
    for queue in (TRAIN_QUEUE, SAMPLE_QUEUE):
        try:
            empty[queue] = queue_length(app, queue) == 0
        except Exception:  # noqa: BLE001 - broker down: nothing can be sent this pass
            log.warning("cannot read the length of queue %s", queue, exc_info=True)
            _count(report)
            return report
    with session_scope(settings.database_url) as session:
        waiting = unsent_jobs(session, resend_before)
        for job in waiting:
            is_sample = job.kind == SAMPLE_KIND
            if (
                job.enqueued_at is not None
                and not empty[SAMPLE_QUEUE if is_sample else TRAIN_QUEUE]
            ):
                continue
            task = SAMPLE_TASK if is_sample else TRAIN_TASK
            try:
                enqueue(app, task, job.id)
            except Exception:  # noqa: BLE001 - the broker is down; try again next pass
                log.warning("cannot send job %s; will retry", job.id, exc_info=True)
                break
            mark_enqueued(session, job.id)
            report.resent.append(job.id)
    for name in ("requeued", "failed", "cancelled", "resent", "trials"):
        if ids := getattr(report, name):
            log.info("reaper %s: %s", name, ", ".join(ids))
    _count(report)
    return report


def _count(report: ReapReport) -> None:
    for action in ACTIONS:
        if ids := getattr(report, action):
            REAPED.labels(action).inc(len(ids))


def _retain(settings: Settings, store: ObjectStore | None, report: ReapReport) -> None:
    """Sweep and expire (``shared.retention``); storage being down must not stop the reaping."""
    try:
        done = retention_pass(settings, store or open_store(settings))
    except Exception:  # noqa: BLE001 - retried at the next pass
        log.warning("retention pass failed; will retry", exc_info=True)
        return
    report.swept, report.expired = done.swept, done.expired
    for name in ("swept", "expired"):
        if ids := getattr(report, name):
            log.info("reaper %s: %s", name, ", ".join(ids))


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve the reaper's figures on ``address:port``/metrics."""
    start_http_server(port, addr=address, registry=REGISTRY)
    log.info("reaper metrics on http://%s:%d/metrics", address, port)


def run_reaper(settings: Settings, app: Celery, stop_after: float | None = None) -> None:
    """Reap every ``reaper_interval_seconds`` until interrupted (or ``stop_after`` seconds)."""
    notify.configure(settings.broker_url)  # re-queues and failures wake the API's event streams
    store = open_store(settings)  # one client for every pass
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        try:
            reap_once(settings, app, store)
            PASSES.inc()
        except Exception:  # noqa: BLE001 - a database hiccup must not end the reaper
            PASS_ERRORS.inc()
            log.exception("reaper pass failed")
        LAST_PASS.set(time.time())
        time.sleep(settings.reaper_interval_seconds)
