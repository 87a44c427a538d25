"""Reads of sweeps and their trials (SQLAlchemy Core), and their JSON views: a sweep's status
is derived from its trials; its table lists each trial's parameters, status, objective and
duration; the best trial is the succeeded one with the best objective."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select

from shared.db.models import Dataset, Job, Sweep
from shared.job_state import TERMINAL_STATUSES

SWEEPS = Sweep.__table__
JOBS = Job.__table__
DATASETS = Dataset.__table__
TERMINAL = {status.value for status in TERMINAL_STATUSES}
AnyRow = Row[*tuple[Any, ...]]


def fetch_sweep(connection: Connection, sweep_id: str) -> tuple[AnyRow, list[Any]] | None:
    """A sweep (with its dataset's name) and its trials' jobs, oldest first."""
    sweep = connection.execute(
        select(SWEEPS, DATASETS.c.name.label("dataset_name"))
        .outerjoin(DATASETS, DATASETS.c.id == SWEEPS.c.dataset_id)
        .where(SWEEPS.c.id == sweep_id)
    ).first()
    if sweep is None:
        return None
    trials = connection.execute(
        select(
            JOBS.c.id,
            JOBS.c.sweep_trial,
            JOBS.c.status,
            JOBS.c.params,
            JOBS.c.results,
            JOBS.c.error,
            JOBS.c.progress,
            JOBS.c.started_at,
            JOBS.c.finished_at,
        )
        .where(JOBS.c.sweep_id == sweep_id)
        .order_by(JOBS.c.created_at, JOBS.c.id)
    ).all()
    return sweep, list(trials)


def list_sweeps(
    connection: Connection,
    owner: str | None,
    limit: int,
    offset: int,
    id_prefix: str | None = None,
) -> tuple[int, list[tuple[AnyRow, list[AnyRow]]]]:
    """A page of sweeps, newest first, each with its trials; ``owner`` None: everyone's;
    ``id_prefix`` (lowercase hex) keeps the ids that start with it."""
    where = [] if owner is None else [SWEEPS.c.owner == owner]
    if id_prefix is not None:
        where.append(SWEEPS.c.id.startswith(id_prefix, autoescape=True))
    total = connection.scalar(select(func.count()).select_from(SWEEPS).where(*where)) or 0
    ids = connection.scalars(
        select(SWEEPS.c.id)
        .where(*where)
        .order_by(SWEEPS.c.created_at.desc(), SWEEPS.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    found = [fetch_sweep(connection, sweep_id) for sweep_id in ids]
    return total, [item for item in found if item is not None]


def sweep_owner(connection: Connection, sweep_id: str) -> str | None:
    """The sweep's owner; None when there is no such sweep."""
    owner: str | None = connection.scalar(select(SWEEPS.c.owner).where(SWEEPS.c.id == sweep_id))
    return owner


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _objective(sweep: AnyRow, trial: AnyRow) -> float | None:
    value = (trial.results or {}).get(sweep.metric)
    if trial.status != "succeeded" or isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def sweep_status(sweep: AnyRow, trials: list[AnyRow]) -> str:
    """queued, running, succeeded (a trial succeeded), failed (none did), cancelling, cancelled."""
    active = [t for t in trials if t.status not in TERMINAL]
    if sweep.cancelled_at is not None:
        return "cancelling" if active else "cancelled"
    if sweep.finished_at is not None and not active:
        return "succeeded" if any(t.status == "succeeded" for t in trials) else "failed"
    if any(t.status in ("running", "cancelling") for t in trials) or len(trials) > len(active):
        return "running"
    return "queued"


def _trial_view(sweep: AnyRow, trial: AnyRow) -> dict[str, Any]:
    seconds = None
    if trial.started_at and trial.finished_at:
        seconds = round((trial.finished_at - trial.started_at).total_seconds(), 3)
    return {
        "job_id": trial.id,
        "trial": trial.sweep_trial,
        "status": trial.status,
        "params": {name: (trial.params or {}).get(name) for name in sweep.space},
        "objective": _objective(sweep, trial),
        "progress": trial.progress,
        "started_at": _iso(trial.started_at),
        "finished_at": _iso(trial.finished_at),
        "duration_seconds": seconds,
        "error": trial.error,
    }


def best_trial(sweep: AnyRow, table: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The trial with the best objective among those that succeeded; None before one has."""
    scored = [row for row in table if row["objective"] is not None]
    if not scored:
        return None
    sign = 1 if sweep.direction == "minimize" else -1
    return min(scored, key=lambda row: sign * row["objective"])


def sweep_view(sweep: AnyRow, trials: list[AnyRow], summary: bool = False) -> dict[str, Any]:
    """The public view of a sweep; ``summary``: without its trials' table."""
    table = [_trial_view(sweep, trial) for trial in trials]
    counts = {status: 0 for status in ("queued", "running", "succeeded", "failed", "cancelled")}
    for trial in trials:
        key = "running" if trial.status == "cancelling" else trial.status
        counts[key] = counts.get(key, 0) + 1
    view: dict[str, Any] = {
        "id": sweep.id,
        "kind": sweep.kind,
        "dataset": sweep.dataset_name,
        "status": sweep_status(sweep, trials),
        "sampler": sweep.sampler,
        "pruner": sweep.pruner,
        "trials": sweep.trials,
        "parallel": sweep.parallel,
        "objective": {"metric": sweep.metric, "direction": sweep.direction},
        "seed": sweep.seed,
        "priority": sweep.priority,
        "created_at": _iso(sweep.created_at),
        "cancelled_at": _iso(sweep.cancelled_at),
        "finished_at": _iso(sweep.finished_at),
        "counts": counts,
        "best": best_trial(sweep, table),
    }
    if not summary:
        view["params"] = sweep.params
        view["space"] = sweep.space
        view["trial_jobs"] = table
    return view
