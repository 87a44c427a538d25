"""Every model kind trains through the API on the full stack and reports its quality metrics;
sampling jobs draw each kind's figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Service
from tests.e2e.test_training_flow import png_size, upload_mnist, wait_for

pytestmark = pytest.mark.e2e

RUNS: dict[str, dict[str, Any]] = {
    "classifier": {"epochs": 2},
    "denoiser": {"epochs": 3},
    "gan": {
        "steps": 20,
        "steps_per_epoch": 10,
        "batch_size": 32,
        "sample_every": 10,
        "quality_samples": 300,
        "max_train_images": 1024,
    },
    # The mixture prior: fitted in the worker, carried in model.keras to the sampling worker.
    "vae": {"epochs": 2, "quality_samples": 300, "max_train_images": 1024, "prior": "mixture"},
}


def check_results(kind: str, results: dict[str, Any]) -> None:
    if kind == "classifier":
        assert results["test_accuracy"] > 0.6 and results["test_loss"] > 0
    elif kind == "denoiser":
        assert results["test_psnr_db"] > results["test_noisy_psnr_db"]
        assert 0 < results["test_ssim"] < 1
    if kind == "vae":
        assert 0 < results["test_mse"] < 0.2 and results["test_kl_loss"] > 0
        assert results["test_elbo"] < 0 and results["prior"] == "mixture"
    if kind in ("gan", "vae"):
        assert results["fid"] > 0 and 1 <= results["classifier_score"] <= 10
        assert sum(results["digit_shares"].values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_kind_trains_and_samples(full_service: Service, mnist_path: Path, kind: str) -> None:
    service = full_service
    dataset = upload_mnist(service, mnist_path)
    response = requests.post(
        f"{service.url}/v1/jobs",
        json={"kind": kind, "dataset": dataset, "params": RUNS[kind]},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    job = wait_for(service, response.json()["id"], timeout=300)
    assert job["status"] == "succeeded", f"{job['error']}\n{service.logs()}"
    check_results(kind, job["results"])
    metrics = requests.get(f"{service.url}/v1/jobs/{job['id']}/metrics", timeout=10).json()["items"]
    expected_steps = [10, 20] if kind == "gan" else list(range(1, RUNS[kind]["epochs"] + 1))
    assert [m["step"] for m in metrics] == expected_steps
    names = {a["name"] for a in job["artifacts"]}
    assert {"model.keras", "checkpoints/latest.npz"} <= names
    if kind == "gan":
        assert {
            "samples/step-000010.png",
            "samples/step-000020.png",
            "samples/generated.png",
        } <= names

    sample = requests.post(
        f"{service.url}/v1/jobs/{job['id']}/samples",
        json={"params": {"count": 12, "seed": 3}},
        timeout=10,
    )
    assert sample.status_code == 202, sample.text
    sampled = wait_for(service, sample.json()["id"], timeout=120)
    assert sampled["status"] == "succeeded", f"{sampled['error']}\n{service.logs()}"
    urls = {a["name"]: a["url"] for a in sampled["artifacts"]}
    grid = png_size(requests.get(urls["samples/grid.png"], timeout=30).content)
    if kind == "gan":
        assert grid == (4 * 56, 3 * 56)  # 12 samples in a 4×3 grid
        assert png_size(requests.get(urls["samples/interpolation.png"], timeout=30).content) == (
            560,
            56,
        )
    elif kind == "vae":
        assert grid == (4 * 56, 3 * 56)  # 12 digits from the fitted prior in a 4×3 grid
    elif kind == "denoiser":
        assert grid == (12 * 56, 3 * 56)  # noisy, denoised and original rows
    else:
        assert grid == (10 * 56, 2 * (56 + 14))  # labelled digits, 10 to a row
    if kind in ("vae", "denoiser"):
        # Two held-out digits, and 10 decodings of codes on the line between theirs.
        strip = requests.get(urls["samples/interpolation.png"], timeout=30).content
        assert png_size(strip) == (12 * 56, 56)
