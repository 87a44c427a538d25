"""Sweeps on real processes (issue 15): the API, the reaper and one training worker of
concurrency 3 on PostgreSQL, Redis and S3. A 2×2 grid over an autoencoder's learning rate and
batch size with parallel 2 runs its 4 trials as jobs, never more than 2 at once (read from the
jobs' start and end times), and names the one with the lowest test_mse as best; a TPE sweep of
6 trials finishes; a median pruner stops a clearly bad trial early; cancelling a sweep cancels
its running trials and asks for no more; killing the worker that drives it does not stop it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REDIS_URL
from tests.e2e.stack import FAST_FAULTS, FullStack

pytestmark = pytest.mark.e2e

# Its own Redis database, so that it never shares a queue with the other e2e tests.
BROKER_URL = REDIS_URL.rsplit("/", 1)[0] + "/13"
GRID: dict[str, Any] = {
    "kind": "autoencoder",
    "dataset": "mnist",
    "params": {"epochs": 1, "max_train_images": 256},
    "space": {
        "learning_rate": {"values": [0.001, 0.01]},
        "batch_size": {"values": [32, 64]},
    },
    "sampler": "grid",
    "parallel": 2,
    "objective": {"metric": "test_mse"},
}
ENDED = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, mnist_path: Path
) -> Iterator[FullStack]:
    stack = FullStack(
        tmp_path_factory.mktemp("sweeps"), s3_endpoint, broker_url=BROKER_URL, **FAST_FAULTS
    )
    try:
        stack.start("api", "api", "--workers", "1")
        stack.start("reaper", "reaper")
        # More worker slots than the sweep's parallel: only the sweep holds trials back.
        stack.start("worker", "worker", "--queues", "train", "--concurrency", "3", "--name", "w")
        stack.wait_ready()
        with mnist_path.open("rb") as handle:
            response = requests.post(
                f"{stack.url}/v1/datasets",
                files={"file": ("mnist.npz", handle)},
                data={"name": "mnist"},
                timeout=30,
            )
        assert response.status_code == 201, response.text
        yield stack
    finally:
        stack.close()


def get(stack: FullStack, path: str) -> Any:
    response = requests.get(f"{stack.url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(stack: FullStack, what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited while waiting for {what}\n{stack.logs()}")
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"no {what} after {timeout} s\n{stack.logs()}")


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals that overlap at any moment (one starting as another ends: apart)."""
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, change in moments:
        current += change
        most = max(most, current)
    return most


def test_a_grid_runs_each_point_at_most_parallel_at_once_and_names_the_best(
    stack: FullStack,
) -> None:
    response = requests.post(f"{stack.url}/v1/sweeps", json=GRID, timeout=30)
    assert response.status_code == 202, response.text
    sweep_id = response.json()["id"]
    path = f"/v1/sweeps/{sweep_id}"
    wait_for(stack, "end of the sweep", lambda: get(stack, path)["status"] in ENDED, 400)
    sweep = get(stack, path)
    table = sweep["trial_jobs"]
    assert sweep["status"] == "succeeded", table
    assert len(table) == 4 and {row["status"] for row in table} == {"succeeded"}
    points = {(row["params"]["learning_rate"], row["params"]["batch_size"]) for row in table}
    assert points == {(rate, size) for rate in (0.001, 0.01) for size in (32, 64)}
    jobs = [get(stack, f"/v1/jobs/{row['job_id']}") for row in table]
    # A trial counts from its creation (queued) to its end: at most 2 at once, and never fewer
    # than 2 running together while more waited (the worker had a third slot free).
    lives = [
        (datetime.fromisoformat(job["created_at"]), datetime.fromisoformat(job["finished_at"]))
        for job in jobs
    ]
    assert most_at_once(lives) <= 2
    runs = [
        (datetime.fromisoformat(job["started_at"]), datetime.fromisoformat(job["finished_at"]))
        for job in jobs
    ]
    assert most_at_once(runs) <= 2
    mse = {job["id"]: job["results"]["test_mse"] for job in jobs}
    assert sweep["best"]["job_id"] == min(mse, key=lambda job_id: mse[job_id])
    assert sweep["best"]["objective"] == min(mse.values())


def test_cancelling_a_sweep_cancels_its_trials(stack: FullStack) -> None:
    long = {**GRID, "params": {"epochs": 1000, "max_train_images": 256}}
    response = requests.post(f"{stack.url}/v1/sweeps", json=long, timeout=30)
    assert response.status_code == 202, response.text
    sweep_id = response.json()["id"]
    path = f"/v1/sweeps/{sweep_id}"

    def running() -> bool:
        return any(row["status"] == "running" for row in get(stack, path)["trial_jobs"])

    wait_for(stack, "a running trial", running, 120)
    cancelled = requests.post(f"{stack.url}{path}/cancel", timeout=30)
    assert cancelled.status_code == 202, cancelled.text
    wait_for(stack, "the cancelled sweep", lambda: get(stack, path)["status"] == "cancelled", 120)
    table = get(stack, path)["trial_jobs"]
    assert len(table) == 2 and {row["status"] for row in table} == {"cancelled"}


def grid_order(space: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """The points a seeded grid sweep asks for, in order, with the drivers' own sampler (a fresh
    one for each ask, as every driving pass makes)."""
    import optuna

    from shared.db.models import Sweep
    from shared.sweeps.spec import validate_sweep_spec
    from shared.sweeps.study import distributions, sampler

    spec = validate_sweep_spec({**GRID, "space": space, "seed": seed})
    sweep = Sweep(sampler="grid", space=spec.space, seed=seed)
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="order")
    order = []
    for asked in range(spec.trials):
        study = optuna.load_study(
            study_name="order", storage=storage, sampler=sampler(sweep, asked)
        )
        order.append(study.ask(distributions(spec.space)).params)
    return order


def test_a_median_pruner_stops_a_clearly_bad_trial_early(stack: FullStack) -> None:
    space = {"learning_rate": {"values": [0.01, 0.005, 1e-6]}}
    # One at a time, the hopeless learning rate last: two trials finish before it (the median
    # pruner's startup), then it trails them from its first epoch.
    seed = next(s for s in range(100) if grid_order(space, s)[2]["learning_rate"] == 1e-6)
    body = {
        **GRID,
        "params": {"epochs": 3, "max_train_images": 1000},
        "space": space,
        "parallel": 1,
        "pruner": "median",
        "seed": seed,
    }
    response = requests.post(f"{stack.url}/v1/sweeps", json=body, timeout=30)
    assert response.status_code == 202, response.text
    path = f"/v1/sweeps/{response.json()['id']}"
    wait_for(stack, "end of the sweep", lambda: get(stack, path)["status"] in ENDED, 300)
    sweep = get(stack, path)
    by_rate = {row["params"]["learning_rate"]: row for row in sweep["trial_jobs"]}
    assert sweep["status"] == "succeeded" and len(by_rate) == 3, sweep
    assert {by_rate[rate]["status"] for rate in (0.01, 0.005)} == {"succeeded"}
    pruned = get(stack, f"/v1/jobs/{by_rate[1e-6]['job_id']}")
    assert pruned["status"] == "cancelled"
    assert pruned["history"][-1]["message"] == "pruned by the sweep's pruner at epoch 1"
    metrics = get(stack, f"/v1/jobs/{pruned['id']}/metrics")["items"]
    assert [row["step"] for row in metrics] == [1] and pruned["progress"] < 1
    assert sweep["best"]["job_id"] in {by_rate[0.01]["job_id"], by_rate[0.005]["job_id"]}


def test_a_tpe_sweep_of_six_trials_finishes(stack: FullStack) -> None:
    body = {
        **GRID,
        "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
        "sampler": "tpe",
        "trials": 6,
        "seed": 0,
    }
    response = requests.post(f"{stack.url}/v1/sweeps", json=body, timeout=30)
    assert response.status_code == 202, response.text
    path = f"/v1/sweeps/{response.json()['id']}"
    wait_for(stack, "end of the sweep", lambda: get(stack, path)["status"] in ENDED, 300)
    sweep = get(stack, path)
    assert sweep["status"] == "succeeded" and sweep["counts"]["succeeded"] == 6, sweep
    rates = [row["params"]["learning_rate"] for row in sweep["trial_jobs"]]
    assert len(set(rates)) == 6 and all(1e-4 <= rate <= 1e-2 for rate in rates)
    jobs = [get(stack, f"/v1/jobs/{row['job_id']}") for row in sweep["trial_jobs"]]
    lives = [
        (datetime.fromisoformat(job["created_at"]), datetime.fromisoformat(job["finished_at"]))
        for job in jobs
    ]
    assert most_at_once(lives) <= 2
    assert set(sweep["importances"]) == {"learning_rate"}


def test_a_sweep_goes_on_when_the_worker_driving_it_is_killed(stack: FullStack) -> None:
    body = {
        **GRID,
        "params": {"epochs": 30, "max_train_images": 1000},
        "space": {"learning_rate": {"values": [0.01, 0.005]}},
        "parallel": 1,
    }
    response = requests.post(f"{stack.url}/v1/sweeps", json=body, timeout=30)
    assert response.status_code == 202, response.text
    path = f"/v1/sweeps/{response.json()['id']}"
    first = response.json()["trial_jobs"][0]["job_id"]

    def training() -> bool:
        return get(stack, f"/v1/jobs/{first}")["progress"] > 0

    wait_for(stack, "the first trial training", training, 120)
    # The worker would queue the next trial when this one ends: it dies mid-trial instead (its
    # whole process group, as a lost machine), and a new one takes over after the reaper
    # re-queues the trial.
    killed = stack.processes.pop("worker")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    stack.start("worker2", "worker", "--queues", "train", "--concurrency", "3", "--name", "w2")
    wait_for(stack, "end of the sweep", lambda: get(stack, path)["status"] in ENDED, 300)
    sweep = get(stack, path)
    assert sweep["status"] == "succeeded" and sweep["counts"]["succeeded"] == 2, sweep
    assert get(stack, f"/v1/jobs/{first}")["attempts"] == 2
