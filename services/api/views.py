"""JSON views of database rows (ORM objects or Core rows), as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.api.job_reads import AnyRow, JobRecord
from shared.db.models import Dataset
from shared.kinds import SAMPLE_KIND

# The one result the table shows of each model kind (the split's prefix varies: test_, val_).
KEY_RESULTS = {
    "classifier": "accuracy",
    "autoencoder": "mse",
    "denoiser": "psnr_db",
    "gan": "fid",
    "vae": "fid",
}


def key_result(model_kind: str, kind: str, results: dict[str, Any] | None) -> dict[str, Any]:
    """The result a row shows: ``{"name", "value"}``, or an empty dict when there is none."""
    wanted = KEY_RESULTS.get(model_kind)
    if not results or not wanted or kind == SAMPLE_KIND:
        return {}
    names = [wanted, f"test_{wanted}"] + [n for n in results if n.endswith(f"_{wanted}")]
    for name in names:
        value = results.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"name": name, "value": value}
    return {}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def dataset_view(dataset: Dataset) -> dict[str, Any]:
    """The public view of a dataset."""
    return {
        "id": dataset.id,
        "name": dataset.name,
        "owner": dataset.owner,
        "size_bytes": dataset.size_bytes,
        "sha256": dataset.sha256,
        "arrays": dataset.arrays,
        "created_at": _iso(dataset.created_at),
    }


def artifact_view(artifact: AnyRow, base_url: str) -> dict[str, Any]:
    """An artifact with its download link."""
    return {
        "name": artifact.name,
        "size_bytes": artifact.size_bytes,
        "content_type": artifact.content_type,
        "sha256": artifact.sha256,
        "created_at": _iso(artifact.created_at),
        "url": f"{base_url}v1/jobs/{artifact.job_id}/artifacts/{artifact.name}",
    }


def metric_view(metric: AnyRow) -> dict[str, Any]:
    """One row of metrics."""
    return {
        "step": metric.step,
        "values": metric.values,
        "seconds": metric.seconds,
        "at": _iso(metric.at),
    }


def job_summary(job: AnyRow) -> dict[str, Any]:
    """The short view of a job, as listed."""
    return {
        "id": job.id,
        "kind": job.kind,
        "model_kind": job.model_kind,
        "status": job.status,
        "priority": job.priority,
        "progress": round(job.progress, 4),
        "dataset": job.dataset_name,
        "parent_id": job.parent_id,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
    }


def job_view(record: JobRecord, base_url: str) -> dict[str, Any]:
    """The full view of a job: state, progress, latest metrics, history, artifacts, results."""
    job, latest = record.job, record.latest_metric
    view = job_summary(job)
    view.update(
        {
            "params": job.params,
            "attempts": job.attempts,
            "error": job.error,
            "eta_seconds": job.eta_seconds,
            "started_at": _iso(job.started_at),
            "updated_at": _iso(job.updated_at),
            "heartbeat_at": _iso(job.heartbeat_at),
            "param_count": job.param_count,
            "replicas": job.replicas,
            "global_batch_size": job.global_batch_size,
            "latest_metrics": metric_view(latest) if latest else None,
            "results": job.results or {},
            "history": [
                {"status": event.status, "at": _iso(event.at), "message": event.message}
                for event in record.events
            ],
            # The newest artifacts only; artifact_count says how many there are, and
            # artifacts_url pages through them all.
            "artifacts": [artifact_view(artifact, base_url) for artifact in record.artifacts],
            "artifact_count": max(record.artifact_count, len(record.artifacts)),
            "artifacts_url": f"{base_url}v1/jobs/{job.id}/artifacts",
            # Retention (GENTRAIN_RETAIN_DAYS) removed its artifacts; metrics and history stay.
            "expired": job.expired_at is not None,
            "expired_at": _iso(job.expired_at),
            "sweep_id": job.sweep_id,  # a trial of that sweep (issue 15)
        }
    )
    return view
