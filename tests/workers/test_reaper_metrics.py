"""The reaper's Prometheus counters move with what a pass did (served on --metrics-port)."""

from __future__ import annotations

import requests
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.job_state import JobStatus
from shared.queue import make_celery
from shared.settings import Settings
from tests.conftest import free_port
from tests.workers.test_reaper import new_job, status_of
from workers.reaper import REGISTRY, reap_once, serve_metrics


def counts(text: str) -> dict[str, float]:
    """``gentrain_reaper_jobs_total`` by action."""
    return {
        sample.labels["action"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gentrain_reaper_jobs_total"
    }


def test_reaper_counts_what_it_did(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"heartbeat_timeout_seconds": 30, "requeue_after_seconds": 30, "max_attempts": 2}
    )
    before = counts(generate_latest(REGISTRY).decode())
    url = tuned.database_url
    lost = new_job(url, JobStatus.RUNNING, age_seconds=120, attempts=1)  # re-queued
    capped = new_job(url, JobStatus.RUNNING, age_seconds=120, attempts=2)  # failed
    reap_once(tuned, make_celery(tuned))
    assert status_of(url, lost).status == "queued" and status_of(url, capped).status == "failed"
    after = counts(generate_latest(REGISTRY).decode())
    moved = {action: after[action] - before.get(action, 0) for action in after}
    assert moved["requeued"] == 1 and moved["failed"] == 1 and moved["cancelled"] == 0


def test_reaper_metrics_are_served_on_their_port() -> None:
    port = free_port()
    serve_metrics(port, "127.0.0.1")
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert set(counts(response.text)) == {
        "requeued", "failed", "cancelled", "resent", "swept", "expired",
    }  # fmt: skip
