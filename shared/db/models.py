"""SQLAlchemy 2 models: jobs, their status history, metrics and artifacts, and datasets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random identifier for a job or dataset."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every gentrain table."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Dataset(Base):
    """An uploaded ``.npz`` of images (and optionally labels) that jobs train on."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_datasets_owner_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64), default="", index=True)
    storage_key: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # {"x_train": [4000, 28, 28], ...} and dtypes, as validated at upload.
    arrays: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sweep(Base):
    """A hyperparameter sweep (issue 15): trials are jobs with its ``sweep_id``; Optuna's study
    (named by ``study_name``, in Optuna's tables of the same database) does the searching."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), default="", index=True)
    kind: Mapped[str] = mapped_column(String(32))
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    # Fixed parameters of every trial, and the space searched: {name: {low, high, log} | {values}}.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    space: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sampler: Mapped[str] = mapped_column(String(16))
    pruner: Mapped[str] = mapped_column(String(16), default="none")
    trials: Mapped[int] = mapped_column(Integer)
    parallel: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    seed: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    study_name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # When it was cancelled, and when its last trial ended (the drivers skip it from then on).
    cancelled_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class Job(Base):
    """A training or sampling job. The database, not the queue, is the source of truth."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
        # The submission rate limit counts an owner's recent jobs.
        Index("ix_jobs_owner_created_at", "owner", "created_at"),
        # Workers claim the queued job of highest priority, oldest first (issue 13).
        Index("ix_jobs_queue_order", "status", "priority", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # The model kind this job trains, or (for a sampling job) the kind of its parent.
    model_kind: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    # The sweep this job is a trial of, and the number of its Optuna trial (issue 15).
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id"), index=True)
    sweep_trial: Mapped[int | None] = mapped_column(Integer)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    owner: Mapped[str] = mapped_column(String(64), default="", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    param_count: Mapped[int | None] = mapped_column(Integer)
    replicas: Mapped[int | None] = mapped_column(Integer)
    global_batch_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    # When the job id was last put on the queue (a queued job not taken soon is sent again).
    enqueued_at: Mapped[datetime | None] = mapped_column()
    # Who runs it now: the worker's name and a token that changes with every claim, so a worker
    # that lost its claim (presumed dead, job re-queued) stops writing.
    worker: Mapped[str | None] = mapped_column(String(255))
    lease: Mapped[str | None] = mapped_column(String(32))
    # Set when the worker running it shuts down: stop at the next epoch and hand the job back.
    drain_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # 0-9, higher first; among equals, the oldest (created_at) first, re-queued or not.
    priority: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))
    # Retention (issue 13): when the objects of superseded attempts were removed after the job
    # ended (null: not yet), and when its artifacts were removed for being older than
    # GENTRAIN_RETAIN_DAYS (the row, metrics and history stay; null: not expired).
    swept_at: Mapped[datetime | None] = mapped_column()
    expired_at: Mapped[datetime | None] = mapped_column()

    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job", order_by="JobEvent.id", cascade="all, delete-orphan"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="job", order_by="Artifact.id", cascade="all, delete-orphan"
    )
    dataset: Mapped[Dataset | None] = relationship()


class JobEvent(Base):
    """One entry of the append-only change log of jobs (written only by ``shared.jobs``).

    Each writer holds the job's row, so one job's ids commit in increasing order: a reader of
    one job that resumes after an id misses nothing (across jobs, see ``shared.jobs``).
    ``type`` says what changed: a ``status`` entry (its status and message) is one line of the
    job's history; ``progress``, ``metrics``, ``artifact`` and ``log`` entries carry what
    changed in ``payload``.
    """

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(16), default="status", server_default="status")
    status: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="events")


class Metric(Base):
    """Metrics of one epoch (or one block of GAN steps) of a training job."""

    __tablename__ = "metrics"
    __table_args__ = (
        UniqueConstraint("job_id", "step", "attempt", name="uq_metrics_job_step_attempt"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    # The epoch number (1-based) or, for step-counted models, the global step.
    step: Mapped[int] = mapped_column(Integer)
    # Which attempt of the job trained it (a job re-queued after a crash resumes in a new one).
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    seconds: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A file a job produced (model, checkpoint, image), held in object storage."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_artifacts_job_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    storage_key: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="artifacts")


class ApiKey(Base):
    """An API key: stored as a SHA-256 digest, shown once when created."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    # The first characters of the key, to tell keys apart in listings.
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class WebSession(Base):
    """A dashboard sign-in. The browser's cookie holds a random id; only its SHA-256 is stored.
    Who it acts for is read through its key, so revoking the key ends its sessions."""

    __tablename__ = "web_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    # Sent back by the page with every unsafe request (form field or X-CSRF-Token header).
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ObjectRemoval(Base):
    """Objects to remove from storage: what a deleted job or dataset, or an expired job, left.
    Removed right after the rows, and again by the reaper once a grace period has passed (an
    upload by a worker frozen across the delete lands late; storage may have been down)."""

    __tablename__ = "object_removals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # An object's key, or a prefix (ending in "/") under which every object goes.
    key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
