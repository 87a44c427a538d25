"""The reads behind the job views: Core statements on an autocommit connection, no ORM objects.

A client polls ``GET /v1/jobs/<id>`` every second or so while its job runs, which makes it the
API's hottest path, and loading a job view's rows through the ORM cost several times the CPU
of these statements (figures and the command: docs/benchmarks.md, ``bench/status_breakdown.py``).
Writes stay in the ORM, through ``shared.jobs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from sqlalchemy import Connection, Row, String, Table, bindparam, func, select

from shared.db.models import Artifact, Dataset, Job, JobEvent, Metric
from shared.jobs import ChangeType

# A result row of any width; fields are read by name (``row.status``).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

JOBS = cast(Table, Job.__table__)
DATASETS = cast(Table, Dataset.__table__)
EVENTS = cast(Table, JobEvent.__table__)
ARTIFACTS = cast(Table, Artifact.__table__)
METRICS = cast(Table, Metric.__table__)

_J = JOBS.c
SUMMARY_COLUMNS = (
    _J.id,
    _J.kind,
    _J.model_kind,
    _J.status,
    _J.priority,
    _J.progress,
    DATASETS.c.name.label("dataset_name"),
    _J.parent_id,
    _J.owner,
    _J.created_at,
    _J.finished_at,
)
DETAIL_COLUMNS = (
    _J.params,
    _J.attempts,
    _J.error,
    _J.eta_seconds,
    _J.started_at,
    _J.updated_at,
    _J.heartbeat_at,
    _J.param_count,
    _J.replicas,
    _J.global_batch_size,
    _J.results,
    _J.expired_at,
    _J.sweep_id,
)
_WITH_DATASET = JOBS.outerjoin(DATASETS, DATASETS.c.id == _J.dataset_id)
_JOB_ID = bindparam("job_id", type_=String)

# Built once: SQLAlchemy caches each statement's compiled form, so a read pays only execution.
_JOB = select(*SUMMARY_COLUMNS, *DETAIL_COLUMNS).select_from(_WITH_DATASET).where(_J.id == _JOB_ID)
_OWNER = select(_J.owner).where(_J.id == _JOB_ID)
_EVENTS = (
    select(EVENTS.c.status, EVENTS.c.at, EVENTS.c.message)
    .where(EVENTS.c.job_id == _JOB_ID, EVENTS.c.type == ChangeType.STATUS.value)
    .order_by(EVENTS.c.id)
)
_ARTIFACTS = (
    select(
        ARTIFACTS.c.job_id,
        ARTIFACTS.c.name,
        ARTIFACTS.c.size_bytes,
        ARTIFACTS.c.content_type,
        ARTIFACTS.c.sha256,
        ARTIFACTS.c.created_at,
    )
    .where(ARTIFACTS.c.job_id == _JOB_ID)
    .order_by(ARTIFACTS.c.id)
)
# The job view shows the newest artifacts only (a job may have many grids); the rest are paged.
_NEWEST_ARTIFACTS = (
    _ARTIFACTS.order_by(None).order_by(ARTIFACTS.c.id.desc()).limit(bindparam("artifact_limit"))
)
_ARTIFACT_COUNT = select(func.count()).select_from(ARTIFACTS).where(ARTIFACTS.c.job_id == _JOB_ID)
_METRIC_COLUMNS = (METRICS.c.step, METRICS.c.attempt, METRICS.c["values"], METRICS.c.seconds)
_LATEST_METRIC = (
    select(*_METRIC_COLUMNS, METRICS.c.at)
    .where(METRICS.c.job_id == _JOB_ID)
    .order_by(METRICS.c.step.desc(), METRICS.c.attempt.desc())
    .limit(1)
)
# One row per step: the latest attempt's (a job re-queued after a crash may repeat a step).
_LATER = METRICS.alias("later")
_LATEST_ATTEMPT = ~(
    select(_LATER.c.id)
    .where(
        _LATER.c.job_id == METRICS.c.job_id,
        _LATER.c.step == METRICS.c.step,
        _LATER.c.attempt > METRICS.c.attempt,
    )
    .exists()
)
_METRICS = (
    select(*_METRIC_COLUMNS, METRICS.c.at)
    .where(METRICS.c.job_id == _JOB_ID, METRICS.c.step > bindparam("after_step"), _LATEST_ATTEMPT)
    .order_by(METRICS.c.step)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_METRIC_STEPS = select(func.count(func.distinct(METRICS.c.step))).where(METRICS.c.job_id == _JOB_ID)


@dataclass(frozen=True)
class JobRecord:
    """Everything the full view of a job shows, as plain rows."""

    job: AnyRow
    events: Sequence[AnyRow]
    artifacts: Sequence[AnyRow]
    latest_metric: AnyRow | None
    # How many artifacts the job has; ``artifacts`` holds the newest of them, oldest first.
    artifact_count: int = 0


def job_owner(connection: Connection, job_id: str) -> str | None:
    """The owner of a job, or None if there is no such job."""
    owner: str | None = connection.scalar(_OWNER, {"job_id": job_id})
    return owner


def fetch_job(connection: Connection, job_id: str, artifact_limit: int = 50) -> JobRecord | None:
    """A job with its history, newest ``artifact_limit`` artifacts and latest metrics, or None
    if there is no such job."""
    params = {"job_id": job_id}
    job = connection.execute(_JOB, params).first()
    if job is None:
        return None
    newest = connection.execute(_NEWEST_ARTIFACTS, {**params, "artifact_limit": artifact_limit})
    artifacts = list(newest.all())[::-1]
    count = len(artifacts)
    if count >= artifact_limit:
        count = connection.scalar(_ARTIFACT_COUNT, params) or 0
    return JobRecord(
        job=job,
        events=connection.execute(_EVENTS, params).all(),
        artifacts=artifacts,
        latest_metric=connection.execute(_LATEST_METRIC, params).first(),
        artifact_count=count,
    )


def job_artifacts(
    connection: Connection, job_id: str, limit: int, offset: int
) -> tuple[int, list[AnyRow]]:
    """How many artifacts a job has, and one page of them in the order they were made."""
    total = connection.scalar(_ARTIFACT_COUNT, {"job_id": job_id}) or 0
    page = _ARTIFACTS.limit(limit).offset(offset)
    return total, list(connection.execute(page, {"job_id": job_id}).all())


def job_metrics(
    connection: Connection, job_id: str, limit: int, offset: int = 0, after_step: int = -1
) -> tuple[int, list[AnyRow]]:
    """How many steps a job has metrics for, and one page of them in step order (steps after
    ``after_step``, skipping ``offset``), one row per step: the latest attempt's."""
    params = {"job_id": job_id}
    total = connection.scalar(_METRIC_STEPS, params) or 0
    page = {**params, "after_step": after_step, "limit": limit, "offset": offset}
    return total, list(connection.execute(_METRICS, page).all())


def list_jobs(
    connection: Connection,
    owner: str | None,
    status: str | None,
    kind: str | None,
    limit: int,
    offset: int,
    extra_columns: Sequence[Any] = (),
    priority: int | None = None,
    by_priority: bool = False,
    id_prefix: str | None = None,
) -> tuple[int, list[AnyRow]]:
    """The total of matching jobs and one page of them, newest first (``owner`` None: all;
    ``by_priority``: highest priority first, then newest), with ``extra_columns`` of the jobs
    table beside the summary's; ``id_prefix`` (lowercase hex) keeps the ids that start with it."""
    conditions = []
    if id_prefix is not None:
        # A range on the primary key (an index seek; ids are lowercase hex, and "g" sorts after
        # every hex digit), then the prefix itself in case a collation orders otherwise.
        conditions += [_J.id >= id_prefix, _J.id < id_prefix + "g", _J.id.startswith(id_prefix)]
    if priority is not None:
        conditions.append(_J.priority == priority)
    if owner is not None:
        conditions.append(_J.owner == owner)
    if status is not None:
        conditions.append(_J.status == status)
    if kind is not None:
        conditions.append(_J.kind == kind)
    total = connection.scalar(select(func.count()).select_from(JOBS).where(*conditions)) or 0
    page = (
        select(*SUMMARY_COLUMNS, *extra_columns)
        .select_from(_WITH_DATASET)
        .where(*conditions)
        .order_by(*((_J.priority.desc(),) if by_priority else ()), _J.created_at.desc(), _J.id)
        .limit(limit)
        .offset(offset)
    )
    return total, list(connection.execute(page).all())


def find_artifact(connection: Connection, job_id: str, name: str) -> AnyRow | None:
    """One artifact of a job by name, with its storage key, or None."""
    query = select(*_ARTIFACTS.selected_columns, ARTIFACTS.c.storage_key).where(
        ARTIFACTS.c.job_id == job_id, ARTIFACTS.c.name == name
    )
    return connection.execute(query).first()
