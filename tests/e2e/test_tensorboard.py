"""TensorBoard files of finished training jobs on the full stack (PostgreSQL, Redis, S3),
downloaded with the real ``gentrain tensorboard`` and read with TensorBoard's own reader."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Service
from tests.e2e.stack import GENTRAIN
from tests.e2e.test_training_flow import png_size, upload_mnist, wait_for
from tests.workers.tensorboard_events import read_run

pytestmark = pytest.mark.e2e

CLASSIFIER = {"epochs": 3, "max_train_images": 1000}
GAN = {
    "steps": 20,
    "steps_per_epoch": 10,
    "batch_size": 32,
    "sample_every": 10,
    "quality_samples": 0,
    "max_train_images": 256,
}


def test_gentrain_tensorboard_downloads_runs_tensorboard_reads(
    full_service: Service, mnist_path: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    service = full_service
    dataset = upload_mnist(service, mnist_path)
    ids = {}
    for kind, params in (("classifier", CLASSIFIER), ("gan", GAN)):
        body = {"kind": kind, "dataset": dataset, "params": params}
        response = requests.post(f"{service.url}/v1/jobs", json=body, timeout=10)
        assert response.status_code == 202, response.text
        ids[kind] = response.json()["id"]
    for job_id in ids.values():
        job = wait_for(service, job_id, timeout=300)
        assert job["status"] == "succeeded", f"{job['error']}\n{service.logs()}"

    logdir = tmp_path / "runs"
    env = {**service.env, "GENTRAIN_API_URL": service.url}
    command = [*GENTRAIN, "tensorboard", ids["classifier"], ids["gan"], "--logdir", str(logdir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"tensorboard --logdir {logdir}"
    runs = {kind: logdir / f"{kind}-{job_id[:8]}" for kind, job_id in ids.items()}
    assert sorted(p.name for p in logdir.iterdir()) == sorted(p.name for p in runs.values())

    classifier = read_run(runs["classifier"])
    url = f"{service.url}/v1/jobs/{ids['classifier']}/metrics"
    metrics = requests.get(url, timeout=10).json()["items"]
    for tag in ("loss", "val_loss", "accuracy", "val_accuracy"):
        expected = [(m["step"], pytest.approx(m["values"][tag])) for m in metrics]
        assert classifier.scalars[tag] == expected
    assert classifier.steps("loss") == [1, 2, 3]
    [(step, width, height, png)] = classifier.images["samples"]  # the final grid
    assert step == 3 and png_size(png) == (width, height) == (560, 2 * (56 + 14))

    gan = read_run(runs["gan"])
    for tag in ("d_loss", "g_loss", "d_acc"):
        assert gan.steps(tag) == [10, 20]  # blocks of steps, at their global step
    assert [step for step, *_ in gan.images["samples"]] == [10, 20]
    assert all(png_size(png) == (224, 224) for *_, png in gan.images["samples"])

    # A second run fetches nothing: every file is already there, unchanged.
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(0 downloaded)") == 2
