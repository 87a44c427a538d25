"""A user's whole flow over HTTP against real processes: upload, submit, poll, download, sample."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from services.cli.event_stream import StreamEvent, parse_events
from shared.job_state import TERMINAL_STATUSES
from tests.e2e.conftest import Service
from tests.e2e.stack import GENTRAIN

pytestmark = pytest.mark.e2e
TERMINAL = {str(status) for status in TERMINAL_STATUSES}


def wait_for(
    service: Service, job_id: str, until: set[str] = TERMINAL, timeout: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).json()
        if job["status"] in until:
            return job  # type: ignore[no-any-return]
        time.sleep(0.25)
    pytest.fail(f"job {job_id} still {job['status']} after {timeout} s\n{service.logs()}")


def upload_mnist(service: Service, mnist_path: Path) -> str:
    existing = requests.get(f"{service.url}/v1/datasets", timeout=10).json()["items"]
    if any(d["name"] == "mnist" for d in existing):
        return "mnist"
    with mnist_path.open("rb") as handle:
        response = requests.post(
            f"{service.url}/v1/datasets",
            files={"file": ("mnist.npz", handle)},
            data={"name": "mnist"},
            timeout=30,
        )
    assert response.status_code == 201, response.text
    return "mnist"


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


def test_autoencoder_trains_end_to_end(service: Service, mnist_path: Path) -> None:
    dataset = upload_mnist(service, mnist_path)
    response = requests.post(
        f"{service.url}/v1/jobs",
        json={"kind": "autoencoder", "dataset": dataset, "params": {"epochs": 2}},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    job = wait_for(service, job_id)
    assert job["status"] == "succeeded", f"{job['error']}\n{service.logs()}"
    assert [h["status"] for h in job["history"]] == ["queued", "running", "succeeded"]
    assert job["progress"] == 1.0 and job["param_count"] == 50_992
    assert job["results"]["test_mse"] < 0.1 and job["results"]["test_psnr_db"] > 10

    metrics = requests.get(f"{service.url}/v1/jobs/{job_id}/metrics", timeout=10).json()["items"]
    assert [m["step"] for m in metrics] == [1, 2]
    assert metrics[1]["values"]["loss"] < metrics[0]["values"]["loss"]

    names = {a["name"]: a for a in job["artifacts"]}
    assert {"model.keras", "samples/reconstructions.png"} <= set(names)
    grid = requests.get(names["samples/reconstructions.png"]["url"], timeout=30)
    assert grid.status_code == 200
    assert png_size(grid.content) == (560, 112)  # 10 originals above 10 reconstructions, 2× scale

    sample = requests.post(
        f"{service.url}/v1/jobs/{job_id}/samples", json={"params": {"count": 8}}, timeout=10
    )
    assert sample.status_code == 202, sample.text
    sampled = wait_for(service, sample.json()["id"])
    assert sampled["status"] == "succeeded", sampled["error"]
    url = next(a["url"] for a in sampled["artifacts"] if a["name"] == "samples/grid.png")
    assert png_size(requests.get(url, timeout=30).content) == (8 * 56, 112)


def test_cancel_stops_a_running_job(service: Service, mnist_path: Path) -> None:
    dataset = upload_mnist(service, mnist_path)
    job_id = requests.post(
        f"{service.url}/v1/jobs",
        json={
            "kind": "autoencoder",
            "dataset": dataset,
            "params": {"epochs": 1000, "max_train_images": 1024},
        },
        timeout=10,
    ).json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = requests.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).json()
        if job["latest_metrics"]:
            break
        time.sleep(0.2)
    assert job["status"] == "running" and 0 < job["progress"] < 1 and job["eta_seconds"] > 0
    response = requests.post(f"{service.url}/v1/jobs/{job_id}/cancel", timeout=10)
    assert response.status_code == 202 and response.json()["status"] in ("cancelling", "cancelled")

    job = wait_for(service, job_id, timeout=60)
    assert job["status"] == "cancelled"
    assert [h["status"] for h in job["history"]] == ["queued", "running", "cancelling", "cancelled"]
    assert job["progress"] < 0.5
    assert any(a["name"] == "model.keras" for a in job["artifacts"])
    again = requests.post(f"{service.url}/v1/jobs/{job_id}/cancel", timeout=10)
    assert again.status_code == 409


def test_cli_submits_waits_and_downloads(
    embedded_service: Service, mnist_path: Path, tmp_path: Path
) -> None:
    env = {**embedded_service.env, "GENTRAIN_API_URL": embedded_service.url}

    def gentrain(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GENTRAIN, *args], env=env, capture_output=True, text=True, timeout=180
        )

    upload_mnist(embedded_service, mnist_path)
    submitted = gentrain(
        "submit",
        "autoencoder",
        "--dataset",
        "mnist",
        "-p",
        "epochs=2",
        "-p",
        "max_train_images=1024",
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    waited = gentrain("wait", job_id)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert f"{job_id} succeeded" in waited.stdout
    target = tmp_path / "grid.png"
    downloaded = gentrain("download", job_id, "-o", str(target))
    assert downloaded.returncode == 0, downloaded.stderr
    assert png_size(target.read_bytes()) == (560, 112)
    bad = gentrain("submit", "autoencoder", "--dataset", "mnist", "-p", "epochs=0")
    assert bad.returncode != 0 and "params.epochs" in bad.stderr
    finished = gentrain("cancel", job_id)
    assert finished.returncode != 0 and "409" in finished.stderr


def stream_events(url: str, headers: dict[str, str] | None = None) -> Iterator[StreamEvent]:
    """The events of a text/event-stream endpoint as they arrive (keep-alives skipped)."""
    with requests.get(url, headers=headers or {}, stream=True, timeout=(10, 60)) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for event in parse_events(response.iter_lines(decode_unicode=True)):
            if event.type:
                yield event


def test_watching_a_job_on_its_event_stream(service: Service, mnist_path: Path) -> None:
    """A 5-epoch job watched live: every metrics row once, every status, the final grid's
    artifact event, then the end; a client that drops mid-job resumes with exactly the rest; the
    job list's stream shows the job appear and finish."""
    dataset = upload_mnist(service, mnist_path)
    listed: list[StreamEvent] = []
    list_open = threading.Event()

    def watch_list() -> None:
        events = stream_events(f"{service.url}/v1/events")
        list_open.set()
        for event in events:
            listed.append(event)
            if event.data.get("job_id") == job_id and event.data.get("status") in TERMINAL:
                return

    params = {"epochs": 5, "max_train_images": 512, "sample_every": 1}
    response = requests.post(
        f"{service.url}/v1/jobs",
        json={"kind": "autoencoder", "dataset": dataset, "params": params},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    watcher = threading.Thread(target=watch_list, daemon=True)
    watcher.start()
    first: list[StreamEvent] = []
    for event in stream_events(f"{service.url}/v1/jobs/{job_id}/events"):
        first.append(event)
        if event.type == "metrics" and event.data["step"] == 2:
            break  # the client drops mid-job
    resume = {"Last-Event-ID": str(first[-1].id)}
    rest = list(stream_events(f"{service.url}/v1/jobs/{job_id}/events", resume))
    whole = list(stream_events(f"{service.url}/v1/jobs/{job_id}/events"))
    assert [e.id for e in first + rest] == [e.id for e in whole], service.logs()

    assert [e.data["step"] for e in whole if e.type == "metrics"] == [1, 2, 3, 4, 5]
    statuses = [e.data["status"] for e in whole if e.type == "status"]
    assert statuses == ["queued", "running", "succeeded"], service.logs()
    assert whole[-1].type == "status" and whole[-1].data["results"]["test_mse"] < 0.2
    grids = [e.data for e in whole if e.type == "artifact"]
    every_epoch = [f"samples/epoch-{step:06d}.png" for step in range(1, 6)]
    assert [g["name"] for g in grids if g["name"] in every_epoch] == every_epoch
    final = next(g for g in grids if g["name"] == "samples/reconstructions.png")
    assert requests.get(final["url"], timeout=30).status_code == 200
    watcher.join(timeout=60)
    mine = [e.data["status"] for e in listed if e.type == "status" and e.data["job_id"] == job_id]
    assert mine == ["queued", "running", "succeeded"]
    assert any(e.type == "progress" and e.data["job_id"] == job_id for e in listed)


def test_cli_follows_a_job_on_its_event_stream(embedded_service: Service, mnist_path: Path) -> None:
    env = {**embedded_service.env, "GENTRAIN_API_URL": embedded_service.url}
    upload_mnist(embedded_service, mnist_path)
    response = requests.post(
        f"{embedded_service.url}/v1/jobs",
        json={
            "kind": "classifier",
            "dataset": "mnist",
            "params": {"epochs": 2, "max_train_images": 512},
        },
        timeout=10,
    )
    job_id = response.json()["id"]
    shown = subprocess.run(
        [*GENTRAIN, "events", job_id, "--json", "--logs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shown.returncode == 0, shown.stderr
    events = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [e["data"]["step"] for e in events if e["event"] == "metrics"] == [1, 2]
    assert events[-1]["event"] == "status" and events[-1]["data"]["status"] == "succeeded"
    assert any(e["event"] == "log" for e in events) and all(e["id"] for e in events)
