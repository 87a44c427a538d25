"""A real Prometheus scrapes the API, a worker and the reaper while jobs succeed, fail and are
cancelled; PromQL through its HTTP API then sees the counts and a training rate, and the
alerting rules of deploy/prometheus load and evaluate."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from tests.conftest import free_port
from tests.e2e.stack import GENTRAIN, FullStack, start_process, stop_processes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]
ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"succeeded", "failed", "cancelled"}


class Watched:
    """The stack, and the Prometheus watching it."""

    def __init__(self, stack: FullStack, prometheus_url: str) -> None:
        self.stack = stack
        self.prometheus = prometheus_url

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.stack.url}{path}", timeout=30, **kwargs)

    def submit(self, kind: str, dataset: str, **params: Any) -> str:
        body = {"kind": kind, "dataset": dataset, "params": params}
        response = self.api("POST", "/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return self.api("GET", f"/v1/jobs/{job_id}").json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, ready: Any, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if ready(job):
                return job
            time.sleep(0.3)
        pytest.fail(f"job {job_id} never got there: {job['status']}\n{self.stack.logs()}")

    def query(self, promql: str) -> dict[str, float]:
        """An instant query: each series' value, by its labels (``a=1,b=2``)."""
        response = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": promql}, timeout=10
        )
        body = response.json()
        assert body["status"] == "success", body
        return {
            ",".join(f"{k}={v}" for k, v in sorted(item["metric"].items())): float(item["value"][1])
            for item in body["data"]["result"]
        }

    def settle(self, promql: str, expected: Any, timeout: float = 60) -> None:
        """Wait until Prometheus has scraped what the service now holds (a scrape a second).

        ``expected`` is the answer, or a test of it. Every check waits: on a loaded machine a
        scrape can miss its one-second deadline, and the series of a failed scrape go stale
        until the next one succeeds."""
        check = expected if callable(expected) else (lambda answer: answer == expected)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.query(promql)):
                return
            time.sleep(0.5)
        answer = self.query(promql)
        assert check(answer), f"{promql}: {answer}, not {expected}\n{self.stack.logs()}"

    def active_alerts(self, names: set[str]) -> set[str]:
        """Which of ``names`` are pending or firing now (every rule evaluated without error)."""
        rules = requests.get(f"{self.prometheus}/api/v1/rules", timeout=10).json()["data"]
        loaded = [rule for group in rules["groups"] for rule in group["rules"]]
        assert all(rule["health"] in ("ok", "unknown") for rule in loaded), loaded
        return {rule["name"] for rule in loaded if rule["name"] in names and rule.get("alerts")}


def scrape_config(api: str, worker: str, reaper: str, rules: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml's jobs, on this test's loopback ports, every second."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            # The API is on loopback, and so is this Prometheus: no key needed.
            {"job_name": "gentrain-api", "static_configs": [{"targets": [api]}]},
            {
                "job_name": "gentrain-worker",
                "static_configs": [{"targets": [worker], "labels": {"queue": "train"}}],
            },
            {"job_name": "gentrain-reaper", "static_configs": [{"targets": [reaper]}]},
        ],
    }


@pytest.fixture(scope="module")
def watched(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, mnist_path: Path
) -> Iterator[Watched]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    root = tmp_path_factory.mktemp("prometheus")
    stack = FullStack(root, s3_endpoint)
    worker_port, reaper_port, prometheus_port = free_port(), free_port(), free_port()
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        stack.start("api", "api", "--workers", "2")  # requests summed over both processes
        stack.start(
            "worker", "worker", "--queues", "train", "--name", "train",
            "--metrics-port", str(worker_port), "--metrics-address", "127.0.0.1",
        )  # fmt: skip
        stack.start(
            "reaper", "reaper", "--metrics-port", str(reaper_port), "--metrics-address", "127.0.0.1"
        )
        stack.wait_ready()
        config = scrape_config(
            f"127.0.0.1:{stack.settings.api_port}",
            f"127.0.0.1:{worker_port}",
            f"127.0.0.1:{reaper_port}",
            ROOT / "deploy/prometheus/alerts.yml",
        )
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = start_process(
            [
                "prometheus",
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            {"PATH": "/usr/bin:/bin"},
            root / "prometheus.log",
        )
        url = f"http://127.0.0.1:{prometheus_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"prometheus did not start\n{(root / 'prometheus.log').read_text()}")
        watched = Watched(stack, url)
        with mnist_path.open("rb") as handle:
            files = {"file": ("mnist.npz", handle)}
            assert watched.api("POST", "/v1/datasets", files=files, data={"name": "mnist"}).ok
        with np.load(mnist_path) as digits:
            unlabeled = io.BytesIO()
            np.savez(unlabeled, x_train=digits["x_train"][:256])
        files = {"file": ("unlabeled.npz", io.BytesIO(unlabeled.getvalue()))}
        assert watched.api("POST", "/v1/datasets", files=files, data={"name": "unlabeled"}).ok
        yield watched
    finally:
        if prometheus is not None:
            stop_processes([prometheus])
        stack.close()


def test_prometheus_sees_jobs_succeed_fail_and_be_cancelled(watched: Watched) -> None:
    small = {"max_train_images": 1024, "batch_size": 256}
    succeeded = watched.submit("autoencoder", "mnist", epochs=2, **small)
    assert watched.wait(succeeded, lambda j: j["status"] in TERMINAL)["status"] == "succeeded"
    failed = watched.submit("classifier", "unlabeled", epochs=1)  # needs labels: fails at once
    assert watched.wait(failed, lambda j: j["status"] in TERMINAL)["status"] == "failed"
    # Prometheus holds a sample of the images counter before the next job trains, so that the
    # rate below sees it rise (a series first scraped at its final value has a rate of 0).
    first = len(watched.api("GET", f"/v1/jobs/{succeeded}/metrics").json()["items"])
    watched.settle("sum(gentrain_worker_train_images_total)", {"": 1024 * first})
    cancelled = watched.submit("autoencoder", "mnist", epochs=1000, **small)
    watched.wait(cancelled, lambda j: bool(j["latest_metrics"]))
    assert watched.api("POST", f"/v1/jobs/{cancelled}/cancel").status_code == 202
    assert watched.wait(cancelled, lambda j: j["status"] in TERMINAL)["status"] == "cancelled"
    jobs = {job_id: watched.job(job_id) for job_id in (succeeded, failed, cancelled)}

    # Jobs by status, as the database holds them (read by the API when scraped).
    watched.settle(
        "sum by (status) (gentrain_jobs)",
        {"status=succeeded": 1, "status=failed": 1, "status=cancelled": 1},
    )
    # Outcomes as the worker counted them, in its pool child, served by its main process.
    watched.settle(
        "sum by (outcome) (gentrain_worker_jobs_finished_total)",
        {"outcome=succeeded": 1, "outcome=failed": 1, "outcome=cancelled": 1},
    )
    built = sum(1 for job in jobs.values() if job["param_count"] is not None)
    watched.settle("sum(gentrain_worker_job_attempts_started_total)", {"": built})
    # Steps: a recorded epoch of 1,024 images in batches of 256 is 4 steps (no validation split).
    epochs = sum(
        len(watched.api("GET", f"/v1/jobs/{job_id}/metrics").json()["items"])
        for job_id in (succeeded, cancelled)
    )
    watched.settle("sum(gentrain_worker_train_steps_total)", {"": 4 * epochs})
    watched.settle("sum(gentrain_worker_train_images_total)", {"": 1024 * epochs})
    positive = lambda answer: answer.get("", 0) > 0  # noqa: E731
    watched.settle("sum(rate(gentrain_worker_train_images_total[5m]))", positive)
    watched.settle("sum(gentrain_worker_training_seconds_total)", positive)
    # Requests, counted per gunicorn process and summed: the three submissions, one cancel.
    submissions = 'sum(gentrain_http_requests_total{route="/v1/jobs",method="POST",status="202"})'
    watched.settle(submissions, {"": 3})
    watched.settle('sum(gentrain_http_requests_total{route="/v1/jobs/<job_id>/cancel"})', {"": 1})
    # Nothing waits; the reaper ran passes and had nothing to re-queue.
    watched.settle(
        "max by (queue) (gentrain_queue_messages)", {"queue=sample": 0, "queue=train": 0}
    )
    watched.settle("sum(gentrain_reaper_passes_total)", positive)
    watched.settle('sum(gentrain_reaper_jobs_total{action="requeued"})', {"": 0})
    # Every target answers.
    watched.settle(
        "min by (job) (up)",
        {"job=gentrain-api": 1, "job=gentrain-reaper": 1, "job=gentrain-worker": 1},
    )
    # The alerting rules load and evaluate without error; with a worker of the train queue up
    # and none of the sample queue, only the sampling queue's alert is active (pending: it
    # fires after 5 minutes).
    rules = requests.get(f"{watched.prometheus}/api/v1/rules", timeout=10).json()["data"]
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    loaded = sum(len(group["rules"]) for group in rules["groups"])
    assert loaded == sum(len(group["rules"]) for group in alerts)
    queues = {"GentrainNoTrainingWorker", "GentrainNoSamplingWorker"}
    deadline = time.monotonic() + 60
    while watched.active_alerts(queues) != {"GentrainNoSamplingWorker"}:
        assert time.monotonic() < deadline, watched.active_alerts(queues)
        time.sleep(0.5)


def test_gentrain_prometheus_prints_the_scrape(watched: Watched) -> None:
    printed = subprocess.run(
        [*GENTRAIN, "prometheus", "--match", "gentrain_http_requests_total{"],
        env=watched.stack.env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert all(line.startswith("gentrain_http_requests_total{") for line in printed)
    # The fixture's two uploads, whichever API process took each.
    uploads = [
        float(line.rsplit(" ", 1)[1])
        for line in printed
        if 'route="/v1/datasets"' in line and 'method="POST"' in line and 'status="201"' in line
    ]
    assert sum(uploads) == 2
