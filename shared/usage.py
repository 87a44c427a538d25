"""What an owner stores (datasets as uploaded, jobs' artifacts) and the quotas on it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import Artifact, Dataset, Job


class QuotaExceeded(Exception):
    """An upload or a job would take its owner over a quota; the message names the limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class StorageUsage:
    """One owner's stored objects: datasets and the artifacts of their jobs."""

    datasets: int
    dataset_bytes: int
    artifacts: int
    artifact_bytes: int

    @property
    def total_bytes(self) -> int:
        """Everything counted against ``GENTRAIN_OWNER_QUOTA_BYTES``."""
        return self.dataset_bytes + self.artifact_bytes


def owner_usage(session: Session, owner: str) -> StorageUsage:
    """What ``owner`` stores now (artifacts of expired or deleted jobs are gone, so not counted;
    objects of superseded attempts are not counted either: they are removed when a job ends)."""
    datasets, dataset_bytes = session.execute(
        select(func.count(), func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
            Dataset.owner == owner
        )
    ).one()
    artifacts, artifact_bytes = session.execute(
        select(func.count(), func.coalesce(func.sum(Artifact.size_bytes), 0))
        .select_from(Artifact)
        .join(Job, Job.id == Artifact.job_id)
        .where(Job.owner == owner)
    ).one()
    return StorageUsage(int(datasets), int(dataset_bytes), int(artifacts), int(artifact_bytes))


def check_owner_bytes(
    usage: StorageUsage, quota_bytes: int, adding: int = 0, for_job: bool = False
) -> None:
    """Raise QuotaExceeded if ``usage`` plus ``adding`` bytes is over ``quota_bytes`` (0: no
    quota). For a new job (``for_job``), whose output is not known ahead, the owner must be
    below the quota: at it, any output would take them over."""
    if not quota_bytes:
        return
    total = usage.total_bytes + adding
    if total < quota_bytes or (total == quota_bytes and not for_job):
        return
    upload = f", this upload {adding:,}" if adding else ""
    stored = (
        f"datasets {usage.dataset_bytes:,} bytes and job artifacts {usage.artifact_bytes:,}"
        f"{upload}: {total:,} bytes"
    )
    if for_job:
        problem = f"a new job needs room below the limit of {quota_bytes:,} bytes"
    else:
        problem = f"more than the limit of {quota_bytes:,} bytes"
    raise QuotaExceeded(
        f"owner's storage quota is full ({stored}; {problem}, GENTRAIN_OWNER_QUOTA_BYTES); "
        "delete jobs or datasets to make room"
        if for_job
        else f"owner's storage would hold {stored}, {problem} (GENTRAIN_OWNER_QUOTA_BYTES); "
        "delete jobs or datasets to make room"
    )
