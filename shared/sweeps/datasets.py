"""A dataset's sweeps when it is deleted: refused while a sweep that has not ended would still
create trials on it; the ended ones are detached (their ``dataset`` reads null)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import Sweep


def release_sweeps(session: Session, dataset_id: str) -> str | None:
    """Detach the ended sweeps of a dataset about to be deleted (its row locked by the caller);
    the id of a sweep that has not ended, which refuses the delete (nothing is changed then)."""
    open_sweep: str | None = session.scalar(
        select(Sweep.id)
        .where(Sweep.dataset_id == dataset_id, Sweep.finished_at.is_(None))
        .order_by(Sweep.created_at)
        .limit(1)
    )
    if open_sweep is not None:
        return open_sweep
    session.execute(
        update(Sweep)
        .where(Sweep.dataset_id == dataset_id)
        .values(dataset_id=None)
        .execution_options(synchronize_session=False)
    )
    return None
