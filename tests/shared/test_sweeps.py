"""Sweeps driven through the database on both backends: trials are jobs created through the
lifecycle module, at most ``parallel`` active, asked for as others end; Optuna is told the
outcomes and knows the best; a cancel ends the queued trials and the sweep."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from shared.db.models import Dataset, Job, Sweep
from shared.db.session import session_scope
from shared.job_specs import SpecError
from shared.job_state import JobStatus
from shared.jobs import claim, finish
from shared.settings import Settings
from shared.sweeps.driver import cancel_sweep, create_sweep, drive_open_sweeps, drive_sweep
from shared.sweeps.spec import validate_sweep_spec
from shared.sweeps.study import load_study

GRID: dict[str, Any] = {
    "kind": "autoencoder",
    "params": {"epochs": 1, "max_train_images": 256},
    "space": {
        "learning_rate": {"values": [0.001, 0.01]},
        "batch_size": {"values": [64, 128]},
    },
    "sampler": "grid",
    "parallel": 2,
    "objective": {"metric": "test_mse"},
}


def new_sweep(url: str, body: dict[str, Any]) -> str:
    spec = validate_sweep_spec(body)
    with session_scope(url) as session:
        dataset = Dataset(name="mnist", storage_key="k", size_bytes=1, sha256="0", arrays={})
        session.add(dataset)
        session.flush()
        return create_sweep(session, spec, "", dataset.id, 5)


def trials(url: str, sweep_id: str) -> list[Job]:
    with session_scope(url) as session:
        query = select(Job).where(Job.sweep_id == sweep_id).order_by(Job.created_at, Job.id)
        return list(session.scalars(query))


def run_to_end(url: str, job: Job, mse: float) -> None:
    with session_scope(url) as session:
        claimed = claim(session, job.id, "w")
        assert claimed is not None
        lease = str(claimed.lease)
    with session_scope(url) as session:
        finish(session, job.id, lease, JobStatus.SUCCEEDED, None, {"test_mse": mse})


def test_a_grid_runs_each_point_once_never_more_than_parallel_at_once(settings: Settings) -> None:
    url = settings.database_url
    sweep_id = new_sweep(url, GRID)
    first = drive_sweep(url, sweep_id)
    assert len(first) == 2
    assert drive_sweep(url, sweep_id) == []  # both slots taken
    mses = iter([0.05, 0.02, 0.04, 0.03])
    seen: list[dict[str, Any]] = []
    while active := [j for j in trials(url, sweep_id) if j.status == "queued"]:
        assert len(active) <= 2
        run_to_end(url, active[0], next(mses))
        seen.append({k: active[0].params[k] for k in ("learning_rate", "batch_size")})
        sent: list[str] = []
        drive_open_sweeps(url, sent.append)
    assert len(trials(url, sweep_id)) == 4
    points = {(p["learning_rate"], p["batch_size"]) for p in seen}
    assert points == {(a, b) for a in (0.001, 0.01) for b in (64, 128)}
    with session_scope(url) as session:
        sweep = session.get(Sweep, sweep_id)
        assert sweep is not None and sweep.finished_at is not None
    best = load_study(url, sweep).best_trial
    assert best.value == 0.02
    assert all(j.params["epochs"] == 1 for j in trials(url, sweep_id))


def test_cancelling_a_sweep_cancels_its_trials_and_asks_for_no_more(settings: Settings) -> None:
    url = settings.database_url
    sweep_id = new_sweep(url, GRID)
    created = drive_sweep(url, sweep_id)
    assert sorted(cancel_sweep(url, sweep_id)) == sorted(created)
    assert drive_sweep(url, sweep_id) == []
    assert {j.status for j in trials(url, sweep_id)} == {"cancelled"}
    with session_scope(url) as session:
        sweep = session.get(Sweep, sweep_id)
        assert sweep is not None and sweep.finished_at is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"space": {"dropout": {"low": 0.1, "high": 0.2}}}, "space.dropout"),
        ({"space": {"learning_rate": {"low": 0.0, "high": 0.1}}}, "space.learning_rate.low"),
        ({"space": {"learning_rate": {"low": 1e-3, "high": 5.0}}}, "space.learning_rate.high"),
        ({"space": {"batch_size": {"values": [64, 0]}}}, "space.batch_size.values"),
        ({"space": {"learning_rate": {"low": 1e-3, "high": 1e-2}}}, "space.learning_rate"),
        ({"objective": {"metric": "fid"}}, "objective.metric"),
        ({"objective": {"metric": "test_mse", "direction": "up"}}, "objective.direction"),
        ({"trials": 5}, "trials"),
        ({"parallel": 0}, "parallel"),
        ({"pruner": "asha"}, "pruner"),
    ],
)
def test_a_bad_sweep_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as raised:
        validate_sweep_spec({**GRID, **change})
    assert raised.value.field == field


def test_the_reapers_pass_drives_a_sweep_and_sends_its_trials(settings: Settings) -> None:
    from shared.queue import TRAIN_QUEUE, make_celery, queue_length
    from workers.reaper import reap_once

    url = settings.database_url
    sweep_id = new_sweep(url, GRID)
    app = make_celery(settings)
    report = reap_once(settings, app)
    jobs = trials(url, sweep_id)
    assert sorted(report.trials) == sorted(job.id for job in jobs) and len(jobs) == 2
    assert all(job.enqueued_at is not None for job in jobs)
    assert queue_length(app, TRAIN_QUEUE) == 2
    run_to_end(url, jobs[0], 0.03)  # its worker died before driving: the next pass does
    assert len(reap_once(settings, app).trials) == 1


def test_a_median_pruner_stops_a_clearly_bad_trial_with_the_reason(settings: Settings) -> None:
    from shared.sweeps.pruning import PRUNED, report_epoch, stop_pruned, trial_of

    url = settings.database_url
    body = {
        **GRID,
        "space": {"learning_rate": {"values": [0.001, 0.002, 0.003]}},
        "parallel": 3,
        "pruner": "median",
    }
    sweep_id = new_sweep(url, body)
    drive_sweep(url, sweep_id)
    first, second, bad = trials(url, sweep_id)
    refs = [trial_of(url, job.id) for job in (first, second, bad)]
    assert all(ref is not None for ref in refs)
    for job, ref in zip((first, second), refs, strict=False):
        assert ref is not None
        for epoch in (1, 2):  # good trials: never pruned, whatever came before
            assert not report_epoch(url, ref, epoch, {"loss": 0.1, "val_loss": 0.1 / epoch})
        run_to_end(url, job, 0.05)
    drive_open_sweeps(url, lambda _: None)  # both told: the pruner has its 2 startup trials
    with session_scope(url) as session:
        claimed = claim(session, bad.id, "w")
        assert claimed is not None
        lease = str(claimed.lease)
    assert refs[2] is not None
    assert report_epoch(url, refs[2], 1, {"loss": 5.0, "val_loss": 5.0})
    reason = stop_pruned(url, bad.id, 1)
    assert reason == f"{PRUNED} at epoch 1"
    with session_scope(url) as session:
        assert finish(session, bad.id, lease, JobStatus.CANCELLED, reason) is JobStatus.CANCELLED
    drive_sweep(url, sweep_id)
    import optuna

    with session_scope(url) as session:
        sweep = session.get(Sweep, sweep_id)
        assert sweep is not None and sweep.finished_at is not None
    states = [t.state for t in load_study(url, sweep).get_trials()]
    assert states.count(optuna.trial.TrialState.PRUNED) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
