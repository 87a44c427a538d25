"""Prometheus metrics of the API: requests counted per route template, and ``GET /metrics``.

Requests are counted by Flask's URL rule (``/v1/jobs/<job_id>``, never the raw path, so job ids
do not become series), method and status, with a latency histogram. ``gentrain api`` runs
several gunicorn processes: each counts its own requests, so they count into files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set by the CLI before
gunicorn starts) and ``/metrics``, whichever process answers it, sums them all. Without that
variable (the tests, a single process) the counts stay in the process's memory.

``/metrics`` adds what the database and broker say when scraped (``metrics_reads``). It needs an
admin key, except from loopback when keys are not required for everything (a Prometheus on the
same machine scrapes without a secret; see ``services.api.auth``): it names owners and job ids.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from services.api.auth import METRICS_PATH, caller
from services.api.errors import ApiError
from services.api.metrics_reads import DatabaseCollector
from shared.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"  # a path no rule matches (404s): one series, whatever was asked

# This process's request figures; in multiprocess mode they are written to files, read back by
# MultiProcessCollector. One registry per process: apps made in tests share it.
_REQUESTS_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "gentrain_http_requests_total",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
    registry=_REQUESTS_REGISTRY,
)
LATENCY = Histogram(
    "gentrain_http_request_duration_seconds",
    "Seconds from a request's arrival to its response (an event stream: to its first byte)",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=_REQUESTS_REGISTRY,
)

bp = Blueprint("metrics", __name__)


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def register_request_metrics(app: Flask) -> None:
    """Count every request the app answers (register before auth: refusals count too)."""

    @app.before_request
    def _started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _answered(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            route, method = _route(), request.method
            REQUESTS.labels(route, method, str(response.status_code)).inc()
            LATENCY.labels(route, method).observe(time.perf_counter() - started)
        return response

    @app.teardown_request
    def _failed(error: BaseException | None) -> None:
        # An exception no handler turned into a response: after_request never ran.
        started = g.pop("metrics_started", None)
        if started is not None and error is not None:
            route, method = _route(), request.method
            REQUESTS.labels(route, method, "500").inc()
            LATENCY.labels(route, method).observe(time.perf_counter() - started)


def scrape_registry(settings: Settings) -> CollectorRegistry:
    """The registry ``/metrics`` renders: every process's request figures, and the database's."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_LocalRequests())
    registry.register(DatabaseCollector(settings))
    return registry


class _LocalRequests:
    """This process's request figures, when no multiprocess folder is set."""

    def collect(self):  # type: ignore[no-untyped-def]
        return _REQUESTS_REGISTRY.collect()


@bp.get(METRICS_PATH)
def metrics() -> Response:
    """Prometheus text exposition: requests, jobs, queues, heartbeats and storage."""
    if not caller().is_admin:
        raise ApiError(403, "forbidden", "metrics need an admin key")
    registry = current_app.extensions.get("gentrain.metrics_registry")
    if registry is None:
        registry = scrape_registry(current_app.extensions["gentrain.settings"])
        current_app.extensions["gentrain.metrics_registry"] = registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
