"""A 64-image GAN sampling job from submission to downloaded PNG, with a warm sampling worker.

    .venv/bin/python bench/sampling_latency.py [--runs 10]

Starts the full stack on loopback (a fresh PostgreSQL database, a private Redis, moto S3, the API,
the reaper, a training and a sampling worker: tests/e2e/test_faults.Stack), trains a tiny GAN
(4 steps: the model's quality does not matter here, only its size), then submits sampling jobs
one after another and times each from POST to the PNG's last byte. The first run warms the worker
(it loads the model into its cache); the rest are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moto.server import ThreadedMotoServer  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from tests.e2e.test_faults import Stack  # noqa: E402


def wait(url: str, job_id: str, timeout: float = 300) -> dict:
    """Poll a job every 20 ms until it ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.02)
    raise TimeoutError(job_id)


def main() -> None:
    """Measure and print the latencies."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    root = Path(tempfile.mkdtemp(prefix="gentrain-sampling-"))
    stack = Stack(root, f"http://127.0.0.1:{port}")
    try:
        stack.start_api()
        stack.start("reaper", "reaper")
        stack.start_worker("train")
        stack.start("sample", "worker", "--queues", "sample", "--name", "sample")
        with (ROOT / "tests" / "fixtures" / "mnist_5k.npz").open("rb") as handle:
            requests.post(
                f"{stack.url}/v1/datasets",
                files={"file": handle},
                data={"name": "mnist"},
                timeout=60,
            ).raise_for_status()
        params = {"steps": 4, "steps_per_epoch": 2, "quality_samples": 0}
        body = {"kind": "gan", "dataset": "mnist", "params": params}
        gan = requests.post(f"{stack.url}/v1/jobs", json=body, timeout=10).json()["id"]
        assert wait(stack.url, gan)["status"] == "succeeded"
        seconds = []
        for run in range(args.runs + 1):
            started = time.perf_counter()
            sample = requests.post(
                f"{stack.url}/v1/jobs/{gan}/samples",
                json={"params": {"count": 64, "seed": run}},
                timeout=10,
            ).json()["id"]
            job = wait(stack.url, sample)
            assert job["status"] == "succeeded", job["error"]
            url = next(a["url"] for a in job["artifacts"] if a["name"] == "samples/grid.png")
            png = requests.get(url, timeout=10).content
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            elapsed = time.perf_counter() - started
            if run:
                seconds.append(elapsed)
            print(
                f"run {run}{' (warm-up)' if not run else ''}: {elapsed * 1000:.0f} ms", flush=True
            )
        print(
            f"\n64-image GAN sampling job, submission to PNG, warm worker, {args.runs} runs: "
            f"median {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms"
        )
    finally:
        stack.close()
        moto.stop()


if __name__ == "__main__":
    main()
