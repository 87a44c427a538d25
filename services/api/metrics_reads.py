"""What the database and the broker say, as Prometheus metrics computed when scraped.

Each scrape runs cheap Core statements on one autocommit connection (jobs by kind and status
with their attempts, one GROUP BY; the oldest queued job per queue and the running jobs'
heartbeats, both on indexed statuses) and asks the broker how many messages wait in each queue.
Stored bytes per owner join every artifact row to its job, the one statement that grows with
the artifacts (about 30 ms for 29,000 of them on a busy 2-core machine): an API process reads it
at most every ``STORAGE_TTL_SECONDS``, which an alert on quotas does not notice. Nothing else is
kept between scrapes, so nothing drifts from the database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Table, case, func, select

from shared.db.models import Artifact, Dataset, Job, utcnow
from shared.db.session import read_connection
from shared.job_state import JobStatus
from shared.kinds import SAMPLE_KIND
from shared.queue import SAMPLE_QUEUE, TRAIN_QUEUE
from shared.settings import Settings

JOBS = cast(Table, Job.__table__)
DATASETS = cast(Table, Dataset.__table__)
ARTIFACTS = cast(Table, Artifact.__table__)
_J = JOBS.c
STORAGE_TTL_SECONDS = 60.0
_QUEUE = case((_J.kind == SAMPLE_KIND, SAMPLE_QUEUE), else_=TRAIN_QUEUE).label("queue")
_HELD = (JobStatus.RUNNING.value, JobStatus.CANCELLING.value)

# Built once: SQLAlchemy caches each statement's compiled form.
_BY_STATUS = select(
    _J.kind, _J.status, func.count().label("jobs"), func.coalesce(func.sum(_J.attempts), 0)
).group_by(_J.kind, _J.status)
# ix_jobs_queue_order (status, priority, created_at) serves the queued rows.
_OLDEST_QUEUED = (
    select(_QUEUE, func.min(_J.created_at))
    .where(_J.status == JobStatus.QUEUED.value)
    .group_by(_QUEUE)
)
_RUNNING = select(_J.id, _J.model_kind, _J.worker, _J.heartbeat_at).where(_J.status.in_(_HELD))
_DATASET_BYTES = select(
    DATASETS.c.owner, func.coalesce(func.sum(DATASETS.c.size_bytes), 0)
).group_by(DATASETS.c.owner)
_ARTIFACT_BYTES = (
    select(_J.owner, func.coalesce(func.sum(ARTIFACTS.c.size_bytes), 0))
    .select_from(ARTIFACTS.join(JOBS, JOBS.c.id == ARTIFACTS.c.job_id))
    .group_by(_J.owner)
)


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # SQLite through Core: naive UTC
        then = then.replace(tzinfo=UTC)
    return max((now - then).total_seconds(), 0.0)


def queue_lengths(broker_url: str, broker_dir: Path, redis_client: Any) -> dict[str, int]:
    """Messages waiting in each Celery queue: LLEN on Redis (Celery's queue is a list named after
    it; messages of priority 0 only, which is all gentrain sends), or the message files of the
    embedded filesystem broker (named ``<time>_<id>.<queue>.msg``)."""
    queues = (TRAIN_QUEUE, SAMPLE_QUEUE)
    if broker_url.startswith("redis") and redis_client is not None:
        with redis_client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
            return {queue: int(n) for queue, n in zip(queues, pipe.execute(), strict=True)}
    if broker_url.startswith("filesystem://"):
        folder = broker_dir / "in"
        counts = dict.fromkeys(queues, 0)
        if folder.is_dir():
            for entry in folder.iterdir():
                for queue in queues:
                    if entry.name.endswith(f".{queue}.msg"):
                        counts[queue] += 1
        return counts
    return {}


class DatabaseCollector(Collector):
    """The jobs, storage and queue metrics, read from the database and broker when scraped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._storage: tuple[float, list[tuple[str, str, int]]] | None = None
        self._redis: Any = None
        if settings.broker_url.startswith("redis"):
            import redis

            self._redis = redis.Redis.from_url(
                settings.broker_url, socket_timeout=2, socket_connect_timeout=2
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        yield from self._database()
        yield from self._queues()
        took = GaugeMetricFamily(
            "gentrain_metrics_collect_seconds",
            "Seconds this scrape spent reading the database and the broker",
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _database(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "gentrain_jobs", "Jobs by kind and status", labels=["kind", "status"]
        )
        attempts = CounterMetricFamily(
            "gentrain_job_attempts",
            "Attempts made by the jobs in the database, by kind and status (deleted jobs "
            "take theirs away: a counter reset)",
            labels=["kind", "status"],
        )
        oldest = GaugeMetricFamily(
            "gentrain_queued_job_oldest_age_seconds",
            "Age of the oldest queued job (since it was created), by queue; 0 when none waits",
            labels=["queue"],
        )
        heartbeat = GaugeMetricFamily(
            "gentrain_running_job_heartbeat_age_seconds",
            "Seconds since each running (or cancelling) job's worker stamped its heartbeat",
            labels=["job_id", "kind", "worker"],
        )
        stored = GaugeMetricFamily(
            "gentrain_storage_bytes",
            "Bytes stored per owner: uploaded datasets and jobs' artifacts (read at most once a "
            "minute by each API process)",
            labels=["owner", "type"],
        )
        now = utcnow()
        with read_connection(self.settings.database_url) as connection:
            for kind, status, count, attempt_sum in connection.execute(_BY_STATUS):
                jobs.add_metric([kind, status], count)
                attempts.add_metric([kind, status], attempt_sum)
            ages = {queue: 0.0 for queue in (TRAIN_QUEUE, SAMPLE_QUEUE)}
            for queue, created in connection.execute(_OLDEST_QUEUED):
                ages[queue] = _age(now, created)
            for job_id, kind, worker, beat in connection.execute(_RUNNING):
                heartbeat.add_metric([job_id, kind, worker or ""], _age(now, beat))
            for owner, what, size in self._stored_bytes(connection):
                stored.add_metric([owner, what], size)
        for queue, age in ages.items():
            oldest.add_metric([queue], age)
        yield from (jobs, attempts, oldest, heartbeat, stored)
        if self.settings.owner_quota_bytes:
            quota = GaugeMetricFamily(
                "gentrain_owner_quota_bytes",
                "Bytes each owner may store (GENTRAIN_OWNER_QUOTA_BYTES)",
            )
            quota.add_metric([], self.settings.owner_quota_bytes)
            yield quota

    def _stored_bytes(self, connection: Connection) -> list[tuple[str, str, int]]:
        """(owner, datasets|artifacts, bytes), read again once ``STORAGE_TTL_SECONDS`` passed."""
        now = time.monotonic()
        if self._storage is None or now - self._storage[0] >= STORAGE_TTL_SECONDS:
            rows = [
                (owner, "datasets", int(size)) for owner, size in connection.execute(_DATASET_BYTES)
            ]
            rows += [
                (owner, "artifacts", int(size))
                for owner, size in connection.execute(_ARTIFACT_BYTES)
            ]
            self._storage = (now, rows)
        return self._storage[1]

    def _queues(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "gentrain_queue_messages",
            "Messages waiting in each broker queue (job wake-ups not yet taken by a worker)",
            labels=["queue"],
        )
        up = GaugeMetricFamily(
            "gentrain_broker_up", "Whether the broker answered this scrape (1) or not (0)"
        )
        try:
            lengths = queue_lengths(self.settings.broker_url, self.settings.broker_dir, self._redis)
        except Exception:  # noqa: BLE001 - a broker that is down is a figure, not an error
            up.add_metric([], 0)
            yield up
            return
        for queue, length in lengths.items():
            waiting.add_metric([queue], length)
        up.add_metric([], 1)
        yield from (waiting, up)
