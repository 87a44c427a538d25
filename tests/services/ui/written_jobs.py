"""Jobs written through ``shared.jobs`` as a worker writes them (claim, start, epochs, grids, log,
finish), for the dashboard's page tests and its benchmark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import (
    NewJob,
    claim,
    create_job,
    finish,
    record_artifact,
    record_epoch,
    record_log,
    record_start,
)
from shared.storage import StoredObject

GAN_VALUES: Callable[[int], dict[str, float]] = lambda step: {  # noqa: E731
    "d_loss": 0.7 - step / 10_000,
    "g_loss": 0.9 + step / 10_000,
    "d_acc": 0.5,
}
GAN_RESULTS: dict[str, Any] = {
    "split": "x_test",
    "evaluated_images": 1000,
    "fid": 41.5,
    "classifier_score": 7.25,
    "digit_shares": {str(digit): 0.1 for digit in range(10)},
    "samples": 2000,
    "train_seconds": 12.5,
}


def new_job(url: str, kind: str, params: dict[str, Any], owner: str = "") -> str:
    """A queued training job of ``kind`` with ``params``."""
    with session_scope(url) as session:
        return create_job(session, NewJob(kind, kind, owner, params))


def start(url: str, job_id: str) -> str:
    """Claim the job as a worker does and record its model; the lease."""
    with session_scope(url) as session:
        job = claim(session, job_id, "w1@test")
        assert job is not None and job.lease is not None
        lease = str(job.lease)
        record_start(session, job_id, lease, 50_992, 2, 256)
    return lease


def artifact(url: str, job_id: str, lease: str, name: str, size: int = 1000) -> None:
    """Register an artifact (its bytes are not needed by the pages' server side)."""
    stored = StoredObject(key=f"jobs/{job_id}/{name}", size=size, sha256="0" * 64)
    content_type = "image/png" if name.endswith(".png") else "application/octet-stream"
    with session_scope(url) as session:
        record_artifact(session, job_id, lease, name, stored, content_type)


def epochs(
    url: str,
    job_id: str,
    lease: str,
    steps: list[int],
    total: int,
    values: Callable[[int], dict[str, float]],
    grid: str | None = None,
) -> None:
    """Record a metrics row (and a log line, and a grid named ``grid % step``) per step."""
    for step in steps:
        with session_scope(url) as session:
            record_epoch(
                session, job_id, lease, step=step, values=values(step), seconds=0.5,
                progress=step / total, eta_seconds=float(total - step) / 100,
            )  # fmt: skip
            record_log(session, job_id, lease, f"step {step}/{total}: {values(step)}\n", 10**6)
        if grid:
            artifact(url, job_id, lease, grid % step)


def end(url: str, job_id: str, lease: str, results: dict[str, Any]) -> None:
    """Finish the job as succeeded with ``results``."""
    with session_scope(url) as session:
        finish(session, job_id, lease, JobStatus.SUCCEEDED, results=results)


def finished_gan(url: str, steps: int = 2000, block: int = 100, owner: str = "") -> str:
    """A GAN of ``steps`` steps in blocks of ``block``, a grid every 500 steps, results, a model."""
    params = {"steps": steps, "steps_per_epoch": block, "sample_every": 500, "latent_dim": 32}
    job_id = new_job(url, "gan", params, owner)
    lease = start(url, job_id)
    epochs(url, job_id, lease, list(range(block, steps + 1, block)), steps, GAN_VALUES)
    for step in range(500, steps + 1, 500):
        artifact(url, job_id, lease, f"samples/step-{step:06d}.png")
    for name in ("samples/generated.png", "tensorboard/events.out.tfevents.1.w1", "model.keras"):
        artifact(url, job_id, lease, name)
    artifact(url, job_id, lease, "checkpoints/latest.npz", 4_000_000)
    end(url, job_id, lease, GAN_RESULTS)
    return job_id
