"""Pruning (issue 15): a trial's worker reports each epoch's stand-in for the objective to its
Optuna trial and asks the sweep's pruner whether to go on. A pruned trial is cancelled like any
job (it stops after this epoch, its checkpoint kept) with the reason saying so.

The objective itself (test_mse, say) is measured once, at the end; an epoch reports the loss on
the held-out split (``val_loss``, else ``loss``), negated when the objective is maximised (a
PSNR rises as the loss falls), so that the pruner compares trials the way the study ranks them;
for an accuracy objective, the epoch's accuracy itself. The GAN reports no per-block stand-in
for its FID: it is never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from shared.db.models import Job, Sweep
from shared.db.session import session_scope
from shared.jobs import request_cancel

PRUNED = "pruned by the sweep's pruner"


@dataclass(frozen=True)
class TrialRef:
    """The sweep trial a job is, when its sweep prunes."""

    sweep_id: str
    trial: int
    metric: str
    direction: str


def trial_of(database_url: str, job_id: str) -> TrialRef | None:
    """The job's trial when it belongs to a sweep with a pruner; else None."""
    with session_scope(database_url) as session:
        row = session.execute(
            select(Sweep.id, Sweep.pruner, Sweep.metric, Sweep.direction, Job.sweep_trial)
            .join(Job, Job.sweep_id == Sweep.id)
            .where(Job.id == job_id)
        ).first()
    if row is None or row.pruner == "none" or row.sweep_trial is None:
        return None
    return TrialRef(row.id, row.sweep_trial, row.metric, row.direction)


def epoch_value(ref: TrialRef, values: dict[str, Any]) -> float | None:
    """The epoch's stand-in for the objective, signed as the study ranks it; None: none."""
    if "accuracy" in ref.metric:
        value, sign = values.get("val_accuracy", values.get("accuracy")), 1.0  # the same measure
    else:
        value = values.get("val_loss", values.get("loss"))
        sign = 1.0 if ref.direction == "minimize" else -1.0
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return sign * float(value)


def report_epoch(database_url: str, ref: TrialRef, step: int, values: dict[str, Any]) -> bool:
    """Report one epoch of the trial to Optuna; True when the pruner stops it (the trial is
    marked pruned at ``step`` and its job asked to stop, with the reason)."""
    value = epoch_value(ref, values)
    if value is None:
        return False
    import optuna

    from shared.sweeps.study import load_study, storage

    with session_scope(database_url) as session:
        sweep = session.get(Sweep, ref.sweep_id)
    assert sweep is not None
    study = load_study(database_url, sweep)
    rdb = storage(database_url)
    study_id = rdb.get_study_id_from_name(sweep.study_name)
    trial_id = rdb.get_trial_id_from_study_id_trial_number(study_id, ref.trial)
    trial = optuna.trial.Trial(study, trial_id)
    trial.report(value, step)
    if not trial.should_prune():
        return False
    rdb.set_trial_user_attr(trial_id, "pruned_at", step)
    return True


def stop_pruned(database_url: str, job_id: str, step: int, unit: str = "epoch") -> str:
    """Ask a pruned trial's job to stop at once (it ends as cancelled); the reason."""
    reason = f"{PRUNED} at {unit} {step}"
    with session_scope(database_url) as session:
        request_cancel(session, job_id, reason)
    return reason
