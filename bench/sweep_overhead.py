"""The overhead of driving a sweep (issue 15): 20 one-epoch trials on 2 workers against the same
20 jobs submitted by hand, in one run.

    .venv/bin/python bench/sweep_overhead.py [--trials 20] [--rounds 1] [--images 1000]

Starts the full stack on loopback (a fresh PostgreSQL database, a private Redis, moto S3, the API,
the reaper and two training workers of concurrency 1: tests/e2e/stack.FullStack), warms both
workers with a job each (TensorFlow's import is no part of either figure), then per round:

- sweep: a random-sampler sweep of N autoencoder trials over the learning rate with parallel 2,
  timed from its POST to its last trial's end (its trials are queued one by one as others end);
- by hand: the same N parameter sets POSTed as N jobs at once, timed from the first POST to the
  last job's end.

Each side goes first in turn, round by round (the sweep's seed is fixed, so every round's
sweep draws the same parameter sets as the first round's).

The figure is sweep ÷ by hand (issue 15's target: at most 1.1).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moto.server import ThreadedMotoServer  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from tests.e2e.stack import FullStack  # noqa: E402

ENDED = ("succeeded", "failed", "cancelled")


def wait_jobs(url: str, ids: list[str], timeout: float = 900) -> list[dict[str, Any]]:
    """Poll until every job has ended; their views."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [requests.get(f"{url}/v1/jobs/{i}", timeout=10).json() for i in ids]
        if all(job["status"] in ENDED for job in jobs):
            return jobs
        time.sleep(0.2)
    raise TimeoutError(ids)


def last_end(jobs: list[dict[str, Any]]) -> datetime:
    return max(datetime.fromisoformat(job["finished_at"]) for job in jobs)


def run_sweep(url: str, trials: int, params: dict[str, Any]) -> tuple[float, list[dict[str, Any]]]:
    """Seconds from the sweep's POST to its last trial's end, and its trials' params."""
    body = {
        "kind": "autoencoder",
        "dataset": "mnist",
        "params": params,
        "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
        "sampler": "random",
        "trials": trials,
        "parallel": 2,
        "objective": {"metric": "test_mse"},
        "seed": 0,
    }
    started = datetime.now().astimezone()
    sweep = requests.post(f"{url}/v1/sweeps", json=body, timeout=30).json()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        sweep = requests.get(f"{url}/v1/sweeps/{sweep['id']}", timeout=10).json()
        if sweep["status"] in ENDED:
            break
        time.sleep(0.2)
    assert sweep["status"] == "succeeded", sweep
    jobs = wait_jobs(url, [row["job_id"] for row in sweep["trial_jobs"]])
    return (last_end(jobs) - started).total_seconds(), [job["params"] for job in jobs]


def run_by_hand(url: str, all_params: list[dict[str, Any]]) -> float:
    """Seconds from the first of the jobs' POSTs to the last job's end."""
    started = datetime.now().astimezone()
    ids = []
    for params in all_params:
        body = {"kind": "autoencoder", "dataset": "mnist", "params": params}
        response = requests.post(f"{url}/v1/jobs", json=body, timeout=30)
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs: {response.status_code} {response.text}")
        ids.append(response.json()["id"])
    jobs = wait_jobs(url, ids)
    assert all(job["status"] == "succeeded" for job in jobs)
    return (last_end(jobs) - started).total_seconds()


def main() -> None:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    # Rounds of N quick trials submit more than the default 60 jobs a minute.
    stack = FullStack(
        Path(tempfile.mkdtemp(prefix="gentrain-sweeps-")),
        f"http://127.0.0.1:{port}",
        submit_rate_per_minute=100_000,
    )
    try:
        stack.start("api", "api", "--workers", "1")
        stack.start("reaper", "reaper")
        for name in ("wA", "wB"):
            stack.start_worker(name, "train")
        stack.wait_ready()
        with (ROOT / "tests" / "fixtures" / "mnist_5k.npz").open("rb") as handle:
            requests.post(
                f"{stack.url}/v1/datasets",
                files={"file": handle},
                data={"name": "mnist"},
                timeout=60,
            ).raise_for_status()
        params = {"epochs": 1, "max_train_images": args.images}
        warm = [params, params]
        run_by_hand(stack.url, warm)  # each worker imports TensorFlow once
        rounds = []
        trial_params: list[dict[str, Any]] = []  # drawn by the first round's sweep
        for number in range(args.rounds):
            # Each side goes first in turn (the same parameter sets: the sweep's seed is fixed).
            if number % 2:
                hand_seconds = run_by_hand(stack.url, trial_params)
                sweep_seconds, trial_params = run_sweep(stack.url, args.trials, params)
            else:
                sweep_seconds, trial_params = run_sweep(stack.url, args.trials, params)
                hand_seconds = run_by_hand(stack.url, trial_params)
            rounds.append(
                {
                    "first": "by hand" if number % 2 else "sweep",
                    "sweep_seconds": round(sweep_seconds, 2),
                    "by_hand_seconds": round(hand_seconds, 2),
                    "ratio": round(sweep_seconds / hand_seconds, 3),
                }
            )
        print(json.dumps({"trials": args.trials, "images": args.images, "rounds": rounds}))
    finally:
        stack.close()
        moto.stop()


if __name__ == "__main__":
    main()
