"""Hyperparameter sweeps (issue 15): Optuna searches a kind's parameters, each trial an ordinary
job. ``spec`` validates a sweep, ``driver`` runs it (Optuna is imported only there and in
``study``, never by the API at start)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.db.models import Sweep, new_id
from shared.sweeps.spec import SweepSpec


def create_sweep(
    session: Session, spec: SweepSpec, owner: str, dataset_id: str, priority: int
) -> str:
    """Store a validated sweep (its study and trials come with the first drive); its id."""
    sweep_id = new_id()
    sweep = Sweep(
        id=sweep_id,
        study_name=f"gentrain-sweep-{sweep_id}",
        owner=owner,
        kind=spec.kind,
        dataset_id=dataset_id,
        params=spec.params,
        space=spec.space,
        sampler=spec.sampler,
        pruner=spec.pruner,
        trials=spec.trials,
        parallel=spec.parallel,
        metric=spec.metric,
        direction=spec.direction,
        seed=spec.seed,
        priority=priority,
    )
    session.add(sweep)
    session.flush()
    return sweep_id
