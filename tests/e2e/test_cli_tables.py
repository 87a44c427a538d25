"""The CLI as a person uses it (issue 17), as real processes on the embedded default: a small GAN
trained and sampled with short job ids, the ``gentrain status`` table, ``gentrain artifacts``,
``gentrain download`` saving the sampling job's grid, and the one-line error with the API down."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Service
from tests.e2e.stack import GENTRAIN
from tests.e2e.test_training_flow import png_size, upload_mnist

pytestmark = pytest.mark.e2e

GAN = ("-p", "steps=20", "-p", "steps_per_epoch=10", "-p", "batch_size=32", "-p", "sample_every=10")
SMALL = ("-p", "quality_samples=0", "-p", "max_train_images=256")


def test_a_gan_trained_sampled_listed_and_downloaded(
    embedded_service: Service, mnist_path: Path, tmp_path: Path
) -> None:
    env = {**embedded_service.env, "GENTRAIN_API_URL": embedded_service.url, "COLUMNS": "100"}

    def gentrain(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*GENTRAIN, *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done

    upload_mnist(embedded_service, mnist_path)
    trained = gentrain("submit", "gan", "--dataset", "mnist", *GAN, *SMALL).stdout.strip()
    gentrain("wait", trained[:8])
    sampled = gentrain("sample", trained[:6], "-p", "count=12", "-p", "seed=3").stdout.strip()
    assert f"{sampled} succeeded" in gentrain("wait", sampled[:8]).stdout

    header, *rows = [line.split() for line in gentrain("status").stdout.splitlines()]
    assert header == ["ID", "KIND", "DATASET", "STATUS", "PRI", "PROGRESS", "RESULT", "AGE"]
    by_id = {row[0]: row for row in rows}
    assert by_id[trained[:8]][1:4] == ["gan", "mnist", "succeeded"]
    assert by_id[sampled[:8]][1:4] == ["sample/gan", "from", trained[:8]]

    listed = gentrain("artifacts", sampled[:8]).stdout
    assert {"samples/grid.png", "samples/interpolation.png"} <= {
        line.split()[0] for line in listed.splitlines()[1:]
    }
    target = tmp_path / "samples.png"
    saved = gentrain("download", sampled[:8], "-o", str(target)).stdout
    assert saved.startswith(f"saved {target}")
    assert png_size(target.read_bytes()) == (4 * 56, 3 * 56)  # the 12 samples, not the strip
    final = tmp_path / "final.png"
    gentrain("download", trained[:8], "-o", str(final))
    assert final.read_bytes() != target.read_bytes()

    summary = gentrain("status", sampled[:8]).stdout
    assert f"job       {sampled}" in summary and "status    succeeded" in summary

    closed = f"http://127.0.0.1:{free_port()}"
    down = subprocess.run(
        [*GENTRAIN, "status", "--api-url", closed], env=env, capture_output=True, text=True
    )
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.strip().splitlines() == [
        f"Error: the gentrain API is not reachable at {closed}: start it with `gentrain up` "
        "(or point --api-url / GENTRAIN_API_URL at a running one)"
    ]
